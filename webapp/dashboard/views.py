"""Dashboard pages and the form actions behind them.

Pages read through the domain selectors (another user's object is a 404 page); actions call the
service the API calls and come back to the page with the outcome as a message, worded by the
service. Live parts (job tables, a job's stage timeline) are small fragments the page re-fetches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.core.exceptions import ApplicationError, NotFoundError, PermissionDeniedError
from webapp.core.permissions import CHANGE, may_change
from webapp.dashboard import presets
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.forms import TryForm
from webapp.dashboard.offers import (
    dataset_offers,
    dataset_rollback_target,
    datasets_to_append_to,
    job_may_cancel,
    version_offers,
)
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    STAGE_METRICS,
    comparison_measured_run,
    dataset_example_histories,
    dataset_increments,
    datasets_any_parsing,
    datasets_with_active_version,
    job_run_percent,
    job_stage_rows,
    jobs_any_active,
    jobs_finished,
    overview_counts,
    version_card,
    version_metric_rows,
    versions_by_dataset,
)
from webapp.datasets.item_titles import item_titles_sentence
from webapp.datasets.selectors import dataset_get, dataset_item_titles, dataset_list
from webapp.datasets.services import dataset_create, dataset_item_titles_set, dataset_parse_retry
from webapp.datasets.uploads import upload_too_large
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import (
    dataset_versions_to_change,
    model_version_active,
    model_version_file,
    model_version_files,
    model_version_get,
    model_version_list,
)
from webapp.registry.services import model_version_activate, model_version_rollback
from webapp.registry.serving import serving_limits, serving_recommend
from webapp.training.comparison import comparison_partner, job_comparison
from webapp.training.selectors import training_job_get, training_job_list
from webapp.training.services import training_job_cancel, training_job_create, training_job_retrain

RECENT = 8  # rows in the overview's tables
LIST_LIMIT = 200  # rows in the list pages


# -- pages --------------------------------------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "counts": overview_counts(user=user),
        "active_versions": model_version_list(user=user).filter(is_active=True)[:RECENT],
        **_jobs_table_context(
            training_job_list(user=user)[:RECENT],
            reverse("dashboard:jobs-table") + f"?limit={RECENT}",
        ),
    }
    return render(request, "dashboard/home.html", _page(context, "home"))


@login_required
@require_GET
def datasets(request: HttpRequest) -> HttpResponse:
    rows = list(dataset_list(user=request.user).defer("preview")[:LIST_LIMIT])  # the table shows none
    context = {
        "datasets": rows,
        "parents": datasets_to_append_to(user=request.user, datasets=rows),
        "parsing": datasets_any_parsing(rows),
    }
    return render(request, "dashboard/datasets.html", _page(context, "datasets"))


@login_required
@require_GET
@not_found_as_404
def dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    user = request.user
    item = dataset_get(user=user, dataset_id=dataset_id)
    jobs = list(training_job_list(user=user, dataset_id=item.pk)[:LIST_LIMIT])
    versions = list(model_version_list(user=user, dataset_id=item.pk))
    context = {
        "dataset": item,
        "increments": dataset_increments(user=user, dataset=item),
        "version_rows": _version_rows(user, versions),
        "active_version": next((v for v in versions if v.is_active), None),
        "offers": dataset_offers(user=user, dataset=item),
        "histogram": (item.stats or {}).get("length_histogram") or [],
        "presets": presets.preset_choices(),
        "default_preset": presets.DEFAULT_PRESET,
        "preset_json": presets.preset_json(),
        "default_config": presets.preset_json()[presets.DEFAULT_PRESET],
        **_jobs_table_context(jobs, reverse("dashboard:jobs-table") + f"?dataset={item.pk}"),
    }
    return render(request, "dashboard/dataset.html", _page(context, "dataset"))


@login_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    rows = training_job_list(user=request.user)[:LIST_LIMIT]
    context = _jobs_table_context(rows, reverse("dashboard:jobs-table"))
    return render(request, "dashboard/jobs.html", _page(context, "jobs"))


@login_required
@require_GET
@not_found_as_404
def jobs_table(request: HttpRequest) -> HttpResponse:
    """The job table alone: the fragment list pages re-fetch every 2 s while a job in it is active."""
    dataset_id = request.GET.get("dataset")
    if dataset_id:
        dataset_get(user=request.user, dataset_id=dataset_id)  # 404 for another user's dataset
    limit = min(_int(request.GET.get("limit"), LIST_LIMIT), LIST_LIMIT)
    rows = training_job_list(user=request.user, dataset_id=dataset_id or None)[:limit]
    url = reverse("dashboard:jobs-table") + "?" + request.GET.urlencode()
    return render(request, "dashboard/_jobs_table.html", _jobs_table_context(rows, url))


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
    return render(request, "dashboard/job.html", _page(context, "job"))


@login_required
@require_GET
@not_found_as_404
def job_summary(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job page's parts that change at stage ends and when the run finishes (fetched by its script)."""
    item = training_job_get(user=request.user, job_id=job_id)
    return render(request, "dashboard/_job_summary.html", _job_summary_context(item, request.user))


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
    return render(request, "dashboard/compare.html", _page(context, "compare"))


