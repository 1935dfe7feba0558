"""Full-ranking evaluation: the held-out item against every item in the catalogue.

Memory stays bounded: cases are scored in batches of at most ``max_scores`` floats, so a 100k-item
catalogue scores a few dozen histories at a time instead of materialising [cases × items].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from trainer.data.batching import eval_batches
from trainer.data.types import EvalSet, Sequences
from trainer.metrics import metrics_from_ranks, ranks_from_scores
from trainer.models.base import SequentialRecommender

MAX_SCORES = 1 << 24  # floats per scoring batch: 64 MiB of scores


@dataclass(frozen=True)
class EvalResult:
    """Averaged metrics plus the per-case ranks (in the EvalSet's case order) for intervals."""

    metrics: dict[str, float]
    ranks: np.ndarray

    @property
    def n_cases(self) -> int:
        return len(self.ranks)


def _scoring_batch(n_items: int, batch_size: int | None) -> int:
    limit = max(1, MAX_SCORES // n_items)
    return min(batch_size or limit, limit)


@torch.no_grad()
def evaluate(
    model: SequentialRecommender,
    cases: EvalSet,
    *,
    max_len: int,
    batch_size: int | None = None,
    exclude_seen: bool = False,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Rank each case's target among all items after its history (last ``max_len`` items).

    ``exclude_seen`` removes the history's items from the candidates first; a target that repeats
    a history item then counts as a miss (rather than being quietly kept).
    """
    was_training = model.training
    model.eval()
    ranks = np.empty(len(cases), dtype=np.int64)
    try:
        for histories, targets, index in eval_batches(
            cases, max_len, _scoring_batch(model.n_items, batch_size)
        ):
            seq = torch.from_numpy(histories).to(device)
            scores = model.score_last(seq).float()  # [B, n_items]
            if exclude_seen:
                scores.scatter_(1, seq, -math.inf)
            ranks[index] = ranks_from_scores(scores, torch.from_numpy(targets).to(device)).cpu().numpy()
    finally:
        model.train(was_training)
    return EvalResult(metrics_from_ranks(ranks), ranks)


def popularity_scores(train: Sequences, n_items: int) -> torch.Tensor:
    """How often each item occurs in the training sequences; padding scores −inf."""
    counts = np.bincount(train.items, minlength=n_items).astype(np.float32)
    scores = torch.from_numpy(counts)
    scores[0] = -math.inf
    return scores


def evaluate_popularity(
    train: Sequences, cases: EvalSet, n_items: int, *, max_len: int, exclude_seen: bool = False
) -> EvalResult:
    """The most-popular baseline, ranked exactly as :func:`evaluate` ranks a model."""
    popularity = popularity_scores(train, n_items)
    ranks = np.empty(len(cases), dtype=np.int64)
    for histories, targets, index in eval_batches(cases, max_len, _scoring_batch(n_items, None)):
        scores = popularity.expand(len(targets), -1).clone()
        if exclude_seen:
            scores.scatter_(1, torch.from_numpy(histories), -math.inf)
        ranks[index] = ranks_from_scores(scores, torch.from_numpy(targets)).numpy()
    return EvalResult(metrics_from_ranks(ranks), ranks)
