"""Dashboard pages: one overview with upload, training and activation forms.

Every action calls the service the API calls; errors are shown as the service words them.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.core.exceptions import ApplicationError
from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.datasets.services import dataset_create, dataset_parse_retry
from webapp.datasets.uploads import upload_too_large
from webapp.registry.selectors import model_version_get, model_version_list
from webapp.registry.services import model_version_activate
from webapp.training.selectors import training_job_get, training_job_list
from webapp.training.services import training_job_cancel, training_job_create

DEFAULT_JOB_CONFIG = {
    "model": "nextitnet",
    "schedule": {"start_blocks": 2, "final_blocks": 8, "method": "adjacent", "stage_patience": 2},
    "train": {"epochs": 20, "patience": 3, "batch_size": 64, "lr": 0.001, "device": "auto"},
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "datasets": dataset_list(user=user)[:50],
        "jobs": training_job_list(user=user)[:50],
        "versions": model_version_list(user=user)[:50],
        "default_config": json.dumps(DEFAULT_JOB_CONFIG, indent=2),
    }
    return render(request, "dashboard/home.html", context)


def _json_field(request: HttpRequest, name: str) -> dict | None:
    text = (request.POST.get(name) or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApplicationError(f"{name} is not valid JSON: {exc}") from None


def _action(request: HttpRequest, run, success: str) -> HttpResponse:
    try:
        run()
        messages.success(request, success)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:home")


@login_required
@require_POST
def dataset_upload(request: HttpRequest) -> HttpResponse:
    def run():
        if upload_too_large(request):
            raise ApplicationError("the file is larger than the upload limit")
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("choose a file to upload")
        parent = request.POST.get("parent")
        dataset_create(
            owner=request.user,
            upload=upload,
            name=request.POST.get("name", ""),
            read_options=_json_field(request, "read_options"),
            parent=dataset_get(user=request.user, dataset_id=parent) if parent else None,
        )

    return _action(request, run, "uploaded; parsing has started")


@login_required
@require_POST
def dataset_parse(request: HttpRequest, dataset_id: int) -> HttpResponse:
    def run():
        dataset = dataset_get(user=request.user, dataset_id=dataset_id)
        dataset_parse_retry(dataset=dataset, read_options=_json_field(request, "read_options"))

    return _action(request, run, "parsing again")


@login_required
@require_POST
def job_create(request: HttpRequest) -> HttpResponse:
    def run():
        dataset = dataset_get(user=request.user, dataset_id=request.POST.get("dataset"))
        training_job_create(owner=request.user, dataset=dataset, config=_json_field(request, "config") or {})

    return _action(request, run, "training job queued")


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    return _action(
        request,
        lambda: training_job_cancel(job=training_job_get(user=request.user, job_id=job_id)),
        "cancel requested",
    )


@login_required
@require_POST
def version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    return _action(
        request,
        lambda: model_version_activate(version=model_version_get(user=request.user, version_id=version_id)),
        "version activated",
    )