@login_required
@require_GET
def versions(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "groups": [
            (dataset, _version_rows(user, rows), dataset_rollback_target(user=user, dataset=dataset))
            for dataset, rows in versions_by_dataset(user=user)
        ]
    }
    return render(request, "dashboard/versions.html", _page(context, "versions"))


@login_required
@require_http_methods(["GET", "POST"])
@not_found_as_404
def try_it(request: HttpRequest) -> HttpResponse:
    """Recommendations for a typed history from a dataset's active version.

    ``GET ?dataset=`` picks the dataset (a link to share); the history is POSTed, so it may be as long
    as a person can paste. The page says how much of it the model reads, shows the items' titles where
    the dataset has them, and keeps what was typed beside any error.
    """
    user = request.user
    choices = datasets_with_active_version(user=user)
    data = request.POST if request.method == "POST" else None
    asked = (data if data is not None else request.GET).get("dataset")
    if asked and not any(str(d.pk) == asked for d in choices):
        # another user's dataset is a 404; one of the user's without a serving version says so below
        choices.append(dataset_get(user=user, dataset_id=asked))
    selected = next((d for d in choices if str(d.pk) == asked), None) if asked else None
    selected = selected or (choices[0] if choices else None)
    version, limits, result, error = None, None, None, ""
    if selected is not None:
        try:
            version = model_version_active(user=user, dataset_id=selected.pk)
            limits = serving_limits(version=version)
        except NotFoundError:
            raise
        except ApplicationError as exc:
            error = exc.message
    form = TryForm(
        data if limits is not None else None,
        datasets=choices,
        max_k=limits.max_k if limits else None,
        max_len=limits.max_len if limits else None,
        initial={"dataset": selected.pk if selected else None},
    )
    if form.is_bound and form.is_valid():
        values = form.cleaned_data
        try:
            result = serving_recommend(
                version=version, history=values["history"], k=values["k"], exclude_seen=values["exclude_seen"]
            )
        except ApplicationError as exc:
            form.add_error("k" if "max_k" in exc.extra else None, exc.message)
    titles = dataset_item_titles(selected) if selected is not None else {}
    context = {
        "form": form,
        "choices": choices,
        "selected": selected,
        "version": version,
        "limits": limits,
        "result": result,
        "error": error,
        "titles": bool(titles),
        "rows": [(i, titles.get(i, ""), s) for i, s in zip(result.items, result.scores, strict=True)]
        if result
        else [],
        "dropped": ", ".join(result.dropped) if result else "",
        "examples": dataset_example_histories(selected, titles=titles) if selected is not None else [],
    }
    return render(request, "dashboard/try.html", _page(context, "try"))


@login_required
@require_GET
@not_found_as_404
def version(request: HttpRequest, version_id: int) -> HttpResponse:
    """A version's model card: where it came from, how it was trained, how it scored, why it serves or
    not, and (for whoever may act on it) its files to download."""
    user = request.user
    item = model_version_get(user=user, version_id=version_id)
    context = {
        "version": item,
        "card": version_card(item),
        "metric_rows": version_metric_rows(item),
        "final_metrics": FINAL_METRICS,
        "files": model_version_files(version=item),
        "may_change": may_change(ModelVersion, user=user, owner_id=item.dataset.owner_id),
    }
    return render(request, "dashboard/version.html", _page(context, "versions"))


@login_required
@require_GET
@not_found_as_404
def version_file(request: HttpRequest, version_id: int, name: str) -> FileResponse:
    """A file of a version's artifact folder, streamed; 403 for one who may only read the version."""
    try:
        file = model_version_file(user=request.user, version_id=version_id, name=name)
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from None
    return FileResponse(file.path.open("rb"), as_attachment=True, filename=file.name)


def _page(context: dict[str, Any], name: str) -> dict[str, Any]:
    """Every page's ``<main data-page>`` and the nav's highlighted entry."""
    return {**context, "page": name}


def _int(text: Any, default: int) -> int:
    try:
        return max(1, int(text))
    except (TypeError, ValueError):
        return default


def _jobs_table_context(rows: Any, url: str) -> dict[str, Any]:
    """A job table and, while one of its jobs is active, the URL its fragment is re-fetched from."""
    rows = list(rows)
    return {
        "job_rows": [(j, job_run_percent(j)) for j in rows],
        "jobs_poll": jobs_any_active(rows),
        "jobs_url": url,
    }


def _version_rows(user: Any, versions: list[Any]) -> list[tuple[Any, Any]]:
    """A versions table's rows: each version with the actions its row offers ``user``."""
    return [(v, version_offers(user=user, version=v)) for v in versions]


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


# -- actions ------------------------------------------------------------------------------------


