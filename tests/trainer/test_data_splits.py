"""Splits on tiny hand-made logs with exact expected arrays, plus the real-data protocols."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.configs import ConfigError
from trainer.data import (
    DataError,
    ReadOptions,
    SequenceDataset,
    Sequences,
    Vocabulary,
    leave_one_out,
    load_dataset,
    load_session_pair,
    session_split,
    time_split,
)


def dataset(seqs: list[list[int]], times: list[list[float]] | None = None) -> SequenceDataset:
    """A dataset whose item index equals the raw id (raw ids "1".."N")."""
    lengths = [len(s) for s in seqs]
    n_items = max(max(s) for s in seqs)
    return SequenceDataset(
        vocab=Vocabulary(raw_ids=tuple(str(i) for i in range(1, n_items + 1))),
        sequences=Sequences(
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            items=np.array([i for s in seqs for i in s], dtype=np.int64),
        ),
        sequence_ids=tuple(f"u{i}" for i in range(len(seqs))),
        timestamps=np.array([t for s in times for t in s], dtype=np.float64) if times else None,
        source="hand-made",
    )


def as_lists(seqs: Sequences) -> list[list[int]]:
    return [seqs.get(i).tolist() for i in range(len(seqs))]


def test_leave_one_out_exact_arrays():
    split = leave_one_out(dataset([[1, 2, 3, 4], [5, 6], [7, 8, 9]]))
    assert split.name == "leave_one_out"
    assert as_lists(split.train) == [[1, 2], [5, 6], [7]]  # the short sequence trains whole
    assert as_lists(split.valid.histories) == [[1, 2], [7]]
    assert split.valid.targets.tolist() == [3, 8]
    assert as_lists(split.test.histories) == [[1, 2, 3], [7, 8]]
    assert split.test.targets.tolist() == [4, 9]
    assert split.n_items == 10


def test_leave_one_out_on_ml100k(shared_data):
    split = leave_one_out(load_dataset(shared_data / "ml-100k" / "ml-100k.inter"))
    assert len(split.test) == len(split.valid) == 943
    assert len(split.train.items) == 100_000 - 2 * 943


def test_time_split_histories_include_earlier_held_out_events():
    ds = dataset(
        [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10]],
        [[1, 2, 8, 10], [3, 9], [4, 5, 6, 7]],
    )
    split = time_split(ds, test_share=0.2, valid_share=0.2)
    assert split.name == "time"
    assert as_lists(split.train) == [[1, 2], [5], [7, 8, 9]]  # everything before t=7
    # validation: t=7 (item 10), t=8 (item 3), in time order
    assert split.valid.targets.tolist() == [10, 3]
    assert as_lists(split.valid.histories) == [[7, 8, 9], [1, 2]]
    # test: t=9 (item 6), t=10 (item 4, whose history includes validation item 3)
    assert split.test.targets.tolist() == [6, 4]
    assert as_lists(split.test.histories) == [[5], [1, 2, 3]]


def test_time_split_skips_cases_without_history_and_breaks_ties_stably():
    ds = dataset([[1, 2], [3], [4, 5]], [[1, 5], [5], [2, 5]])
    split = time_split(ds, test_share=0.6, valid_share=0.0)  # the three events at t=5
    assert split.test.targets.tolist() == [2, 5]  # item 3 opens its sequence: skipped
    assert as_lists(split.test.histories) == [[1], [4]]
    assert len(split.valid) == 0


def test_time_split_needs_timestamps_and_sane_shares():
    with pytest.raises(DataError, match="needs timestamps"):
        time_split(dataset([[1, 2, 3]]))
    timed = dataset([[1, 2, 3]], [[1, 2, 3]])
    with pytest.raises(ConfigError, match="below 1"):
        time_split(timed, test_share=0.6, valid_share=0.5)
    with pytest.raises(ConfigError, match="test_share"):
        time_split(timed, test_share=0.0)


def test_time_split_on_ml100k(shared_data):
    ds = load_dataset(shared_data / "ml-100k" / "ml-100k.inter")
    split = time_split(ds)
    assert len(split.train.items) == 80_000
    # A user whose first event is held out gives a case without history, which is skipped.
    rank = np.empty(100_000, dtype=np.int64)
    rank[np.lexsort((np.arange(100_000), ds.timestamps))] = np.arange(100_000)
    late_starters = int((rank[ds.sequences.offsets[:-1]] >= 80_000).sum())
    assert late_starters > 0
    assert len(split.valid) + len(split.test) == 20_000 - late_starters
    assert split.test.histories.lengths().min() >= 1


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_session_split_drops_unknown_test_items(tmp_path):
    train_path = write(tmp_path, "train.txt", "a b c\nb c\na d\nc d a\n")
    test_path = write(tmp_path, "test.txt", "a z b\nz q\nc a\n")
    train, test = load_session_pair(train_path, test_path, ReadOptions(format="lines"))
    assert len(test.sequences) == 2  # "z q" had no known item left
    split = session_split(train, test, valid_share=0.25)
    index = train.vocab.index_map()
    a, b, c, d = (index[x] for x in "abcd")
    assert split.name == "sessions"
    assert as_lists(split.train) == [[a, b, c], [b, c], [a, d]]
    assert as_lists(split.valid.histories) == [[c], [c, d]] and split.valid.targets.tolist() == [d, a]
    assert as_lists(split.test.histories) == [[a], [c]] and split.test.targets.tolist() == [b, a]


def test_session_split_reindexes_a_test_set_read_on_its_own(tmp_path):
    train = load_dataset(write(tmp_path, "train.txt", "a b c\nb c\n"))
    test = load_dataset(write(tmp_path, "test.txt", "x c b a\nx y\n"))
    split = session_split(train, test, valid_share=0.0)
    index = train.vocab.index_map()
    assert as_lists(split.test.histories) == [[index["c"]], [index["c"], index["b"]]]
    assert split.test.targets.tolist() == [index["b"], index["a"]]
    assert len(split.valid) == 0


def test_session_split_on_yoochoose(shared_data):
    folder = shared_data / "yoochoose-100k-sessionrec"
    train, test = load_session_pair(
        folder / "yoochoose-clicks-100k_train_full.txt", folder / "yoochoose-clicks-100k_test.txt"
    )
    split = session_split(train, test)
    assert len(split.test) == 13_568 - 3_416  # every position after the first of every test session
    n_valid_sessions = round(17_794 * 0.1)
    assert len(split.train) == 17_794 - n_valid_sessions
    assert len(split.valid) == len(train.sequences.items) - len(split.train.items) - n_valid_sessions
