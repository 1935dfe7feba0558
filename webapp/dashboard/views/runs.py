"""The runs table (every job the user may see) and the comparison of finished runs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    comparison_measured_run,
    jobs_finished,
)
from webapp.dashboard.views.shared import (
    LIST_LIMIT,
    jobs_table_context,
    page_context,
    positive_int,
)
from webapp.datasets.selectors import dataset_get
from webapp.training.comparison import job_comparison
from webapp.training.selectors import training_job_get, training_job_list


@login_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    rows = training_job_list(user=request.user)[:LIST_LIMIT]
    context = jobs_table_context(rows, reverse("dashboard:jobs-table"))
    return render(request, "dashboard/jobs.html", page_context(context, "jobs"))


@login_required
@require_GET
@not_found_as_404
def jobs_table(request: HttpRequest) -> HttpResponse:
    """The job table alone: the fragment list pages re-fetch every 2 s while a job in it is active."""
    dataset_id = request.GET.get("dataset")
    if dataset_id:
        dataset_get(user=request.user, dataset_id=dataset_id)  # 404 for another user's dataset
    limit = min(positive_int(request.GET.get("limit"), LIST_LIMIT), LIST_LIMIT)
    rows = training_job_list(user=request.user, dataset_id=dataset_id or None)[:limit]
    url = reverse("dashboard:jobs-table") + "?" + request.GET.urlencode()
    return render(request, "dashboard/_jobs_table.html", jobs_table_context(rows, url))


@login_required
@require_GET
@not_found_as_404
def compare(request: HttpRequest) -> HttpResponse:
    user = request.user
    a, b = request.GET.get("a"), request.GET.get("b")
    first = training_job_get(user=user, job_id=a) if a else None
    second = training_job_get(user=user, job_id=b) if b else None
    choices = jobs_finished(user=user)
    choices += [j for j in (first, second) if j is not None and j not in choices]
    context: dict[str, Any] = {
        "choices": choices,
        "a": first,
        "b": second,
        "comparison": None,
        "error": "",
        "final_metrics": FINAL_METRICS,
    }
    if first is not None and second is not None:
        if first.pk == second.pk:
            context["error"] = "pick two different jobs"
        else:
            comparison = job_comparison(first=first, second=second)
            context.update(
                comparison=comparison,
                comparison_data=comparison.to_dict(),
                measured=comparison_measured_run(comparison),
            )
    return render(request, "dashboard/compare.html", page_context(context, "compare"))
