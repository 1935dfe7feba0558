"""Ranking in chunks of cases gives the ranks of one [cases × items] score matrix, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.trainer.test_training import toy_split
from trainer import evaluation
from trainer.data.batching import eval_batches
from trainer.evaluation import evaluate, target_ranks
from trainer.metrics import metrics_from_ranks, ranks_from_scores
from trainer.models import build_model, model_config


def whole_matrix_ranks(model, cases, max_len: int, exclude_seen: bool) -> np.ndarray:
    """The ranks as evaluate() computed them before: score_last → [B, n_items] → ranks_from_scores."""
    ranks = np.empty(len(cases), dtype=np.int64)
    with torch.no_grad():
        for histories, targets, index in eval_batches(cases, max_len, 1 << 20):
            seq = torch.from_numpy(histories)
            scores = model.score_last(seq).float()
            if exclude_seen:
                scores.scatter_(1, seq, -math.inf)
            ranks[index] = ranks_from_scores(scores, torch.from_numpy(targets)).numpy()
    return ranks


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 3 cases over the toy catalogue of 20 items, so every batch is cut several times."""
    monkeypatch.setattr(evaluation, "RANK_CHUNK_SCORES", 60)


@pytest.mark.parametrize("name", ["nextitnet", "sasrec"])
@pytest.mark.parametrize("exclude_seen", [False, True])
def test_evaluate_gives_the_whole_matrix_ranks_and_metrics(small_chunks, name, exclude_seen):
    split = toy_split()
    torch.manual_seed(0)
    model = build_model(name, model_config(name, {"blocks": 2, "embedding_dim": 16}), split.n_items).eval()
    expected = whole_matrix_ranks(model, split.test, 8, exclude_seen)
    result = evaluate(model, split.test, max_len=8, exclude_seen=exclude_seen)
    assert result.ranks.tolist() == expected.tolist()
    assert result.metrics == metrics_from_ranks(expected)


def test_ties_stay_pessimistic_across_chunks(small_chunks):
    """A model that scores every item alike ranks each target last among the real items."""
    split = toy_split()
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 1}), split.n_items)
    with torch.no_grad():
        model.output_weight.zero_()
    result = evaluate(model, split.test, max_len=8)
    assert set(result.ranks.tolist()) == {split.n_items - 2}  # 19 real items: 18 placed above
    assert result.ranks.tolist() == whole_matrix_ranks(model.eval(), split.test, 8, False).tolist()


def test_target_ranks_match_ranks_from_scores_with_duplicated_items_and_exclusions(small_chunks):
    split = toy_split()
    torch.manual_seed(1)
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 1}), split.n_items).eval()
    with torch.no_grad():
        model.output_weight[5:10] = model.output_weight[4]  # items 4–9 tie with each other
        model.output_bias[5:10] = model.output_bias[4]
    hidden = torch.randn(11, model.config.embedding_dim)
    targets = torch.tensor([4, 5, 9, 1, 2, 3, 19, 7, 8, 6, 10])
    exclude = torch.randint(0, split.n_items, (11, 4))
    for excluded in (None, exclude):
        scores = model.score_hidden(hidden)
        if excluded is not None:
            scores.scatter_(1, excluded, -math.inf)
        expected = ranks_from_scores(scores, targets)
        assert target_ranks(model, hidden, targets, excluded).tolist() == expected.tolist()
