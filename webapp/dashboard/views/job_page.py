"""A job's live page, the fragments it re-fetches (the summary, the worker log's tail), and cancelling."""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_POST

from webapp.core.permissions import CHANGE, may_change
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.job_progress import job_phase_now, job_phase_rows, job_run_eta_s, job_stage_rows
from webapp.dashboard.offers import (
    job_may_cancel,
)
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    STAGE_METRICS,
    job_run_percent,
)
from webapp.dashboard.views.shared import (
    page_context,
    run_action,
)
from webapp.training.comparison import comparison_partner
from webapp.training.models import TrainingJob
from webapp.training.selectors import training_job_get
from webapp.training.services import training_job_cancel
from webapp.training.worker_log import training_job_log_tail


@login_required
@require_GET
@not_found_as_404
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    item = training_job_get(user=request.user, job_id=job_id)
    log_readable = _may_read_log(request.user, item)
    percent = job_run_percent(item)
    context = {
        **_job_summary_context(item, request.user),
        "run_percent": percent,
        "run_percent_whole": math.floor(percent),  # 99.6 % is not done: the page does not say 100 %
        "run_eta_s": job_run_eta_s(item),
        "phase_now": job_phase_now(item),
        "created_ago": _ago(item.created_at),
        "curve_url": reverse("api:job-curve", args=[item.pk]),
        "summary_url": reverse("dashboard:job-summary", args=[item.pk]),
        "log_url": reverse("dashboard:job-log", args=[item.pk]) if log_readable else "",
        "log_lines": training_job_log_tail(job=item) if log_readable else [],
        "config_json": json.dumps(item.config, indent=2),
    }
    return render(request, "dashboard/job.html", page_context(context, "job"))


@login_required
@require_GET
@not_found_as_404
def job_summary(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job page's parts that change as it runs: stage timeline, phases, result (fetched by its script)."""
    item = training_job_get(user=request.user, job_id=job_id)
    return render(request, "dashboard/_job_summary.html", _job_summary_context(item, request.user))


@login_required
@require_GET
@not_found_as_404
def job_log(request: HttpRequest, job_id: int) -> HttpResponse:
    """The last lines of the job's worker log (its newest attempt's), for its owner only: the lines
    show how the run went in the worker's own words, which is the owner's business."""
    item = training_job_get(user=request.user, job_id=job_id)
    if not _may_read_log(request.user, item):
        raise PermissionDenied("only the job's owner can read its log")
    context = {"job": item, "log_lines": training_job_log_tail(job=item)}
    return render(request, "dashboard/_job_log.html", context)


def _may_read_log(user: Any, job: TrainingJob) -> bool:
    return may_change(TrainingJob, user=user, owner_id=job.dataset.owner_id)


def _ago(moment: Any) -> str:
    """ "3 minutes ago" (the page's script keeps it current); under a minute, "just now"."""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"


def _job_summary_context(job: Any, user: Any) -> dict[str, Any]:
    partner = comparison_partner(job)
    return {
        "job": job,
        "stage_rows": job_stage_rows(job),
        "phase_rows": job_phase_rows(job),
        "stage_metrics": STAGE_METRICS,
        "final_metrics": FINAL_METRICS,
        "version": getattr(job, "version", None),
        "partner": partner,
        "active": job.status in job.ACTIVE,
        "may_cancel": job_may_cancel(user=user, job=job),
    }


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    def run() -> None:
        training_job_cancel(job=training_job_get(user=request.user, job_id=job_id, action=CHANGE))

    return run_action(request, run, "cancel requested", "dashboard:jobs")
