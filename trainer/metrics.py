"""Ranking metrics from the rank of the held-out item, and bootstrap intervals.

Rank r is 0-based among all candidate items, counted pessimistically: every other item whose
score ties the target's is placed above it (a model that scores everything equal ranks last,
not first). With cut-off k:

    HR@k   = 1            if r < k else 0
    NDCG@k = 1/log2(r+2)  if r < k else 0   (one relevant item, so IDCG = 1)
    MRR@k  = 1/(r+1)      if r < k else 0

Each metric is the mean over cases.
"""

from __future__ import annotations

import numpy as np
import torch

KS = (5, 10, 20)
METRIC_NAMES = ("hr", "ndcg", "mrr")


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores [B, N], targets [B] → 0-based pessimistic ranks [B] (int64)."""
    target_scores = scores.gather(1, targets.unsqueeze(1))  # [B, 1]
    higher = (scores > target_scores).sum(dim=1)
    ties = (scores == target_scores).sum(dim=1) - 1  # other items with the same score
    return higher + ties


def per_case(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-case values of ``metric`` (e.g. ``"ndcg@10"``) — what bootstrap intervals resample."""
    name, k = parse_metric(metric)
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < k
    if name == "hr":
        return hit.astype(np.float64)
    if name == "ndcg":
        return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return np.where(hit, 1.0 / (ranks + 1.0), 0.0)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """``{"hr@5": …, "ndcg@5": …, "mrr@5": …, …}`` averaged over cases."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no evaluation cases: cannot compute metrics")
    return {f"{n}@{k}": float(per_case(ranks, f"{n}@{k}").mean()) for k in ks for n in METRIC_NAMES}


def parse_metric(metric: str) -> tuple[str, int]:
    """``"mrr@5"`` → ``("mrr", 5)``, with a clear error for anything else."""
    name, _, k = metric.lower().partition("@")
    if name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown metric {metric!r}: use hr@k, ndcg@k or mrr@k (e.g. mrr@5)")
    return name, int(k)


def bootstrap_interval(
    values: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = _resampled_means(values, rng, n_resamples)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def paired_bootstrap_difference(
    a: np.ndarray, b: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a − b`` over the same cases, with its percentile bootstrap interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs the same cases: {a.shape} vs {b.shape}")
    lo, hi = bootstrap_interval(a - b, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return float((a - b).mean()), lo, hi


def _resampled_means(values: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    # Resample in chunks so 1000 × 100k cases never sits in memory at once.
    n = len(values)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means
