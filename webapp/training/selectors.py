"""Reads of training jobs shared by the API and the dashboard."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError
from webapp.core.permissions import CHANGE, VIEW, ensure_may_change, visible_to
from webapp.training.models import TrainingJob, TrainingPoint


def training_job_list(*, user: Any, dataset_id: Any = None) -> QuerySet[TrainingJob]:
    """Jobs ``user`` may see, optionally of one dataset: those on their own datasets, or all with
    ``training.view_trainingjob`` (a job belongs to its dataset's owner, whoever queued it)."""
    queryset = visible_to(
        TrainingJob.objects.select_related("dataset", "owner", "version"), user=user, owner="dataset__owner"
    )
    if dataset_id is not None:
        queryset = queryset.filter(dataset_id=dataset_id)
    return queryset


def training_job_get(*, user: Any, job_id: Any, action: str = VIEW) -> TrainingJob:
    """One job ``user`` may read, or act on (cancel, resume) when ``action`` is CHANGE."""
    try:
        job = training_job_list(user=user).get(pk=int(job_id))
    except (TrainingJob.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"training job {job_id} not found", {"job": job_id}) from None
    if action == CHANGE:
        ensure_may_change(TrainingJob, user=user, owner_id=job.dataset.owner_id, label=f"job {job.pk}")
    return job


def training_points_list(*, job: TrainingJob, after: int = 0, limit: int = 5000) -> list[TrainingPoint]:
    """The job's curve points with ids above ``after`` (what a polling page has not drawn yet)."""
    return list(TrainingPoint.objects.filter(job=job, id__gt=after).order_by("id")[:limit])
