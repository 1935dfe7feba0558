"""Reads of datasets shared by the API, the dashboard and other apps."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webapp.core.exceptions import NotFoundError
from webapp.core.permissions import CHANGE, VIEW, ensure_may_change, visible_to
from webapp.core.storage import storage_is_local
from webapp.datasets.item_titles import item_titles_read, item_titles_read_stored
from webapp.datasets.models import Dataset


def dataset_list(*, user: Any) -> QuerySet[Dataset]:
    """The datasets ``user`` may see: their own, or all with ``datasets.view_dataset``."""
    return visible_to(Dataset.objects.select_related("owner", "parent"), user=user)


def dataset_get(*, user: Any, dataset_id: Any, action: str = VIEW) -> Dataset:
    """One dataset ``user`` may read, or act on (train, re-parse, append to) when ``action`` is CHANGE.

    One they may not read is "not found" (its existence is not revealed); one they may read but not
    change is refused with the permission that is missing.
    """
    try:
        dataset = dataset_list(user=user).get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"dataset {dataset_id} not found", {"dataset": dataset_id}) from None
    if action == CHANGE:
        ensure_may_change(Dataset, user=user, owner_id=dataset.owner_id, label=f"dataset {dataset.pk}")
    return dataset


def dataset_item_titles(dataset: Dataset) -> dict[str, str]:
    """Raw item id → title for ``dataset``: its own uploaded titles, else those of the dataset it
    extends (an increment shares its parent's catalogue); {} when none were uploaded."""
    seen = set()
    while dataset is not None and dataset.pk not in seen:
        seen.add(dataset.pk)
        stored = (dataset.item_titles or {}).get("file")
        if stored and storage_is_local():
            return item_titles_read(dataset.item_titles_path)
        if stored:
            return item_titles_read_stored(stored, str(dataset.item_titles.get("uploaded_at", "")))
        dataset = dataset.parent
    return {}
