"""A job's live page, the fragment it re-fetches, and cancelling."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.core.permissions import CHANGE
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.offers import (
    job_may_cancel,
)
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    STAGE_METRICS,
    job_run_percent,
    job_stage_rows,
)
from webapp.dashboard.views.shared import (
    page_context,
    run_action,
)
from webapp.training.comparison import comparison_partner
from webapp.training.selectors import training_job_get
from webapp.training.services import training_job_cancel


@login_required
@require_GET
@not_found_as_404
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    item = training_job_get(user=request.user, job_id=job_id)
    context = {
        **_job_summary_context(item, request.user),
        "run_percent": job_run_percent(item),
        "curve_url": reverse("api:job-curve", args=[item.pk]),
        "summary_url": reverse("dashboard:job-summary", args=[item.pk]),
        "config_json": json.dumps(item.config, indent=2),
    }
    return render(request, "dashboard/job.html", page_context(context, "job"))


@login_required
@require_GET
@not_found_as_404
def job_summary(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job page's parts that change at stage ends and when the run finishes (fetched by its script)."""
    item = training_job_get(user=request.user, job_id=job_id)
    return render(request, "dashboard/_job_summary.html", _job_summary_context(item, request.user))


def _job_summary_context(job: Any, user: Any) -> dict[str, Any]:
    partner = comparison_partner(job)
    return {
        "job": job,
        "stage_rows": job_stage_rows(job),
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
