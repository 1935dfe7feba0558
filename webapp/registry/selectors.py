"""Reads of model versions shared by the API, the dashboard and the recommend endpoint."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError, ServiceUnavailableError
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion


def model_version_list(*, user: Any, dataset_id: Any = None) -> QuerySet[ModelVersion]:
    """Versions ``user`` may see (their own, all for staff), optionally of one dataset."""
    queryset = ModelVersion.objects.select_related("dataset", "job")
    if not user.is_staff:
        queryset = queryset.filter(owner=user)
    if dataset_id is not None:
        queryset = queryset.filter(dataset_id=dataset_id)
    return queryset


def model_version_get(*, user: Any, version_id: Any) -> ModelVersion:
    try:
        return model_version_list(user=user).get(pk=int(version_id))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"model version {version_id} not found", {"version": version_id}) from None


def model_version_active(*, user: Any, dataset_id: int) -> ModelVersion:
    """The active version of a dataset ``user`` may use; 404 for an unknown dataset, 503 for none active."""
    queryset = ModelVersion.objects.filter(dataset_id=dataset_id, is_active=True)
    if not user.is_staff:
        queryset = queryset.filter(dataset__owner=user)
    version = queryset.only("id", "dataset_id", "number", "artifact_dir").first()
    if version is not None:
        return version
    datasets = Dataset.objects.filter(pk=dataset_id)
    if not user.is_staff:
        datasets = datasets.filter(owner=user)
    if not datasets.exists():
        raise NotFoundError(f"dataset {dataset_id} not found", {"dataset": dataset_id})
    raise ServiceUnavailableError(
        f"dataset {dataset_id} has no active model version: train one, or activate a version",
        {"dataset": dataset_id},
    )
