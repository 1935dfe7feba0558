"""An exported model of a dataset; at most one version per dataset is active (a database constraint)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q

from webapp.core.models import TimestampedModel


class ModelVersion(TimestampedModel):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_versions"
    )
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="versions")
    job = models.OneToOneField(
        "training.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="version"
    )
    number = models.PositiveIntegerField(help_text="1, 2, … per dataset")
    model_name = models.CharField(max_length=50)
    depth = models.PositiveIntegerField(help_text="residual blocks of the exported model (the kept stage's)")
    method = models.CharField(max_length=20, help_text="stacking method (none: trained from scratch)")
    metrics = models.JSONField(default=dict, blank=True)
    training_time_s = models.FloatField(default=0.0)
    artifact_dir = models.CharField(max_length=500, help_text="ONNX artifact folder, relative to MEDIA_ROOT")
    checkpoint_file = models.CharField(
        max_length=500, blank=True, help_text="PyTorch checkpoint (warm starts)"
    )
    promotion = models.JSONField(
        default=dict,
        blank=True,
        help_text="the promotion gate's decision and the figures it was taken on (webapp.registry.promotion)",
    )
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [  # noqa: RUF012 (Django reads Meta.constraints as a list)
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(is_active=True), name="one_active_version_per_dataset"
            ),
            models.UniqueConstraint(fields=["dataset", "number"], name="version_number_per_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.label}{' (active)' if self.is_active else ''}"

    @property
    def label(self) -> str:
        """The version name serving reports: dataset and number, stable across processes."""
        return f"dataset-{self.dataset_id}-v{self.number}"

    @property
    def is_held(self) -> bool:
        """The gate kept this version from going live by itself (activating it needs an override)."""
        return (self.promotion or {}).get("decision") == "held"

    @property
    def artifact_path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.artifact_dir

    @property
    def checkpoint_path(self) -> Path | None:
        return Path(settings.MEDIA_ROOT) / self.checkpoint_file if self.checkpoint_file else None