def _back(request: HttpRequest, fallback: str) -> str:
    """Where an action returns to: the page it was posted from (``next`` or the referrer), if ours."""
    for target in (request.POST.get("next"), request.META.get("HTTP_REFERER")):
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
    return resolve_url(fallback)


def _action(
    request: HttpRequest, run: Callable[[], str | None], success: str, fallback: str = "dashboard:home"
) -> HttpResponse:
    """Run a service; say how it went. ``run`` may name the page to show next (e.g. the new job's)."""
    try:
        target = run()
        messages.success(request, success)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        target = None
    return redirect(target or _back(request, fallback))


def _json_field(request: HttpRequest, name: str) -> dict | None:
    text = (request.POST.get(name) or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApplicationError(f"{name} is not valid JSON: {exc}") from None


@login_required
@require_POST
def dataset_upload(request: HttpRequest) -> HttpResponse:
    def run() -> str:
        if upload_too_large(request):
            raise ApplicationError("the file is larger than the upload limit")
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("choose a file to upload")
        parent_id = request.POST.get("parent")
        parent = dataset_get(user=request.user, dataset_id=parent_id, action=CHANGE) if parent_id else None
        created = dataset_create(
            owner=parent.owner if parent else request.user,  # an increment stays its parent's owner's
            upload=upload,
            name=request.POST.get("name", ""),
            read_options=_json_field(request, "read_options"),
            parent=parent,
        )
        return reverse("dashboard:dataset", args=[created.pk])

    return _action(request, run, "uploaded; parsing has started", "dashboard:datasets")


@login_required
@require_POST
def dataset_parse(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> None:
        item = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        dataset_parse_retry(dataset=item, read_options=_json_field(request, "read_options"))

    return _action(request, run, "parsing again", "dashboard:datasets")


@login_required
@require_POST
def dataset_retrain(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> str:
        item = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        created = training_job_retrain(owner=request.user, dataset=item)
        return reverse("dashboard:job", args=[created.pk])

    return _action(request, run, "retraining with StackRec: the serving model, stacked deeper, on all data")


@login_required
@require_POST
def dataset_rollback(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> None:
        model_version_rollback(
            dataset=dataset_versions_to_change(user=request.user, dataset_id=dataset_id), by=request.user
        )

    return _action(request, run, "rolled back to the version that was active before", "dashboard:versions")


@login_required
@require_POST
def dataset_items(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Item titles for a dataset (a CSV/TSV of item id and title); the message says what was stored."""
    try:
        item = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        if upload_too_large(request):
            raise ApplicationError("the file is larger than the upload limit")
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("choose a file of item titles")
        summary = dataset_item_titles_set(dataset=item, upload=upload)
        messages.success(request, item_titles_sentence(summary, (item.stats or {}).get("n_items")))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(_back(request, "dashboard:datasets"))


@login_required
@require_POST
def job_create(request: HttpRequest) -> HttpResponse:
    """Train from a preset, or from the JSON in the form when the preset is "custom" (or not sent)."""

    def run() -> str:
        item = dataset_get(user=request.user, dataset_id=request.POST.get("dataset"), action=CHANGE)
        preset = request.POST.get("preset") or presets.CUSTOM
        if preset == presets.CUSTOM:
            config = _json_field(request, "config") or {}
        elif preset in presets.PRESETS:
            config = presets.preset_config(preset)
        else:
            raise ApplicationError(f"unknown preset {preset!r}")
        created = training_job_create(owner=item.owner, dataset=item, config=config)
        return reverse("dashboard:job", args=[created.pk])

    return _action(request, run, "training job queued")


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    def run() -> None:
        training_job_cancel(job=training_job_get(user=request.user, job_id=job_id, action=CHANGE))

    return _action(request, run, "cancel requested", "dashboard:jobs")


@login_required
@require_GET
@not_found_as_404
def version_confirm(request: HttpRequest, version_id: int) -> HttpResponse:
    """The comparison a held version lost, and a button to activate it anyway."""
    version = model_version_get(user=request.user, version_id=version_id)
    serving = (
        model_version_list(user=request.user, dataset_id=version.dataset_id).filter(is_active=True).first()
    )
    context = {"version": version, "serving": serving}
    return render(request, "dashboard/version_confirm.html", _page(context, "versions"))


@login_required
@require_POST
def version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    def run() -> None:
        model_version_activate(
            version=model_version_get(user=request.user, version_id=version_id, action=CHANGE),
            override=request.POST.get("override") == "1",
            by=request.user,
        )

    return _action(request, run, "version activated", "dashboard:versions")


@login_required
@require_POST
def version_retrain(request: HttpRequest, version_id: int) -> HttpResponse:
    def run() -> str:
        version = model_version_get(user=request.user, version_id=version_id, action=CHANGE)
        created = training_job_retrain(owner=request.user, version=version)
        return reverse("dashboard:job", args=[created.pk])

    return _action(request, run, "retraining with StackRec: this version, stacked deeper, on all the data")
