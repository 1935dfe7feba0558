"""Full-ranking evaluation: popularity baseline by hand, exclusion of seen items, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.trainer.test_training import sequences, toy_split
from trainer.data.types import EvalSet
from trainer.evaluation import evaluate, evaluate_popularity
from trainer.models import build_model, model_config


def test_popularity_ranks_by_hand():
    # Item counts in training: 1 ×3, 2 ×2, 3 ×1, 4 ×0.
    train = sequences([[1, 2, 1], [1, 2, 3]])
    cases = EvalSet(sequences([[1], [2, 3]]), np.array([1, 4]))
    result = evaluate_popularity(train, cases, n_items=5, max_len=10)
    # Item 1 is the most popular → rank 0; item 4 was never seen → last of 4 real items → rank 3.
    assert result.ranks.tolist() == [0, 3]
    assert result.metrics["hr@5"] == 1.0
    assert result.metrics["mrr@5"] == pytest.approx((1 + 1 / 4) / 2)


def test_excluding_seen_items_moves_unseen_targets_up_and_makes_repeats_misses():
    train = sequences([[1, 2, 1], [1, 2, 3]])
    cases = EvalSet(sequences([[1, 2], [1, 2]]), np.array([3, 1]))
    plain = evaluate_popularity(train, cases, n_items=5, max_len=10)
    excluded = evaluate_popularity(train, cases, n_items=5, max_len=10, exclude_seen=True)
    assert plain.ranks.tolist() == [2, 0]
    assert excluded.ranks[0] == 0  # items 1 and 2 are removed from the candidates
    assert excluded.ranks[1] >= 3  # the target repeats a history item: a miss, not a free hit


def test_model_evaluation_does_not_depend_on_batch_size():
    split = toy_split()
    torch.manual_seed(0)
    model = build_model("sasrec", model_config("sasrec", {"blocks": 2, "embedding_dim": 16}), split.n_items)
    whole = evaluate(model, split.test, max_len=8)
    one_by_one = evaluate(model, split.test, max_len=8, batch_size=1)
    assert whole.ranks.tolist() == one_by_one.ranks.tolist()
    assert whole.n_cases == len(split.test)
    assert model.training  # evaluation restores the mode it found


def test_cases_cut_from_one_sequence_score_as_they_would_alone():
    """One pass per source sequence gives each case exactly the ranks of scoring it on its own."""
    rng = np.random.default_rng(0)
    users = [rng.integers(1, 30, size=n) for n in (70, 45, 3, 90)]
    histories, targets, source = [], [], []
    for u, items in enumerate(users):  # every event after the 2nd of each user, as a time split cuts them
        for p in range(2, len(items)):
            histories.append(items[:p])
            targets.append(items[p])
            source.append(u)
    order = rng.permutation(len(targets))  # cases interleave across users, as in time order
    cases = EvalSet(
        sequences([histories[i] for i in order]), np.array(targets)[order], np.array(source)[order]
    )
    torch.manual_seed(0)
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 2, "embedding_dim": 16}), 30)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("alpha"):
                p.fill_(0.7)
    shared = evaluate(model, cases, max_len=40)  # receptive field 31 ≤ 40: one pass per user
    alone = evaluate(model, EvalSet(cases.histories, cases.targets), max_len=40)
    assert shared.ranks.tolist() == alone.ranks.tolist()


def test_cases_that_are_not_prefixes_of_their_source_are_refused():
    cases = EvalSet(sequences([[1, 2], [3, 4, 5]]), np.array([3, 6]), np.array([0, 0]))
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 1, "embedding_dim": 8}), 10)
    with pytest.raises(ValueError, match="prefixes"):
        evaluate(model, cases, max_len=50)
