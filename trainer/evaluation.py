"""Full-ranking evaluation: the held-out item against every item in the catalogue.

Memory stays bounded: histories are encoded in batches of at most ``MAX_SCORES // n_items`` cases,
and their scores over the catalogue are made and compared with the target's a few dozen rows at a
time (:func:`target_ranks`), never as a [cases × items] matrix.

Cases cut from one sequence (a time split's consecutive events of one user, a session's
prefixes) are scored from one pass over their longest history when the model's output at a
position depends on a bounded context (NextItNet, GRec): every position of that pass is the
prediction after the history ending there. On ml-100k's time split with 256-item histories this
encodes 21 to 36 times fewer items than one pass per case, with the same ranks
(``bench/evaluation.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from trainer.data.batching import eval_batches, left_pad
from trainer.data.types import EvalSet, Sequences
from trainer.metrics import metrics_from_ranks, ranks_from_scores
from trainer.models.base import SequentialRecommender

MAX_SCORES = 1 << 24  # a batch holds as many cases as 64 MiB of scores would (scored at once on CUDA)
MAX_POSITIONS = 1 << 15  # positions per encoding batch of shared-prefix windows
# Scores per ranking chunk on the CPU (2 MiB): 43 Beauty cases × 12,102 items. Ranking Beauty's
# 22,363 validation cases took 0.58 s this way against 1.29 s from one 64 MiB matrix per batch
# (diginetica's 69,526 over 43,098 items: 10.0 s against 15.3 s; bench/throughput.py); in one
# sweep, 32–64 Beauty cases a chunk were fastest, 16 and 128 about 20 % slower, 256 40 %.
RANK_CHUNK_SCORES = 1 << 19


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
    a history item then counts as a miss (rather than being quietly kept). Cases with a
    ``source`` are scored one pass per source where the model's context fits ``max_len``, which
    gives the ranks one pass per case would.
    """
    was_training = model.training
    model.eval()
    ranks = np.empty(len(cases), dtype=np.int64)
    scoring_batch = _scoring_batch(model.n_items, batch_size)
    context = model.context_length()
    try:
        # exclude_seen needs each case's own history, and an empty history has no position to read.
        shared = cases.source is not None and context is not None and context <= max_len
        if shared and not exclude_seen and cases.histories.lengths().min(initial=1) > 0:
            for windows, rows, cols, targets, index in shared_prefix_batches(cases, context, MAX_POSITIONS):
                hidden = model.forward(torch.from_numpy(windows).to(device))  # [G, T, D]
                picked = hidden[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)]
                ranks[index] = target_ranks(model, picked, torch.from_numpy(targets).to(device)).cpu().numpy()
        else:
            for histories, targets, index in eval_batches(cases, max_len, scoring_batch):
                seq = torch.from_numpy(histories).to(device)
                hidden = _last_hidden(model, seq)  # [B, D]
                exclude = seq if exclude_seen else None
                ranks[index] = (
                    target_ranks(model, hidden, torch.from_numpy(targets).to(device), exclude).cpu().numpy()
                )
    finally:
        model.train(was_training)
    return EvalResult(metrics_from_ranks(ranks), ranks)


