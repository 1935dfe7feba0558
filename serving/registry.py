"""Model versions and the one that answers: load the new version first, then swap under a lock.

A failed load raises and leaves the current version serving. Requests read the active reference
once and keep using that :class:`Recommender` to the end, so a swap never mixes two versions'
vocabularies inside one request; the old session is freed when its last request finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.errors import ServingError
from serving.recommender import Recommendation, Recommender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Activation:
    version: str
    path: str
    activated_at: float  # time.time()


class Registry:
    """The active model version of this process, swapped atomically by :meth:`activate`.

    ``load_options`` go to :meth:`Recommender.load` (thread counts, warm-up). One registry per
    server process, created after the server forks (ONNX Runtime sessions do not survive a fork).
    """

    def __init__(self, *, loader: Callable[..., Recommender] = Recommender.load, **load_options: Any) -> None:
        self._loader = loader
        self._load_options = load_options
        self._lock = threading.Lock()  # guards _active: held for a pointer swap only
        self._loading = threading.Lock()  # one load at a time; requests never wait on it
        self._active: Recommender | None = None
        self._history: list[Activation] = []

    def activate(self, version: str, path: str | Path) -> Recommender:
        """Load ``path`` as ``version`` and make it the active one; on any error keep the current one."""
        if not isinstance(version, str) or not version:
            raise ServingError("version must be a non-empty string")
        with self._loading:
            recommender = self._loader(path, version=version, **self._load_options)
            with self._lock:
                previous, self._active = self._active, recommender
                self._history.append(Activation(version, str(path), time.time()))
        logger.info(
            "version %s active (was %s)", version, previous.version if previous is not None else "none"
        )
        return recommender

    @property
    def active(self) -> Recommender:
        """The recommender answering now; :class:`ServingError` if none was activated."""
        with self._lock:
            active = self._active
        if active is None:
            raise ServingError("no model version is active")
        return active

    @property
    def version(self) -> str | None:
        with self._lock:
            return self._active.version if self._active is not None else None

    def history(self) -> list[Activation]:
        """Every successful activation, oldest first."""
        with self._lock:
            return list(self._history)

    def recommend(self, history: Any, k: int = 10, **options: Any) -> Recommendation:
        """:meth:`Recommender.recommend` on the active version."""
        return self.active.recommend(history, k, **options)

    def recommend_batch(self, histories: Any, k: int = 10, **options: Any) -> list[Recommendation]:
        """:meth:`Recommender.recommend_batch` on the active version."""
        return self.active.recommend_batch(histories, k, **options)
