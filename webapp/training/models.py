"""A training job is a database row; its status changes only along the named transitions below."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.core.models import TimestampedModel


class TrainingJob(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "PENDING", "queued"
        RUNNING = "RUNNING", "running"
        SUCCEEDED = "SUCCEEDED", "succeeded"
        FAILED = "FAILED", "failed"
        CANCEL_REQUESTED = "CANCEL_REQUESTED", "cancelling"
        CANCELLED = "CANCELLED", "cancelled"

    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        Status.PENDING: {Status.RUNNING, Status.CANCELLED, Status.FAILED},
        # RUNNING → PENDING: requeued to resume from its last stage checkpoint after its worker died.
        Status.RUNNING: {Status.SUCCEEDED, Status.FAILED, Status.CANCEL_REQUESTED, Status.PENDING},
        Status.CANCEL_REQUESTED: {Status.CANCELLED, Status.FAILED, Status.SUCCEEDED},
        Status.FAILED: {Status.PENDING},  # resume after a failure (the stage checkpoints are kept)
        Status.SUCCEEDED: set(),
        Status.CANCELLED: set(),
    }
    ACTIVE: ClassVar[tuple[str, ...]] = (Status.PENDING, Status.RUNNING, Status.CANCEL_REQUESTED)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_jobs"
    )
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="training_jobs")
    base_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retrain_jobs",
        help_text="the version a retrain starts from (continual learning: stacked deeper, all data)",
    )
    config = models.JSONField(help_text="the complete job configuration (see webapp.training.configs)")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    progress = models.JSONField(default=dict, blank=True)
    stages = models.JSONField(default=list, blank=True, help_text="per-stage depth, steps, timings, metrics")
    metrics = models.JSONField(null=True, blank=True, help_text="validation and test metrics of the result")
    estimate = models.JSONField(
        null=True,
        blank=True,
        help_text="peak memory and time estimated when the job was accepted (trainer.budget)",
    )
    error = models.TextField(blank=True)
    checkpoint_dir = models.CharField(max_length=500, blank=True, help_text="relative to MEDIA_ROOT")
    worker = models.CharField(max_length=200, blank=True, help_text="the Celery worker that claimed it")
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"job #{self.pk} ({self.status})"

    def can_transition(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.Status(self.status)]

    @property
    def is_cancellable(self) -> bool:
        """Whether a cancel changes anything: a queued job ends at once, a running one is asked to stop
        (``training_job_cancel``; one already being cancelled is left as it is)."""
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def checkpoint_path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.checkpoint_dir

    @property
    def is_stale(self) -> bool:
        """A running job whose heartbeat stopped: its worker died (or hangs)."""
        if self.status not in (self.Status.RUNNING, self.Status.CANCEL_REQUESTED):
            return False
        limit = timezone.now() - timedelta(seconds=settings.STUDIO_HEARTBEAT_STALE_S)
        return self.heartbeat_at is None or self.heartbeat_at < limit


class TrainingPoint(models.Model):
    """One point of a job's curves, appended while it runs: the dashboard polls for points after an id.

    ``loss`` points come at most once per progress write (about a second), ``valid`` points at every
    validation, and a ``stage`` point when a stage ends: the stacking boundary the charts mark.
    """

    class Kind(models.TextChoices):
        LOSS = "loss", "training loss"
        VALID = "valid", "validation"
        STAGE = "stage", "stage end"

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="points")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    stage = models.PositiveIntegerField(help_text="1-based")
    blocks = models.PositiveIntegerField()
    step = models.PositiveIntegerField(help_text="optimiser steps within the stage")
    epoch = models.PositiveIntegerField()
    wall_s = models.FloatField(help_text="seconds since the run started, over all stages")
    loss = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["job", "id"], name="point_job_id")]  # noqa: RUF012

    def __str__(self) -> str:
        return f"job #{self.job_id} {self.kind} at {self.wall_s:.1f}s"
