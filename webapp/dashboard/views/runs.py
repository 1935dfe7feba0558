"""The runs table (every job the user may see, sorted and filtered) and the comparison of runs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.runs_table import (
    MAX_COMPARED,
    SORT_CHOICES,
    RunsQuery,
    runs_page,
    runs_rows,
    runs_table_context,
)
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    STAGE_METRICS,
    comparison_measured_run,
    jobs_finished,
)
from webapp.dashboard.views.shared import LIST_LIMIT, page_context, positive_int
from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.training.comparison import comparison_figures, jobs_comparison
from webapp.training.models import TrainingJob
from webapp.training.selectors import training_job_get, training_job_run_choices


@login_required
@require_GET
@not_found_as_404
def jobs(request: HttpRequest) -> HttpResponse:
    user = request.user
    query = RunsQuery.from_params(request.GET)
    if query.dataset:
        dataset_get(user=user, dataset_id=query.dataset)  # 404 for another user's dataset
    page = runs_page(user=user, query=query)
    polled = query.encode(page=page.number)
    url = reverse("dashboard:jobs-table") + (f"?{polled}" if polled else "")
    context = {
        **runs_table_context(query=query, url=url, page=page),
        "datasets": dataset_list(user=user),
        "statuses": TrainingJob.Status.choices,
        "choices": training_job_run_choices(user=user),
        "sort_choices": SORT_CHOICES,
    }
    return render(request, "dashboard/jobs.html", page_context(context, "jobs"))


@login_required
@require_GET
@not_found_as_404
def jobs_table(request: HttpRequest) -> HttpResponse:
    """The runs table alone: the fragment a page re-fetches every 2 s while a job in it is active,
    with that page's query (the runs page's filters, sort and page; the overview's ``limit``)."""
    user = request.user
    query = RunsQuery.from_params(request.GET)
    if query.dataset:
        dataset_get(user=user, dataset_id=query.dataset)  # 404 for another user's dataset
    url = reverse("dashboard:jobs-table") + (f"?{request.GET.urlencode()}" if request.GET else "")
    if "limit" in request.GET:
        limit = min(positive_int(request.GET.get("limit"), LIST_LIMIT), LIST_LIMIT)
        context = runs_table_context(runs_rows(user=user, query=query)[:limit], query=query, url=url)
    else:
        context = runs_table_context(query=query, url=url, page=runs_page(user=user, query=query))
    return render(request, "dashboard/_jobs_table.html", context)


def compared_ids(params: QueryDict) -> list[str]:
    """The runs a compare URL names, in order, each once: ``runs`` (repeated, as the runs table's
    checkboxes send it, or comma-separated) and the two-run links' ``a`` and ``b``."""
    named = [part.strip() for value in params.getlist("runs") for part in value.split(",")]
    named += [params.get(name, "").strip() for name in ("a", "b")]
    return list(dict.fromkeys(i for i in named if i))


@login_required
@require_GET
@not_found_as_404
def compare(request: HttpRequest) -> HttpResponse:
    user = request.user
    ids = compared_ids(request.GET)
    # 404 for a run the user can't see; too many are not looked up at all.
    chosen = [training_job_get(user=user, job_id=i) for i in ids] if len(ids) <= MAX_COMPARED else []
    choices = jobs_finished(user=user)
    choices += [j for j in chosen if j not in choices]
    context: dict[str, Any] = {
        "choices": choices,
        "chosen": {j.pk for j in chosen},
        "comparison": None,
        "error": "",
        "final_metrics": FINAL_METRICS,
        "compare_max": MAX_COMPARED,
    }
    if len(ids) > MAX_COMPARED:
        context["error"] = f"compare at most {MAX_COMPARED} runs at a time ({len(ids)} are picked)"
    elif ids and len(chosen) < 2:
        context["error"] = "pick at least two runs to compare"
    elif chosen:
        comparison = jobs_comparison(jobs=chosen)
        labels, rows = comparison_figures(comparison, valid_metrics=STAGE_METRICS, test_metrics=FINAL_METRICS)
        context.update(
            comparison=comparison,
            comparison_data=comparison.to_dict(),
            measured=comparison_measured_run(comparison) if len(chosen) == 2 else None,
            figure_labels=labels,
            figure_rows=rows,
        )
    return render(request, "dashboard/compare.html", page_context(context, "compare"))
