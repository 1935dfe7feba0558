"""Metric values against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.metrics import (
    bootstrap_interval,
    metrics_from_ranks,
    paired_bootstrap_difference,
    per_case,
    ranks_from_scores,
)


def test_ranks_are_pessimistic_on_ties():
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.5, 0.3],  # target 1 is best → rank 0
            [0.1, 0.9, 0.5, 0.3],  # target 3: only items 1 and 2 above → rank 2
            [0.2, 0.2, 0.2, 0.2],  # all tied: the target goes below the 3 others → rank 3
            [0.0, 0.5, 0.5, 0.1],  # tie with one other item → rank 1
        ]
    )
    ranks = ranks_from_scores(scores, torch.tensor([1, 3, 0, 2]))
    assert ranks.tolist() == [0, 2, 3, 1]


def test_metric_values_by_hand():
    ranks = np.array([0, 2, 7, 30])
    m = metrics_from_ranks(ranks, ks=(5, 10))
    assert m["hr@5"] == pytest.approx(2 / 4)
    assert m["hr@10"] == pytest.approx(3 / 4)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 3) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 8) / 4)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 0.5 + 1 / math.log2(9)) / 4)


def test_per_case_and_errors():
    assert per_case(np.array([0, 4, 5]), "hr@5").tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="unknown metric"):
        per_case(np.array([0]), "auc")
    with pytest.raises(ValueError, match="no evaluation cases"):
        metrics_from_ranks(np.array([], dtype=np.int64))


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_cases():
    rng = np.random.default_rng(0)
    small = rng.random(100) < 0.3
    large = rng.random(10_000) < 0.3
    lo_s, hi_s = bootstrap_interval(small.astype(float))
    lo_l, hi_l = bootstrap_interval(large.astype(float))
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3


def test_paired_bootstrap_detects_a_consistent_gain():
    rng = np.random.default_rng(1)
    base = rng.random(2000)
    diff, lo, hi = paired_bootstrap_difference(base + 0.05, base)
    assert diff == pytest.approx(0.05)
    assert lo > 0 and hi < 0.06
