"""Dataset pages and the actions on a dataset: upload, parse again, retrain, roll back, item titles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import CHANGE
from webapp.dashboard import presets
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.offers import (
    dataset_offers,
    datasets_to_append_to,
)
from webapp.dashboard.selectors import (
    dataset_increments,
    datasets_any_parsing,
)
from webapp.dashboard.training_form import TrainingForm, training_form_for
from webapp.dashboard.views.shared import (
    LIST_LIMIT,
    back_url,
    jobs_table_context,
    json_field,
    page_context,
    run_action,
    version_rows,
)
from webapp.datasets.item_titles import item_titles_sentence
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.datasets.services import dataset_create, dataset_item_titles_set, dataset_parse_retry
from webapp.datasets.uploads import upload_too_large
from webapp.registry.selectors import (
    dataset_versions_to_change,
    model_version_list,
)
from webapp.registry.services import model_version_rollback
from webapp.training.selectors import training_job_list
from webapp.training.services import training_job_retrain


@login_required
@require_GET
def datasets(request: HttpRequest) -> HttpResponse:
    rows = list(dataset_list(user=request.user).defer("preview")[:LIST_LIMIT])  # the table shows none
    context = {
        "datasets": rows,
        "parents": datasets_to_append_to(user=request.user, datasets=rows),
        "parsing": datasets_any_parsing(rows),
    }
    return render(request, "dashboard/datasets.html", page_context(context, "datasets"))


@login_required
@require_GET
@not_found_as_404
def dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    return render_dataset_page(request, dataset_get(user=request.user, dataset_id=dataset_id))


def render_dataset_page(
    request: HttpRequest, item: Dataset, *, training_form: TrainingForm | None = None, status: int = 200
) -> HttpResponse:
    """The dataset page; a refused training form comes back in it with the user's input and errors."""
    user = request.user
    jobs = list(training_job_list(user=user, dataset_id=item.pk)[:LIST_LIMIT])
    versions = list(model_version_list(user=user, dataset_id=item.pk))
    context = {
        "dataset": item,
        "increments": dataset_increments(user=user, dataset=item),
        "version_rows": version_rows(user, versions),
        "active_version": next((v for v in versions if v.is_active), None),
        "offers": dataset_offers(user=user, dataset=item),
        "histogram": (item.stats or {}).get("length_histogram") or [],
        "training_form": training_form or training_form_for(item),
        "preset_json": presets.preset_json(),
        **jobs_table_context(jobs, reverse("dashboard:jobs-table") + f"?dataset={item.pk}"),
    }
    return render(request, "dashboard/dataset.html", page_context(context, "dataset"), status=status)


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
            read_options=json_field(request, "read_options"),
            parent=parent,
        )
        return reverse("dashboard:dataset", args=[created.pk])

    return run_action(request, run, "uploaded; parsing has started", "dashboard:datasets")


@login_required
@require_POST
def dataset_parse(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> None:
        item = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        dataset_parse_retry(dataset=item, read_options=json_field(request, "read_options"))

    return run_action(request, run, "parsing again", "dashboard:datasets")


@login_required
@require_POST
def dataset_retrain(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> str:
        item = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        created = training_job_retrain(owner=request.user, dataset=item)
        return reverse("dashboard:job", args=[created.pk])

    return run_action(
        request, run, "retraining with StackRec: the serving model, stacked deeper, on all data"
    )


@login_required
@require_POST
def dataset_rollback(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run() -> None:
        model_version_rollback(
            dataset=dataset_versions_to_change(user=request.user, dataset_id=dataset_id), by=request.user
        )

    return run_action(request, run, "rolled back to the version that was active before", "dashboard:versions")


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
    return redirect(back_url(request, "dashboard:datasets"))
