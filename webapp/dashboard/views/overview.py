"""The overview page: counts, serving versions, recent jobs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.dashboard.selectors import (
    overview_counts,
)
from webapp.dashboard.views.shared import (
    RECENT,
    jobs_table_context,
    page_context,
)
from webapp.registry.selectors import (
    model_version_list,
)
from webapp.training.selectors import training_job_list


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "counts": overview_counts(user=user),
        "active_versions": model_version_list(user=user).filter(is_active=True)[:RECENT],
        **jobs_table_context(
            training_job_list(user=user)[:RECENT],
            reverse("dashboard:jobs-table") + f"?limit={RECENT}",
        ),
    }
    return render(request, "dashboard/home.html", page_context(context, "home"))
