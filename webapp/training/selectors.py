"""Reads of training jobs shared by the API and the dashboard."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError
from webapp.training.models import TrainingJob


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
