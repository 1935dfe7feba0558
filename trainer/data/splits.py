"""Train / validation / test splits, the three protocols published numbers use.

* :func:`leave_one_out` — per-user data: the last item of each user is the test target, the
  second-last the validation target (SASRec, S3Rec and RecBole's sequential benchmark).
* :func:`time_split` — per-user data with timestamps: one global cut in time, so no training event
  is later than any test event.
* :func:`session_split` — session data shipped as a train/test file pair (session-rec, SR-GNN):
  every next item of every test session is predicted from its prefix.

All are vectorised: each one computes slice starts and lengths with numpy and gathers them with
:meth:`Sequences.from_slices`.
"""

from __future__ import annotations

import logging

import numpy as np

from trainer.configs import ConfigError
from trainer.data.loading import reindex_dataset
from trainer.data.types import DataError, EvalSet, SequenceDataset, Sequences, Split

log = logging.getLogger(__name__)


def leave_one_out(dataset: SequenceDataset) -> Split:
    """Last item → test, second-last → validation, the rest → training.

    The validation history is the training part; the test history adds the validation item.
    Sequences shorter than 3 cannot give a training pair plus two targets, so they are used whole
    for training and never evaluated (the usual 5-core data sets have none).
    """
    seqs = dataset.sequences
    lengths = seqs.lengths()
    starts = seqs.offsets[:-1]
    evaluated = lengths >= 3
    if not evaluated.any():
        raise DataError(f"{dataset.source}: leave-one-out needs sequences of at least 3 events; none has")
    short = int((~evaluated).sum())
    if short:
        log.info("%s: %d sequences shorter than 3 are used for training only", dataset.source, short)
    train = Sequences.from_slices(seqs.items, starts, np.where(evaluated, lengths - 2, lengths))
    ends = seqs.offsets[1:][evaluated]
    valid = EvalSet(
        Sequences.from_slices(seqs.items, starts[evaluated], lengths[evaluated] - 2), seqs.items[ends - 2]
    )
    test = EvalSet(
        Sequences.from_slices(seqs.items, starts[evaluated], lengths[evaluated] - 1), seqs.items[ends - 1]
    )
    return Split(train=train, valid=valid, test=test, vocab=dataset.vocab, name="leave_one_out")


def time_split(dataset: SequenceDataset, test_share: float = 0.1, valid_share: float = 0.1) -> Split:
    """Cut all events at two points in time: the last ``test_share`` are test, the ``valid_share``
    before them validation, everything earlier trains.

    Events are ranked globally by (timestamp, position in the dataset), i.e. ties keep the loader's
    order. Each validation or test event becomes one case predicted from everything before it in
    its own sequence, so the history may include that user's earlier validation/test events — the
    model sees them at inference time in production, too. Events that open their sequence have no
    history and are skipped (counted in the log). Cases are listed in time order.
    """
    if dataset.timestamps is None:
        raise DataError(f"{dataset.source}: a time split needs timestamps, and this log has none")
    _check_share("test_share", test_share, positive=True)
    _check_share("valid_share", valid_share, positive=False)
    if test_share + valid_share >= 1:
        raise ConfigError(f"test_share + valid_share must be below 1 (got {test_share} + {valid_share})")

    seqs = dataset.sequences
    n = len(seqs.items)
    lengths = seqs.lengths()
    seq_of = np.repeat(np.arange(len(seqs)), lengths)
    position = np.arange(n) - np.repeat(seqs.offsets[:-1], lengths)
    ts = dataset.timestamps
    within = seq_of[1:] == seq_of[:-1]
    if np.any(ts[1:][within] < ts[:-1][within]):
        raise DataError(
            f"{dataset.source}: events are not in time order within sequences; load with load_dataset"
        )

    order = np.lexsort((np.arange(n), ts))  # global time order, ties in dataset order
    n_test = round(n * test_share)
    n_valid = round(n * valid_share)
    if n_test == 0:
        raise DataError(f"{dataset.source}: test_share={test_share} of {n} events is no test event at all")
    valid_cut, test_cut = n - n_test - n_valid, n - n_test

    # Within a sequence time order equals position order, so the training part is a prefix.
    train_lengths = np.bincount(seq_of[order[:valid_cut]], minlength=len(seqs))
    kept = np.flatnonzero(train_lengths)
    train = Sequences.from_slices(seqs.items, seqs.offsets[kept], train_lengths[kept])

    def cases(events: np.ndarray, label: str) -> EvalSet:
        has_history = position[events] > 0
        skipped = int((~has_history).sum())
        if skipped:
            log.info(
                "%s: %d %s events open their sequence and have no history; skipped",
                dataset.source,
                skipped,
                label,
            )
        events = events[has_history]
        histories = Sequences.from_slices(seqs.items, seqs.offsets[seq_of[events]], position[events])
        return EvalSet(histories=histories, targets=seqs.items[events], source=seq_of[events])

    test = cases(order[test_cut:], "test")
    if not len(test):
        raise DataError(f"{dataset.source}: every test event opens its sequence; no test case has a history")
    return Split(
        train=train,
        valid=cases(order[valid_cut:test_cut], "validation"),
        test=test,
        vocab=dataset.vocab,
        name="time",
    )


def session_split(train: SequenceDataset, test: SequenceDataset, valid_share: float = 0.1) -> Split:
    """Sessions from a train/test file pair: predict every next item of every test session.

    A session ``[a, b, c]`` gives the cases ``[a] → b`` and ``[a, b] → c``. Test items unknown to
    the training vocabulary are dropped first (counted in the log). The last ``valid_share`` of
    training sessions, which in session files are the latest, become validation cases the same way;
    the rest train whole.
    """
    _check_share("valid_share", valid_share, positive=False)
    test = reindex_dataset(test, train.vocab)
    seqs = train.sequences
    n_valid = round(len(seqs) * valid_share)
    n_train = len(seqs) - n_valid
    if n_train == 0:
        raise DataError(f"{train.source}: valid_share={valid_share} leaves no training session")
    train_part = Sequences.from_slices(seqs.items, seqs.offsets[:n_train], seqs.lengths()[:n_train])
    valid_part = Sequences.from_slices(seqs.items, seqs.offsets[n_train:-1], seqs.lengths()[n_train:])
    test_cases = prefix_cases(test.sequences)
    if not len(test_cases):
        raise DataError(f"{test.source}: no test session has two known items, so there is nothing to predict")
    return Split(
        train=train_part, valid=prefix_cases(valid_part), test=test_cases, vocab=train.vocab, name="sessions"
    )


def prefix_cases(sequences: Sequences) -> EvalSet:
    """Every position p ≥ 1 of every sequence as a case: history ``seq[:p]``, target ``seq[p]``."""
    n_cases = np.maximum(sequences.lengths() - 1, 0)
    seq_of = np.repeat(np.arange(len(sequences)), n_cases)
    case_starts = np.repeat(np.cumsum(n_cases) - n_cases, n_cases)
    prefix = np.arange(len(seq_of)) - case_starts + 1
    starts = sequences.offsets[:-1][seq_of]
    return EvalSet(
        histories=Sequences.from_slices(sequences.items, starts, prefix),
        targets=sequences.items[starts + prefix],
        source=seq_of,
    )


def _check_share(name: str, value: float, *, positive: bool) -> None:
    low_ok = value > 0 if positive else value >= 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_ok or value >= 1:
        bound = "0 < share < 1" if positive else "0 ≤ share < 1"
        raise ConfigError(f"{name} must be a fraction with {bound}, got {value!r}")
