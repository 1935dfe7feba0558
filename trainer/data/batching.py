"""Training windows and padded batches, as numpy int64 arrays ready for ``torch.from_numpy``.

Sequences are LEFT-padded with 0: the most recent item then always sits in the last column, which
is where causal models (NextItNet, SASRec) read their prediction at inference time, so training
and serving see the same layout. Targets are 0 at padding, which the loss ignores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from trainer.data.types import EvalSet, Sequences

log = logging.getLogger(__name__)


def make_windows(train: Sequences, max_len: int) -> Sequences:
    """Cut sequences into windows of at most ``max_len + 1`` items, stride ``max_len``.

    A window gives ``max_len`` (input, target) pairs: input ``w[:-1]``, target ``w[1:]``.
    Consecutive windows overlap by one item so that every target position of a sequence is
    counted exactly once; long histories are cut into several windows rather than truncated.
    Windows are aligned to the END of each sequence, so the most recent window is full and only
    the oldest may be short. Sequences shorter than 2 give no pair and no window.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be a positive whole number, got {max_len!r}")
    lengths = train.lengths()
    n_windows = np.where(lengths >= 2, (lengths - 1 + max_len - 1) // max_len, 0)
    seq_of = np.repeat(np.arange(len(train)), n_windows)
    first_window = np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    from_end = n_windows[seq_of] - 1 - (np.arange(len(seq_of)) - first_window)  # 0 = most recent
    end = lengths[seq_of] - from_end * max_len
    start = np.maximum(end - max_len - 1, 0)
    return Sequences.from_slices(train.items, train.offsets[:-1][seq_of] + start, end - start)


def left_pad(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows ``items[starts[b] : starts[b] + lengths[b]]`` right-aligned in a zero [B, T] array.

    T is the longest row (at least 1, so an empty history still has a shape a model accepts).
    """
    width = max(int(lengths.max(initial=0)), 1)
    out = np.zeros((len(lengths), width), dtype=np.int64)
    total = int(lengths.sum())
    row = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[row, width - lengths[row] + within] = items[starts[row] + within]
    return out


class TrainBatcher:
    """One epoch of ``(inputs, targets)`` batches per ``iter()``, each [B, T] int64, left-padded.

    With ``bucket=True`` windows of similar length share a batch (sorted by length with random
    tie-breaking, cut into batches, batch order shuffled), which keeps padding small when lengths
    vary; batches are still random in content among equal lengths and random in order. Each
    ``iter()`` advances ``epoch``, and the order of an epoch depends only on ``(seed, epoch,
    stream)``, so setting ``epoch`` when resuming reproduces the interrupted run. ``stream`` gives
    independent sequences of orders under one seed: each stage of a stacking schedule uses its own,
    so a stacked model does not replay, batch for batch, the epochs its previous stage trained on.
    """

    def __init__(
        self,
        windows: Sequences,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket: bool = True,
        stream: int = 0,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
        lengths = windows.lengths()
        if len(lengths) == 0:
            raise ValueError("no training windows: every sequence is shorter than 2 items")
        if lengths.min() < 2:
            raise ValueError("windows must hold at least 2 items (one input, one target); use make_windows")
        self.windows = windows
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.bucket = bucket
        self.stream = stream
        self.epoch = 0
        self._pairs = lengths - 1  # (input, target) pairs per window

    def __len__(self) -> int:
        return -(-len(self._pairs) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        batches = self.plan(self.epoch)
        self.epoch += 1
        return (self._collate(idx) for idx in batches)

    def plan(self, epoch: int) -> list[np.ndarray]:
        """Window indices of each batch of ``epoch``, in the order they will be yielded."""
        n = len(self._pairs)
        # Stream 0 keeps the two-number key, so checkpoints written before streams existed resume
        # with the order they were trained on.
        rng = np.random.default_rng([self.seed, epoch, self.stream] if self.stream else [self.seed, epoch])
        if self.bucket:
            tie_break = rng.random(n) if self.shuffle else np.arange(n)
            order = np.lexsort((tie_break, self._pairs))
        else:
            order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    @property
    def padding_fraction(self) -> float:
        """Share of padding cells in the most recently started epoch (the first, before any)."""
        pairs = self._pairs
        cells = padded = 0
        for idx in self.plan(max(self.epoch - 1, 0)):
            size = len(idx) * int(pairs[idx].max())
            cells += size
            padded += size - int(pairs[idx].sum())
        return padded / cells

    def _collate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = self.windows.offsets[idx]
        lengths = self._pairs[idx]
        items = self.windows.items
        return left_pad(items, starts, lengths), left_pad(items, starts + 1, lengths)


def eval_batches(
    cases: EvalSet, max_len: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(histories [B, T], targets [B], index [B])`` for scoring ``cases``.

    Histories keep their last ``max_len`` items (what the model can attend to) and are left-padded
    to the longest in the batch. Cases are grouped by length, longest first (so an out-of-memory
    batch size fails on the first batch, not at the end), and ``index`` gives each row's position
    in ``cases`` so results can be put back in order.
    """
    if max_len < 1 or batch_size < 1:
        raise ValueError(f"max_len and batch_size must be positive, got {max_len} and {batch_size}")
    histories = cases.histories
    lengths = histories.lengths()
    kept = np.minimum(lengths, max_len)
    starts = histories.offsets[:-1] + lengths - kept
    order = np.argsort(-kept, kind="stable")
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        yield left_pad(histories.items, starts[idx], kept[idx]), cases.targets[idx].astype(np.int64), idx
