"""The only place the web app calls :mod:`serving`: one registry per dataset in each server process.

Sessions are created lazily, on the first request a process answers for a dataset (after gunicorn
forked, never per request). Each request names the dataset's active version (below); when it
differs from what this process holds, the new version is loaded first and then swapped in, so a
version that fails to load leaves the old one answering.

The recommend endpoint asks :func:`serving_version` which version is active: for the dataset's
owner (the common call) it answers from what this process read at most ``SERVING_CACHE_S`` seconds
ago (1 s by default) instead of a query per request. An activation or rollback made in this process
counts from its next request; one made elsewhere (another gunicorn worker, a training worker
promoting its model, the admin) reaches every process within ``SERVING_CACHE_S``. With 0, every
request reads the database, as the dashboard's try-it page always does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from serving import ArtifactError, Recommendation, Recommender, Registry, ServingError
from webapp.api.authentication import recommend_tokens_forget
from webapp.api.memo import ProcessMemo
from webapp.core.exceptions import ApplicationError, ServiceUnavailableError
from webapp.registry.artifacts import artifact_cache_forget, artifact_local
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_active

_registries: dict[int, Registry] = {}
_lock = threading.Lock()
_active_versions = ProcessMemo(max_age_s=lambda: settings.SERVING_CACHE_S)  # dataset id -> version


def serving_version(*, user: Any, dataset_id: int) -> ModelVersion:
    """The active version of ``dataset_id`` for a recommend call by ``user``: as
    :func:`~webapp.registry.selectors.model_version_active` (404, 403, 503 alike), answered from this
    process's memory for the dataset's owner when read less than ``SERVING_CACHE_S`` ago. Any other
    caller is checked against the database (and their permissions) on every request."""
    remembered = _active_versions.get(dataset_id)
    if remembered is not None and remembered.dataset_owner_id == user.pk:
        return remembered
    mark = _active_versions.begin()
    version = model_version_active(user=user, dataset_id=dataset_id)
    if version.dataset_owner_id == user.pk:
        _active_versions.put(dataset_id, version, mark=mark)
    return version


def _version_changed(sender, instance: ModelVersion, **kwargs) -> None:
    """An activation saves the version it activates (the one it deactivates is updated in bulk, in the
    same transaction): this process's next request reads the dataset's active version again."""
    dataset_id = instance.dataset_id
    _active_versions.forget(dataset_id)
    # A request that read the rows before the commit must not keep them for SERVING_CACHE_S.
    transaction.on_commit(lambda: _active_versions.forget(dataset_id))


post_save.connect(_version_changed, sender=ModelVersion, dispatch_uid="serving-version-saved")
post_delete.connect(_version_changed, sender=ModelVersion, dispatch_uid="serving-version-deleted")


def _registry(dataset_id: int) -> Registry:
    with _lock:
        registry = _registries.get(dataset_id)
        if registry is None:
            registry = Registry(
                intra_op_threads=settings.SERVING_INTRA_OP_THREADS, device=settings.SERVING_DEVICE
            )
            _registries[dataset_id] = registry
        return registry


def _recommender(version: ModelVersion) -> Recommender:
    """The session answering for ``version``'s dataset, loading ``version`` into this process if needed."""
    registry = _registry(version.dataset_id)
    try:
        if registry.version == version.label:
            return registry.active
        return registry.activate(version.label, artifact_local(version))
    except ArtifactError as exc:
        if registry.version is None:
            raise ServiceUnavailableError(
                f"version {version.label} cannot be loaded: {exc.message}", {"version": version.label}
            ) from None
        return registry.active  # keep answering with the version this process already has


@dataclass(frozen=True)
class ServingLimits:
    """What a request to a loaded version may hold: ``k`` up to ``max_k``; the model reads the last
    ``max_len`` known items of a history (older ones are left out and counted)."""

    version: str
    max_len: int
    max_k: int


def serving_limits(*, version: ModelVersion) -> ServingLimits:
    """The limits of the session that answers for ``version`` (loaded now if this process has none)."""
    recommender = _recommender(version)
    return ServingLimits(version=recommender.version, max_len=recommender.max_len, max_k=recommender.max_k)


def serving_recommend(
    *, version: ModelVersion, history: Any, k: Any, exclude_seen: Any = True
) -> Recommendation:
    """Recommend from ``version`` (the dataset's active one), loading it into this process if needed."""
    recommender = _recommender(version)
    try:
        return recommender.recommend(history, k, exclude_seen=exclude_seen)
    except ServingError as exc:
        raise ApplicationError(exc.message, exc.extra) from None


def serving_reset() -> None:
    """Forget every loaded session, and every version and token remembered (tests)."""
    with _lock:
        _registries.clear()
    _active_versions.clear()
    artifact_cache_forget()
    recommend_tokens_forget()
