"""From a description of the data to a ready split: shared by the CLI, the benchmarks and the web app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from trainer.configs import Bound, ConfigError, ConfigMixin, between
from trainer.data import (
    DataError,
    ReadOptions,
    SequenceDataset,
    Split,
    leave_one_out,
    load_dataset,
    load_session_pair,
    resolve_dataset,
    session_split,
    time_split,
)

logger = logging.getLogger(__name__)

SPLITS = ("leave_one_out", "time", "sessions")


@dataclass(frozen=True)
class DataSpec(ConfigMixin):
    """Which log to read, how, and how to split it into train / validation / test."""

    path: str  # a file, or a dataset the project can fetch itself ("ml-100k")
    read: dict[str, Any] = field(default_factory=dict)  # ReadOptions fields
    split: str = "leave_one_out"  # leave_one_out | time | sessions
    test_path: str | None = None  # sessions: the test file paired with ``path``
    test_share: float = 0.1  # time split: last share of events as test
    valid_share: float = 0.1  # time split: share before the test cut; sessions: last train sessions

    section = "split"
    BOUNDS: ClassVar[dict[str, Bound]] = {
        "test_share": between(
            0, 1, "a share of the events; both cuts must leave training data", lo_open=True, hi_open=True
        ),
        "valid_share": between(0, 1, "as test_share", lo_open=True, hi_open=True),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split not in SPLITS:
            raise ConfigError(f"split.split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.split == "sessions" and not self.test_path:
            raise ConfigError(
                "the sessions split needs test_path: the test file paired with the training file"
            )
        ReadOptions.from_dict(self.read)  # validate early, with ReadOptions' own messages

    @property
    def read_options(self) -> ReadOptions:
        return ReadOptions.from_dict(self.read)


def load_data(spec: DataSpec) -> tuple[SequenceDataset, SequenceDataset | None]:
    """The dataset(s) ``spec`` names: the log, and for the sessions split its test file.

    A log too small for the split is refused here (:func:`check_trainable`), before any training.
    """
    options = spec.read_options
    if spec.split == "sessions":
        train, test = load_session_pair(resolve_dataset(spec.path), resolve_dataset(spec.test_path), options)
        check_trainable(train, split=spec.split)
        return train, test
    dataset = load_dataset(resolve_dataset(spec.path), options)
    check_trainable(dataset, split=spec.split)
    return dataset, None


def split_data(spec: DataSpec, dataset: SequenceDataset, test: SequenceDataset | None = None) -> Split:
    """Split already-loaded data the way ``spec`` says."""
    if spec.split == "sessions":
        if test is None:
            raise ConfigError("the sessions split needs the test sessions")
        split = session_split(dataset, test, valid_share=spec.valid_share)
    elif spec.split == "time":
        split = time_split(dataset, test_share=spec.test_share, valid_share=spec.valid_share)
    else:
        split = leave_one_out(dataset)
    logger.info(
        "%s split of %s: %d training sequences, %d validation and %d test cases, %d items",
        split.name,
        spec.path,
        len(split.train),
        len(split.valid),
        len(split.test),
        split.n_items - 1,
    )
    check_learnable(split)
    return split


def check_learnable(split: Split) -> None:
    """Refuse data on which any model scores perfectly without learning anything.

    With one item, or every history the same, each metric comes out 1.0 (or close) for the trivial
    model, and such a model must never reach serving with figures that look excellent.
    """
    items = split.n_items - 1
    if items < 2:
        raise DataError(
            f"the log has {items} distinct item{'s' if items != 1 else ''}: there is nothing to rank; "
            "a recommender needs at least 2 items"
        )
    train = split.train
    lengths = np.diff(train.offsets)
    if len(train) > 1 and np.all(lengths == lengths[0]):
        rows = train.items.reshape(len(train), int(lengths[0]))
        if np.all(rows == rows[0]):
            raise DataError(
                f"all {len(train):,} training histories are identical: there is no behaviour to learn "
                "(is the user or session column right?)"
            )


# What leave-one-out (the default split) needs, derived from trainer.data.splits.leave_one_out: it
# holds out the last two events of every sequence of at least 3, and trains on the rest, so it needs
# one sequence of ≥ 3 events to evaluate, and a training pair (two events left to train on): a
# sequence of exactly 2 (trained on whole) or of ≥ 4. Every split needs 2 items (check_learnable).
MIN_ITEMS = 2
MIN_EVALUATED_LENGTH = 3  # leave-one-out evaluates sequences of at least this many events


def check_trainable(dataset: SequenceDataset, split: str = "leave_one_out") -> None:
    """Refuse, when the log is read, one too small to train and evaluate on, saying what is missing.

    The same conditions would otherwise fail later, at a job's first step, with a message about
    windows or splits; or, worse, train a model that scores perfectly on nothing (one item, every
    sequence the same: the conditions of :func:`check_learnable`). The web app runs this when an
    upload is parsed, the CLI before training. ``split`` is the split that will be used: the
    leave-one-out conditions are its own (the time and session splits check theirs when they cut).
    """
    lengths = dataset.sequences.lengths()
    items, sequences, events = len(dataset.vocab.raw_ids), len(lengths), int(lengths.sum())
    needs = []
    if items < MIN_ITEMS:
        needs.append(f"{MIN_ITEMS} distinct items (with one there is nothing to rank)")
    if split == "leave_one_out":
        if not (lengths >= MIN_EVALUATED_LENGTH).any():
            needs.append(
                f"one sequence of {MIN_EVALUATED_LENGTH} or more events (its last two are the validation "
                "and test targets)"
            )
        elif not ((lengths == 2) | (lengths >= MIN_EVALUATED_LENGTH + 1)).any():
            needs.append(
                "one sequence of 2, or of 4 or more events, to train on (every sequence has 3: "
                "after its two held-out targets, one event is no training pair)"
            )
    if needs:
        counts = ", ".join(
            _count(n, word) for n, word in ((items, "item"), (sequences, "sequence"), (events, "event"))
        )
        raise DataError(
            f"{dataset.source}: too small to train and evaluate ({counts}): training and evaluation need "
            f"at least {' and '.join(needs)}"
        )
    if sequences > 1 and np.all(lengths == lengths[0]):
        rows = dataset.sequences.items.reshape(sequences, int(lengths[0]))
        if np.all(rows == rows[0]):
            raise DataError(
                f"{dataset.source}: all {sequences:,} sequences are identical: there is no behaviour to "
                "learn (is the user or session column right?)"
            )


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def prepare_split(spec: DataSpec) -> Split:
    """Read the log(s) named by ``spec`` and split them; raises DataError/ConfigError with reasons."""
    return split_data(spec, *load_data(spec))
