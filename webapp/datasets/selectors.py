"""Reads of datasets shared by the API, the dashboard and other apps."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError
from webapp.datasets.models import Dataset


def dataset_list(*, user: Any) -> QuerySet[Dataset]:
    """The datasets ``user`` may see: their own, or every one for staff."""
    queryset = Dataset.objects.select_related("owner", "parent")
    return queryset if user.is_staff else queryset.filter(owner=user)


def dataset_get(*, user: Any, dataset_id: Any) -> Dataset:
    """One visible dataset; another user's is "not found" (its existence is not revealed)."""
    try:
        return dataset_list(user=user).get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"dataset {dataset_id} not found", {"dataset": dataset_id}) from None
