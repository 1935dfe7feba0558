"""The in-memory shapes every part of the trainer agrees on.

Sequences are stored flat (one ``items`` array plus ``offsets``) rather than as lists of arrays: a
million-event log then costs two numpy arrays, and slicing a user's history is a view, not a copy.
Item index 0 is reserved for padding everywhere; real items are 1..n_items-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.data.messages import bound_message


class DataError(ValueError):
    """Bad input data, with a message a user can act on (file, line, problem).

    The message is bounded here, once for every raiser: it is shown whole on the dataset page, in
    a job's error and in API bodies (see :mod:`trainer.data.messages`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(bound_message(message))


@dataclass(frozen=True)
class ReadReport:
    """What reading a log decided or dropped on the user's behalf, for the dataset page and the log."""

    encoding: str | None = None  # the text encoding read ("utf-8", "utf-16-le", …); None for Parquet
    time_unit: str | None = None  # unit of a numeric time column before conversion to seconds
    dropped_bad_timestamps: int = 0  # events dropped under ReadOptions.bad_timestamps="drop"

    def to_dict(self) -> dict[str, object]:
        return {
            "encoding": self.encoding,
            "time_unit": self.time_unit,
            "dropped_bad_timestamps": self.dropped_bad_timestamps,
        }


@dataclass(frozen=True)
class Vocabulary:
    """Raw item ids (kept as strings) ↔ dense indices 1..len; index 0 is padding.

    Raw ids are canonicalised to ``str`` so that ``42`` from a CSV and ``"42"`` from a JSON request
    name the same item.
    """

    raw_ids: tuple[str, ...]

    @property
    def n_items(self) -> int:
        """Size of the output layer: every real item plus the padding index 0."""
        return len(self.raw_ids) + 1

    def index_map(self) -> dict[str, int]:
        """Raw id → index, built on demand (callers that map many ids should keep it)."""
        return {raw: i + 1 for i, raw in enumerate(self.raw_ids)}

    def to_raw(self, indices: np.ndarray) -> list[str]:
        """Dense indices (≥ 1) → raw ids."""
        return [self.raw_ids[int(i) - 1] for i in indices]


@dataclass(frozen=True)
class Sequences:
    """Many variable-length item sequences, flat: sequence i is ``items[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # int64 [n_sequences + 1], offsets[0] == 0
    items: np.ndarray  # int64 [n_events], values in 1..n_items-1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def get(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    @classmethod
    def from_slices(cls, items: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Sequences:
        """Sequence j = ``items[starts[j] : starts[j] + lengths[j]]``, gathered in one numpy pass.

        Splits and windows are all "take these slices of the event array"; doing it with one
        ``np.repeat`` gather keeps them free of per-sequence Python loops.
        """
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        source = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return cls(offsets=offsets, items=np.asarray(items, dtype=np.int64)[source])


@dataclass(frozen=True)
class EvalSet:
    """Prediction cases: history ``histories.get(i)`` should rank ``targets[i]`` first.

    ``source`` names, per case, the sequence its history was cut from, where the cases of one
    sequence are prefixes of each other (a time split, every prefix of a session). A causal model
    then scores all of them from one pass over the longest (see ``trainer.evaluation``).
    """

    histories: Sequences
    targets: np.ndarray  # int64 [n_cases]
    source: np.ndarray | None = None  # int64 [n_cases], or None where no two cases share a history

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray) -> EvalSet:
        """The cases at ``index``, in that order."""
        lengths = self.histories.lengths()[index]
        histories = Sequences.from_slices(self.histories.items, self.histories.offsets[:-1][index], lengths)
        source = None if self.source is None else self.source[index]
        return EvalSet(histories, self.targets[index], source)


@dataclass(frozen=True)
class SequenceDataset:
    """A whole interaction log as ordered per-user (or per-session) item sequences."""

    vocab: Vocabulary
    sequences: Sequences
    sequence_ids: tuple[str, ...]  # raw user or session id of each sequence
    timestamps: np.ndarray | None  # float64 [n_events] aligned with sequences.items, or None
    source: str  # the file's name (or a label), for messages; never a folder
    report: ReadReport = ReadReport()

    @property
    def n_items(self) -> int:
        return self.vocab.n_items


@dataclass(frozen=True)
class Split:
    """Training sequences plus validation and test cases, all indexed in one vocabulary."""

    train: Sequences
    valid: EvalSet
    test: EvalSet
    vocab: Vocabulary
    name: str  # "leave_one_out", "time", "sessions"

    @property
    def n_items(self) -> int:
        return self.vocab.n_items
