"""Reads of model versions shared by the API, the dashboard and the recommend endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db.models import F, QuerySet

from serving.artifact import METADATA_FILE, MODEL_FILE
from trainer.data.messages import quote
from webapp.core.exceptions import NotFoundError, PermissionDeniedError, ServiceUnavailableError
from webapp.core.permissions import (
    CHANGE,
    VIEW,
    ensure_may_change,
    may_act_on_all,
    permission_name,
    visible_to,
)
from webapp.core.storage import StorageError, storage_is_local, storage_list, storage_open
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion


def model_version_list(*, user: Any, dataset_id: Any = None) -> QuerySet[ModelVersion]:
    """Versions ``user`` may see, optionally of one dataset: those of their own datasets, or all with
    ``registry.view_modelversion`` (a version belongs to its dataset's owner, whoever trained it)."""
    queryset = visible_to(
        ModelVersion.objects.select_related("dataset", "job"), user=user, owner="dataset__owner"
    )
    if dataset_id is not None:
        queryset = queryset.filter(dataset_id=dataset_id)
    return queryset


def model_version_get(*, user: Any, version_id: Any, action: str = VIEW) -> ModelVersion:
    """One version ``user`` may read, or act on (activate, retrain from) when ``action`` is CHANGE."""
    try:
        version = model_version_list(user=user).get(pk=int(version_id))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"model version {version_id} not found", {"version": version_id}) from None
    if action == CHANGE:
        ensure_may_change(
            ModelVersion, user=user, owner_id=version.dataset.owner_id, label=f"model version {version.pk}"
        )
    return version


def model_version_active(*, user: Any, dataset_id: int) -> ModelVersion:
    """The active version of a dataset ``user`` may query (a read of its versions); 404 for a dataset
    they may not see, 503 for none active. The version carries ``dataset_owner_id``."""
    active = (
        ModelVersion.objects.filter(dataset_id=dataset_id, is_active=True)
        .only("id", "dataset_id", "number", "artifact_dir")
        .annotate(dataset_owner_id=F("dataset__owner_id"))  # for webapp.registry.serving's memo
    )
    # The owner's own call, the common one on this hot path, is answered without reading permissions
    # (a permission check costs two more queries per request for a user who is not a superuser).
    version = active.filter(dataset__owner=user).first()
    if version is None and may_act_on_all(user, ModelVersion, VIEW):
        version = active.first()
    if version is not None:
        return version
    datasets = visible_to(Dataset.objects.filter(pk=dataset_id), user=user)
    if datasets.exists() and ModelVersion.objects.filter(dataset_id=dataset_id, is_active=True).exists():
        permission = permission_name(ModelVersion, VIEW)
        raise PermissionDeniedError(
            f"you may view dataset {dataset_id} but not query its model versions: that needs the "
            f"{permission!r} permission",
            {"permission": permission},
        )
    if not datasets.exists():
        raise NotFoundError(f"dataset {dataset_id} not found", {"dataset": dataset_id})
    raise ServiceUnavailableError(
        f"dataset {dataset_id} has no active model version: train one, or activate a version",
        {"dataset": dataset_id},
    )


def model_version_previous(*, dataset: Dataset) -> ModelVersion | None:
    """The version a rollback of ``dataset`` re-activates: the one that served most recently before
    the current one (None when nothing else ever served)."""
    return (
        ModelVersion.objects.filter(dataset=dataset, is_active=False, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )


def dataset_versions_to_change(*, user: Any, dataset_id: Any) -> Dataset:
    """A dataset whose serving version ``user`` may switch (a rollback activates a version, so it needs
    what activating needs: owning the dataset, or ``registry.change_modelversion``)."""
    try:
        dataset = visible_to(Dataset.objects.all(), user=user).get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"dataset {dataset_id} not found", {"dataset": dataset_id}) from None
    ensure_may_change(
        ModelVersion, user=user, owner_id=dataset.owner_id, label=f"the versions of dataset {dataset.pk}"
    )
    return dataset


@dataclass(frozen=True)
class VersionFile:
    """One file of a version's artifact folder: ``name`` in the folder, ``stored`` its storage name."""

    name: str
    size: int
    stored: str

    def open(self) -> IO[bytes]:
        """The file, streamed from storage (a download never reads it whole)."""
        return storage_open(self.stored)


def model_version_files(*, version: ModelVersion) -> list[VersionFile]:
    """The files of ``version``'s artifact folder: ``model.onnx`` and ``metadata.json`` first, then any
    sidecar (e.g. ``vocabulary.json``). Only regular files directly in the folder count (no links, no
    hidden temporaries), and a folder outside the media root has none: the row names the folder, and
    nothing a request sends ever becomes part of a path."""
    if storage_is_local():
        root = Path(settings.MEDIA_ROOT).resolve()
        folder = version.artifact_path.resolve()
        if not folder.is_relative_to(root) or folder == root or not folder.is_dir():
            return []
    try:
        stored = storage_list(version.artifact_dir)
    except StorageError:  # an artifact_dir that is no storage name (``..``, absolute) has no files
        return []
    files = [VersionFile(name=f.basename, size=f.size, stored=f.name) for f in stored]
    first = {MODEL_FILE: 0, METADATA_FILE: 1}
    return sorted(files, key=lambda f: (first.get(f.name, 2), f.name))


def model_version_file(*, user: Any, version_id: Any, name: str) -> VersionFile:
    """A file of a version that ``user`` may act on, by its name in the artifact folder's listing.

    A version the user may not read is not found; one they may only read is refused (403) whatever
    the name; a name that is not one of :func:`model_version_files` (``../settings.py``, a hidden
    file) is not found. The name is compared with the listing, never joined onto a path.
    """
    version = model_version_get(user=user, version_id=version_id, action=CHANGE)
    for file in model_version_files(version=version):
        if file.name == name:
            return file
    raise NotFoundError(f"{version.label} has no file {quote(name)}", {"version": version.pk})
