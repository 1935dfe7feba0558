"""Starting a training job from the dataset page's form."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import CHANGE
from webapp.dashboard import presets
from webapp.dashboard.views.shared import (
    json_field,
    run_action,
)
from webapp.datasets.selectors import dataset_get
from webapp.training.services import training_job_create


@login_required
@require_POST
def job_create(request: HttpRequest) -> HttpResponse:
    """Train from a preset, or from the JSON in the form when the preset is "custom" (or not sent)."""

    def run() -> str:
        item = dataset_get(user=request.user, dataset_id=request.POST.get("dataset"), action=CHANGE)
        preset = request.POST.get("preset") or presets.CUSTOM
        if preset == presets.CUSTOM:
            config = json_field(request, "config") or {}
        elif preset in presets.PRESETS:
            config = presets.preset_config(preset)
        else:
            raise ApplicationError(f"unknown preset {preset!r}")
        created = training_job_create(owner=item.owner, dataset=item, config=config)
        return reverse("dashboard:job", args=[created.pk])

    return run_action(request, run, "training job queued")
