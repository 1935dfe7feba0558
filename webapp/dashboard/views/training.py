"""Starting a training job from the dataset page's form.

A refused form shows the dataset page again with what the user typed and each error beside its
field (400); a queued job opens its live page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import CHANGE
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.training_form import TrainingForm
from webapp.dashboard.views.datasets import render_dataset_page
from webapp.datasets.selectors import dataset_get
from webapp.training.services import training_job_create


@login_required
@require_POST
@not_found_as_404
def job_create(request: HttpRequest) -> HttpResponse:
    """Train the form's configuration (see :mod:`webapp.dashboard.training_form`) on its dataset."""
    form = TrainingForm(request.POST)
    item = dataset_get(user=request.user, dataset_id=form.data.get("dataset"), action=CHANGE)
    config = form.job_config()
    if config is not None:
        try:
            created = training_job_create(owner=item.owner, dataset=item, config=config)
        except ApplicationError as exc:  # admission (limits, a full queue), a dataset not ready
            form.add_error(None, exc.message)
        else:
            messages.success(request, "training job queued")
            return redirect("dashboard:job", created.pk)
    form.focus_first_error()
    return render_dataset_page(request, item, training_form=form, status=400)