def target_ranks(
    model: SequentialRecommender,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """0-based pessimistic ranks of ``targets`` among all items after ``hidden`` [N, D] → [N].

    The ranks :func:`trainer.metrics.ranks_from_scores` gives on ``model.score_hidden(hidden)``
    (with the items in ``exclude`` [N, T] scored −inf first), from the same scores::

        rank_i = #{j : s_ij > s_i,y_i} + (#{j : s_ij = s_i,y_i} − 1) = #{j : s_ij ≥ s_i,y_i} − 1

    counted with one comparison instead of two. On the CPU the scores are made ``RANK_CHUNK_SCORES``
    at a time (rows × items), so a chunk is still in the cache when it is compared with its target's
    score, instead of a [N, n_items] matrix written to memory and read back three times. A rank needs
    no sorting and no top-k: the target's own score, taken from the same score row, is the threshold.
    """
    n = len(targets)
    rows = max(1, RANK_CHUNK_SCORES // model.n_items) if hidden.device.type == "cpu" else max(n, 1)
    ranks = torch.empty(n, dtype=torch.int64, device=hidden.device)
    for lo in range(0, n, rows):
        part = slice(lo, lo + rows)
        scores = model.score_hidden(hidden[part]).float()  # [r, n_items]
        if exclude is not None:
            scores.scatter_(1, exclude[part], -math.inf)
        target = scores.gather(1, targets[part].unsqueeze(1))  # [r, 1]
        ranks[part] = (scores >= target).sum(dim=1) - 1
    return ranks


def _last_hidden(model: SequentialRecommender, seq: torch.Tensor) -> torch.Tensor:
    """The hidden state [B, D] that ``model.score_last(seq)`` scores, without scoring it."""
    context = model.context_length()
    if context is not None and seq.shape[1] > context:
        seq = seq[:, -context:]
    return model.forward(seq)[:, -1, :]


def shared_prefix_batches(
    cases: EvalSet, context: int, max_positions: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(windows [G, T], rows, cols, targets, index)``: one window per source sequence.

    A source's window is its longest history from ``context`` items before its shortest one, so
    every case's prediction (at ``windows[rows[i], cols[i]]``) sees the ``context`` items it
    would see alone. Windows are left-padded, grouped longest first into batches of at most
    ``max_positions`` positions (a longer window goes alone). Raises ``ValueError`` if the cases
    of one source are not prefixes of one another, which would make the shared pass wrong.
    """
    if cases.source is None:
        raise ValueError("shared-prefix scoring needs each case's source sequence")
    histories = cases.histories
    lengths = histories.lengths()
    starts = histories.offsets[:-1]
    order = np.lexsort((lengths, cases.source))  # by source, then shortest to longest
    source = cases.source[order]
    first = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])
    group = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(order)]))
    longest = order[np.r_[first[1:], len(order)] - 1]  # per group, its longest case
    shortest = order[first]
    window_start = np.maximum(lengths[shortest] - context, 0)  # within the longest history
    window_len = lengths[longest] - window_start

    # Each case's visible items must equal the longest history's items at the same positions.
    n_case = lengths[order]
    visible = np.minimum(n_case, context)
    case_pos = np.repeat(starts[order] + n_case - visible, visible)
    long_pos = np.repeat(starts[longest[group]] + n_case - visible, visible)
    step = np.arange(int(visible.sum())) - np.repeat(np.cumsum(visible) - visible, visible)
    if not np.array_equal(histories.items[case_pos + step], histories.items[long_pos + step]):
        raise ValueError("cases that name one source must be prefixes of one sequence")

    # Groups widest first; the cases are put in the same order once, so a batch of consecutive
    # groups owns a contiguous slice of them.
    by_width = np.argsort(-window_len, kind="stable")
    rank = np.empty_like(by_width)
    rank[by_width] = np.arange(len(by_width))
    case_rank = rank[group]
    by_rank = np.argsort(case_rank, kind="stable")  # positions in ``order``
    cases_before = np.r_[0, np.cumsum(np.bincount(case_rank, minlength=len(by_width)))]
    batch_start = 0
    while batch_start < len(by_width):
        width = int(window_len[by_width[batch_start]])
        batch_end = min(batch_start + max(1, max_positions // max(width, 1)), len(by_width))
        groups = by_width[batch_start:batch_end]
        first_item = starts[longest[groups]] + window_start[groups]
        windows = left_pad(histories.items, first_item, window_len[groups])
        chosen = by_rank[cases_before[batch_start] : cases_before[batch_end]]
        case_group = group[chosen]
        cols = windows.shape[1] - window_len[case_group] + (n_case[chosen] - 1 - window_start[case_group])
        index = order[chosen]
        yield windows, case_rank[chosen] - batch_start, cols, cases.targets[index].astype(np.int64), index
        batch_start = batch_end


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
