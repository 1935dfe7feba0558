"""The errors serving raises, so callers (the web app) can map them to responses in one place.

:class:`ServingError` is what a caller did wrong (a bad history, a bad ``k``): HTTP 400. Its
subclass :class:`ArtifactError` means an exported model could not be loaded or does not match its
metadata: an operator's problem (HTTP 500/503), and the reason a registry keeps serving the old
version. Both carry ``message`` and ``extra`` (rendered as ``{"message", "extra"}``).
"""

from __future__ import annotations

from typing import Any


class ServingError(ValueError):
    """A request serving cannot answer, with the reason in words and details in ``extra``."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})


class ArtifactError(ServingError):
    """An exported model folder that is missing, damaged, or inconsistent with its metadata."""
