"""The promotion gate: a new version goes live by itself only when it beats what it would replace.

A trained version is compared, on the same validation cases, with two references: recommending
the most popular training items (a model that cannot beat it has learnt nothing worth serving),
and the version that serves the dataset now (for a retrain on grown data: the version serving the
dataset it extends, scored on the new data's cases). It is activated only when its validation
figure beats both by the configured relative margin; otherwise it is registered inactive, and the
decision, with every figure it was taken on, is stored with the version so that every page and the
API can say why a version serves or does not. A person can still activate a held version by hand,
once told the comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

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
