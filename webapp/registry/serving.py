"""The only place the web app calls :mod:`serving`: one registry per dataset in each server process.

Sessions are created lazily, on the first request a process answers for a dataset (after gunicorn
forked, never per request). Each request names the version the database says is active; when it
differs from what this process holds, the new version is loaded first and then swapped in, so an
activation reaches every process on its next request and a version that fails to load leaves the
old one answering.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from serving import ArtifactError, Recommendation, Recommender, Registry, ServingError
from webapp.core.exceptions import ApplicationError, ServiceUnavailableError
from webapp.registry.models import ModelVersion

_registries: dict[int, Registry] = {}
_lock = threading.Lock()


def _registry(dataset_id: int) -> Registry:
    with _lock:
        registry = _registries.get(dataset_id)
        if registry is None:
            registry = Registry(intra_op_threads=settings.SERVING_INTRA_OP_THREADS)
            _registries[dataset_id] = registry
        return registry


def _recommender(version: ModelVersion) -> Recommender:
    """The session answering for ``version``'s dataset, loading ``version`` into this process if needed."""
    registry = _registry(version.dataset_id)
    try:
        if registry.version == version.label:
            return registry.active
        return registry.activate(version.label, version.artifact_path)
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
    """Forget every loaded session (tests)."""
    with _lock:
        _registries.clear()
