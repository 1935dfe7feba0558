"""Versions: the list, a version's model card and files, activation, retraining from one."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.core.permissions import CHANGE, may_change
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.offers import (
    dataset_rollback_target,
)
from webapp.dashboard.selectors import (
    FINAL_METRICS,
    version_card,
    version_metric_rows,
    versions_by_dataset,
)
from webapp.dashboard.views.shared import (
    page_context,
    run_action,
    version_rows,
)
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import (
    model_version_file,
    model_version_files,
    model_version_get,
    model_version_list,
)
from webapp.registry.services import model_version_activate
from webapp.training.services import training_job_retrain


@login_required
@require_GET
def versions(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "groups": [
            (dataset, version_rows(user, rows), dataset_rollback_target(user=user, dataset=dataset))
            for dataset, rows in versions_by_dataset(user=user)
        ]
    }
    return render(request, "dashboard/versions.html", page_context(context, "versions"))


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
    return render(request, "dashboard/version.html", page_context(context, "versions"))


@login_required
@require_GET
@not_found_as_404
def version_file(request: HttpRequest, version_id: int, name: str) -> FileResponse:
    """A file of a version's artifact folder, streamed; 403 for one who may only read the version."""
    file = model_version_file(user=request.user, version_id=version_id, name=name)
    return FileResponse(file.open(), as_attachment=True, filename=file.name)


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
    return render(request, "dashboard/version_confirm.html", page_context(context, "versions"))


@login_required
@require_POST
def version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    def run() -> None:
        model_version_activate(
            version=model_version_get(user=request.user, version_id=version_id, action=CHANGE),
            override=request.POST.get("override") == "1",
            by=request.user,
        )

    return run_action(request, run, "version activated", "dashboard:versions")


@login_required
@require_POST
def version_retrain(request: HttpRequest, version_id: int) -> HttpResponse:
    def run() -> str:
        version = model_version_get(user=request.user, version_id=version_id, action=CHANGE)
        created = training_job_retrain(owner=request.user, version=version)
        return reverse("dashboard:job", args=[created.pk])

    return run_action(request, run, "retraining with StackRec: this version, stacked deeper, on all the data")
