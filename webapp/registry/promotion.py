"""The promotion gate: a new version goes live by itself only when it beats what it would replace.

A trained version is compared, on the same validation cases, with two references: recommending
the most popular training items (a model that cannot beat it has learnt nothing worth serving),
and the version that serves the dataset now (for a retrain on grown data: the version serving the
dataset it extends, scored on the new data's cases). It is activated only when its validation
figure beats both by the configured relative margin; otherwise it is registered inactive, and the
decision, with every figure it was taken on, is stored with the version so that every page and the
API can say why a version serves or does not. A person can still activate a held version by hand,
once told the comparison.

:func:`promotion_decide` is the rule alone (pure); :func:`promotion_judge` scores the serving
version on the run's cases and applies it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.evaluation import evaluate
from trainer.training import TrainConfig
from trainer.transfer import remap_items
from webapp.core.storage import StorageError, Workspace

ACTIVATED = "activated"
HELD = "held"


@dataclass(frozen=True)
class Reference:
    """A figure the candidate must beat: ``name`` in words, ``value`` of the gate's metric."""

    name: str
    value: float
    version: str | None = None  # the serving version's label; None for popularity


@dataclass(frozen=True)
class Promotion:
    decision: str  # activated | held
    reason: str
    metric: str
    margin: float
    candidate: float
    popularity: float
    serving: Reference | None  # None when nothing served the dataset (or an ancestor)

    @property
    def activate(self) -> bool:
        return self.decision == ACTIVATED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promotion_decide(
    *,
    candidate: dict[str, float],
    popularity: dict[str, float],
    serving: dict[str, float] | None = None,
    serving_label: str | None = None,
    metric: str | None = None,
    margin: float | None = None,
) -> Promotion:
    """Decide whether a version with validation ``candidate`` metrics goes live by itself.

    ``popularity`` and ``serving`` are the references' validation metrics on the same cases
    (``serving`` None: nothing serves the dataset yet). The candidate must exceed each reference
    by ``margin`` (relative; default ``STUDIO_PROMOTION_MARGIN``) on ``metric`` (default
    ``STUDIO_PROMOTION_METRIC``): equal is not better, so a model that only ties the trivial
    popularity ranking (one item, every history alike) never serves by itself.
    """
    metric = metric or settings.STUDIO_PROMOTION_METRIC
    margin = settings.STUDIO_PROMOTION_MARGIN if margin is None else margin
    name = metric.upper()
    value = float(candidate[metric])
    pop = Reference("popularity", float(popularity[metric]))
    references = [pop]
    current = None
    if serving is not None:
        current = Reference(f"{serving_label} (serving)", float(serving[metric]), serving_label)
        references.append(current)
    needed = f" by more than {margin:.1%}" if margin else ""
    for reference in references:
        if not value > reference.value * (1 + margin):
            reason = (
                f"not activated: validation {name} {value:.4f} does not beat {reference.name}'s "
                f"{reference.value:.4f}{needed}"
            )
            return Promotion(HELD, reason, metric, margin, value, pop.value, current)
    beaten = " and ".join(f"{r.name} ({r.value:.4f})" for r in references)
    reason = f"activated: validation {name} {value:.4f} beats {beaten}{needed}"
    if current is None:
        reason += "; nothing served this dataset before"
    return Promotion(ACTIVATED, reason, metric, margin, value, pop.value, current)


def promotion_unscored(*, candidate: dict[str, float], popularity: dict[str, float], why: str) -> Promotion:
    """A version the gate could not compare with the serving one: held, with the reason."""
    metric = settings.STUDIO_PROMOTION_METRIC
    return Promotion(
        HELD,
        f"not activated: {why}",
        metric,
        settings.STUDIO_PROMOTION_MARGIN,
        float(candidate[metric]),
        float(popularity[metric]),
        None,
    )


def promotion_judge(*, serving: Any, split: Any, metrics: dict[str, Any], device: Any) -> Promotion:
    """The gate's decision for a finished run, whose ``metrics`` hold its kept model's validation
    figures (``valid``) and popularity's (``popularity.valid``) on ``split``'s validation cases.

    ``serving`` (a ModelVersion, or None) is the version that answers for the dataset now, or for
    the dataset it extends (a retrain): its checkpoint is scored on the same cases, its items moved
    onto this run's vocabulary and its histories cut as it was trained; the figures are added to
    ``metrics`` as ``serving``, so the job shows what its version was compared with.
    """
    candidate, popularity = metrics["valid"], metrics["popularity"]["valid"]
    if serving is None:
        return promotion_decide(candidate=candidate, popularity=popularity)
    try:
        checkpoint = None
        if serving.checkpoint_file:
            with Workspace("promotion") as workspace:  # with an object store: fetched, then removed
                checkpoint = load_checkpoint(workspace.fetch(serving.checkpoint_file))
    except (CheckpointError, StorageError):
        checkpoint = None
    if checkpoint is None:
        why = f"the serving version {serving.label} has no readable checkpoint to compare with"
        return promotion_unscored(candidate=candidate, popularity=popularity, why=why)
    trained_as = TrainConfig.from_dict(checkpoint.train_config)
    reference = remap_items(checkpoint.model, checkpoint.vocab, split.vocab)
    options = {"max_len": trained_as.max_len, "exclude_seen": trained_as.exclude_seen, "device": device}
    scored = evaluate(reference, split.valid, **options).metrics
    metrics["serving"] = {"version": serving.label, "blocks": len(reference.blocks), "valid": scored}
    return promotion_decide(
        candidate=candidate, popularity=popularity, serving=scored, serving_label=serving.label
    )
