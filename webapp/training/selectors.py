"""Reads of training jobs shared by the API and the dashboard."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError
from webapp.training.models import TrainingJob, TrainingPoint


def training_job_list(*, user: Any, dataset_id: Any = None) -> QuerySet[TrainingJob]:
    """Jobs ``user`` may see (their own, all for staff), optionally of one dataset."""
    queryset = TrainingJob.objects.select_related("dataset", "owner", "version")
    if not user.is_staff:
        queryset = queryset.filter(owner=user)
    if dataset_id is not None:
        queryset = queryset.filter(dataset_id=dataset_id)
    return queryset


def training_job_get(*, user: Any, job_id: Any) -> TrainingJob:
    try:
        return training_job_list(user=user).get(pk=int(job_id))
    except (TrainingJob.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"training job {job_id} not found", {"job": job_id}) from None


def training_points_list(*, job: TrainingJob, after: int = 0, limit: int = 5000) -> list[TrainingPoint]:
    """The job's curve points with ids above ``after`` (what a polling page has not drawn yet)."""
    return list(TrainingPoint.objects.filter(job=job, id__gt=after).order_by("id")[:limit])
