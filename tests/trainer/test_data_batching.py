"""Windows and batches: every target counted once, left padding, bucketing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import EvalSet, Sequences, TrainBatcher, eval_batches, make_windows


def sequences(seqs: list[list[int]]) -> Sequences:
    lengths = [len(s) for s in seqs]
    return Sequences(
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.array([i for s in seqs for i in s], dtype=np.int64),
    )


def as_lists(seqs: Sequences) -> list[list[int]]:
    return [seqs.get(i).tolist() for i in range(len(seqs))]


def random_sequences(n: int, seed: int = 0) -> Sequences:
    rng = np.random.default_rng(seed)
    lengths = rng.geometric(0.05, size=n)
    return sequences([list(rng.integers(1, 100, size=k)) for k in lengths])


def test_windows_are_aligned_to_the_end_and_overlap_by_one():
    windows = make_windows(sequences([[1, 2, 3, 4, 5, 6, 7], [8, 9], [10]]), max_len=3)
    assert as_lists(windows) == [[1, 2, 3, 4], [4, 5, 6, 7], [8, 9]]
    windows = make_windows(sequences([[1, 2, 3, 4, 5, 6]]), max_len=3)
    assert as_lists(windows) == [[1, 2, 3], [3, 4, 5, 6]]  # the oldest window is the short one


@pytest.mark.parametrize("max_len", [1, 2, 5, 50])
def test_windows_count_every_target_exactly_once(max_len):
    train = random_sequences(300)
    windows = make_windows(train, max_len)
    lengths = windows.lengths()
    assert lengths.min() >= 2 and lengths.max() <= max_len + 1
    assert (lengths - 1).sum() == np.maximum(train.lengths() - 1, 0).sum()
    # Window targets, concatenated in order, are exactly each sequence's targets in order.
    window_targets = np.concatenate([windows.get(i)[1:] for i in range(len(windows))])
    seq_targets = np.concatenate([train.get(i)[1:] for i in range(len(train))])
    np.testing.assert_array_equal(window_targets, seq_targets)


def test_batches_are_left_padded_with_shifted_targets():
    batcher = TrainBatcher(sequences([[1, 2, 3], [4, 5]]), batch_size=2, shuffle=False, bucket=False)
    [(inputs, targets)] = list(batcher)
    assert inputs.dtype == targets.dtype == np.int64
    np.testing.assert_array_equal(inputs, [[1, 2], [0, 4]])
    np.testing.assert_array_equal(targets, [[2, 3], [0, 5]])


def test_an_epoch_yields_every_pair_once():
    windows = make_windows(random_sequences(200), max_len=20)
    batcher = TrainBatcher(windows, batch_size=16, seed=3)
    batches = list(batcher)
    assert len(batches) == len(batcher) == -(-len(windows) // 16)
    assert sum(int((t > 0).sum()) for _, t in batches) == int((windows.lengths() - 1).sum())
    for inputs, targets in batches:
        assert inputs.shape == targets.shape
        assert (targets[:, -1] > 0).all()  # the most recent position is never padding
        assert ((inputs == 0) == (targets == 0)).all()


def test_bucketing_reduces_padding():
    windows = make_windows(random_sequences(500), max_len=50)
    bucketed = TrainBatcher(windows, batch_size=32, bucket=True)
    mixed = TrainBatcher(windows, batch_size=32, bucket=False)
    assert bucketed.padding_fraction < mixed.padding_fraction / 3


def test_batch_order_is_deterministic_per_seed_and_changes_per_epoch():
    windows = make_windows(random_sequences(200), max_len=10)

    def epoch_inputs(batcher):
        return [inputs.tolist() for inputs, _ in batcher]

    a, b, c = (TrainBatcher(windows, 8, seed=s) for s in (1, 1, 2))
    first = epoch_inputs(a)
    assert first == epoch_inputs(b)
    assert first != epoch_inputs(c)
    assert epoch_inputs(a) != first  # a's second epoch
    resumed = TrainBatcher(windows, 8, seed=1)
    resumed.epoch = 1
    assert epoch_inputs(resumed) == epoch_inputs(b)  # b's second epoch
    # Another stream under the same seed (a schedule's next stage) starts with an order of its own.
    other_stream = TrainBatcher(windows, 8, seed=1, stream=1)
    assert epoch_inputs(other_stream) != first


def test_eval_batches_truncate_histories_and_report_positions():
    cases = EvalSet(histories=sequences([[1], [2, 3, 4, 5, 6], [7, 8, 9]]), targets=np.array([10, 11, 12]))
    batches = list(eval_batches(cases, max_len=3, batch_size=2))
    histories, targets, index = batches[0]
    assert index.tolist() == [1, 2]  # longest first
    np.testing.assert_array_equal(histories, [[4, 5, 6], [7, 8, 9]])
    assert targets.tolist() == [11, 12]
    histories, targets, index = batches[1]
    assert histories.tolist() == [[1]] and targets.tolist() == [10] and index.tolist() == [0]
    # Results written by index come back in case order.
    out = np.zeros(3, dtype=np.int64)
    for _, t, idx in batches:
        out[idx] = t
    assert out.tolist() == [10, 11, 12]


def test_invalid_batching_arguments():
    with pytest.raises(ValueError, match="max_len"):
        make_windows(sequences([[1, 2]]), 0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainBatcher(sequences([[1, 2]]), 0)
    with pytest.raises(ValueError, match="no training windows"):
        TrainBatcher(make_windows(sequences([[1]]), 5), 4)
