"""Writes to the registry: register a trained job's export, activate a version, roll back."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from serving.errors import ArtifactError
from webapp.core.exceptions import ConflictError
from webapp.datasets.models import Dataset
from webapp.registry.artifacts import artifact_check
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_previous

logger = logging.getLogger(__name__)


def model_version_create(
    *,
    job: Any,
    artifact_dir: str,
    checkpoint_file: str,
    metrics: dict[str, Any],
    training_time_s: float,
    depth: int,
    promotion: dict[str, Any],
) -> ModelVersion:
    """Register ``job``'s exported model (``depth`` blocks: the stage the run kept) as the dataset's
    next version, once per job, with the promotion gate's decision."""
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=job.dataset_id)  # serialises version numbers
        existing = ModelVersion.objects.filter(job=job).first()
        if existing is not None:
            return existing
        number = (
            ModelVersion.objects.filter(dataset_id=job.dataset_id).aggregate(n=Max("number"))["n"] or 0
        ) + 1
        schedule = job.config["schedule"]
        return ModelVersion.objects.create(
            owner_id=job.owner_id,
            dataset_id=job.dataset_id,
            job=job,
            number=number,
            model_name=job.config["model"],
            depth=depth,
            method=schedule["method"],
            metrics=metrics,
            promotion=promotion,
            training_time_s=training_time_s,
            artifact_dir=artifact_dir,
            checkpoint_file=checkpoint_file,
        )


def model_version_activate(*, version: ModelVersion, override: bool = False, by: Any = None) -> ModelVersion:
    """Make ``version`` the one its dataset serves; its artifact must read back complete first.

    A version the promotion gate held (it did not beat popularity or the serving version) is
    activated only with ``override``: the refusal states the comparison, so whoever overrides has
    read it, and the override is recorded with the decision (who, when). Server processes notice
    the change on their next request and load the new version before swapping (a version that
    fails to load leaves the old one answering in that process).
    """
    if version.is_held and not override and not version.is_active:
        reason = version.promotion.get("reason", "").removeprefix("not activated: ")
        raise ConflictError(
            f"{version.label} was held by the promotion gate: {reason}; activating it anyway needs "
            "an override",
            {"version": version.pk, "promotion": version.promotion, "override_needed": True},
        )
    try:
        artifact_check(version)
    except ArtifactError as exc:
        raise ConflictError(f"version {version.label} cannot be served: {exc.message}", exc.extra) from None
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=version.dataset_id)
        ModelVersion.objects.filter(dataset_id=version.dataset_id, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        version.is_active = True
        version.activated_at = timezone.now()
        fields = ["is_active", "activated_at", "updated_at"]
        if version.is_held and override:
            overrides = [
                *version.promotion.get("overrides", []),
                {"by": str(by or "?"), "at": version.activated_at.isoformat()},
            ]
            version.promotion = {**version.promotion, "overrides": overrides}
            fields.append("promotion")
        version.save(update_fields=fields)
    logger.info("activated %s%s", version.label, " (gate overridden)" if version.is_held and override else "")
    return version


def model_version_rollback(*, dataset: Dataset, by: Any = None) -> ModelVersion:
    """Activate the version that was active before the current one."""
    previous = model_version_previous(dataset=dataset)
    if previous is None:
        raise ConflictError(
            f"dataset #{dataset.pk} has no previously active version to roll back to", {"dataset": dataset.pk}
        )
    return model_version_activate(version=previous, override=True, by=by)  # it served before
