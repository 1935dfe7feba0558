"""A dataset is one uploaded interaction log (or an increment appended to another) and its parse result."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.db import models

from webapp.core.models import TimestampedModel


def upload_path(instance: Dataset, filename: str) -> str:
    """Each upload gets its own folder, which later also holds the parsed events file."""
    return f"datasets/{uuid.uuid4().hex}/{Path(filename).name}"


class Dataset(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "PENDING", "waiting to be parsed"
        PARSING = "PARSING", "parsing"
        READY = "READY", "ready"
        FAILED = "FAILED", "failed"

    # Named transitions: services change ``status`` only along these edges.
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        Status.PENDING: {Status.PARSING},
        Status.PARSING: {Status.READY, Status.FAILED},
        Status.READY: {Status.PENDING},  # re-parse with another mapping
        Status.FAILED: {Status.PENDING},  # retry, usually with a fixed mapping
    }

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="increments",
        help_text="the dataset these events are appended to (continual-learning retraining)",
    )
    file = models.FileField(upload_to=upload_path, max_length=500)
    original_filename = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    read_options = models.JSONField(default=dict, blank=True, help_text="trainer ReadOptions fields")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    stats = models.JSONField(null=True, blank=True)
    preview = models.JSONField(null=True, blank=True)
    # The parsed log in one normalised form (TSV: user_id, item_id[, timestamp]), relative to MEDIA_ROOT;
    # training and increments read this, whatever the upload's format was.
    events_file = models.CharField(max_length=500, blank=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    # Optional item titles a user uploaded (webapp.datasets.item_titles): the stored file (relative to
    # MEDIA_ROOT, beside the events), the upload's name and what was read; null without titles.
    item_titles = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def folder(self) -> Path:
        return Path(self.file.path).parent

    @property
    def events_path(self) -> Path | None:
        return Path(settings.MEDIA_ROOT) / self.events_file if self.events_file else None

    @property
    def item_titles_path(self) -> Path | None:
        file = (self.item_titles or {}).get("file")
        return Path(settings.MEDIA_ROOT) / file if file else None

    def can_transition(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.Status(self.status), set())

    @property
    def is_ready(self) -> bool:
        """Parsed without error: the only state that trains and takes increments."""
        return self.status == self.Status.READY
