"""Raw events → :class:`SequenceDataset`: order, de-duplicate, filter, index.

Ordering rules (the same for every format, so results do not depend on how a log was stored):

* sequences appear in the order of their first line in the file;
* events within a sequence are sorted by timestamp with a stable sort, so equal timestamps keep
  file order; without a timestamp, file order is the order;
* item indices 1..N follow the order in which items first appear in the file among the events
  that survive filtering (0 stays padding), so the vocabulary is deterministic and contiguous.

Everything after reading works on integer codes in numpy; the only strings kept are the distinct
ids, once each.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import polars as pl

from trainer.data.options import ReadOptions
from trainer.data.readers import polars_reason, read_events
from trainer.data.types import DataError, ReadReport, SequenceDataset, Sequences, Vocabulary

log = logging.getLogger(__name__)


def load_dataset(
    path: str | Path, options: ReadOptions | None = None, *, name: str | None = None
) -> SequenceDataset:
    """Read an interaction log (CSV/TSV, RecBole ``.inter``, one sequence per line, or Parquet).

    Raises :class:`DataError` naming the file (``name``, default the file's name: never its folder),
    the line where it can, and the problem; never an empty dataset: at least one sequence with two
    events (something to learn from) must remain. Whether that is enough to train and evaluate on
    is :func:`trainer.runs.check_trainable`'s question.
    """
    path = Path(path)
    name = name or path.name
    options = options or ReadOptions()
    try:
        events = read_events(path, options, name)
        return build_dataset(events.frame, name, options, events.report)
    except pl.exceptions.PolarsError as exc:  # a parser corner the readers did not anticipate
        raise DataError(f"{name}: cannot be read: {polars_reason(exc)}") from None
    except OSError as exc:  # never str(exc): it holds the full path
        raise DataError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def build_dataset(
    events: pl.DataFrame, source: str, options: ReadOptions, read_report: ReadReport | None = None
) -> SequenceDataset:
    """Events in file order (columns seq, item, optional ts) → an ordered, filtered, indexed dataset.

    ``source`` names the log in messages; ``read_report`` (what reading decided) stays on the dataset.
    """
    seq_ids, seq = _codes(events["seq"])
    item_ids, item = _codes(events["item"])
    row = np.arange(len(seq), dtype=np.int64)
    ts = events["ts"].to_numpy().astype(np.float64) if "ts" in events.columns else None
    del events

    # Sequence codes already follow first appearance; lexsort is stable and `row` makes ties explicit.
    order = np.lexsort((row, ts, seq) if ts is not None else (row, seq))
    seq, item, row = seq[order], item[order], row[order]
    ts = ts[order] if ts is not None else None
    n_read = len(seq)

    keep = np.ones(n_read, dtype=bool)
    report: list[str] = []
    if options.drop_consecutive_duplicates:
        keep[1:] = (item[1:] != item[:-1]) | (seq[1:] != seq[:-1])
        report.append(f"drop_consecutive_duplicates removed {n_read - int(keep.sum())} events")
        log.info("%s: %s", source, report[-1])
    if options.filters:
        keep &= _count_filter(seq, item, keep, options, report)
        log.info("%s: %s", source, "; ".join(report[-1:]))
    seq, item, row = seq[keep], item[keep], row[keep]
    ts = ts[keep] if ts is not None else None

    lengths = np.bincount(seq, minlength=len(seq_ids))
    if not len(lengths) or lengths.max(initial=0) < 2:
        done = "; ".join(report) if report else "no filtering was applied"
        raise DataError(
            f"{source}: too few events: {len(item)} of {n_read} events left in {int((lengths > 0).sum())} "
            f"sequences, and none has the 2 events needed for a training pair ({done})"
        )

    # Vocabulary: items in order of first appearance in the file, among surviving events.
    in_file_order = item[np.argsort(row, kind="stable")]
    codes, first = np.unique(in_file_order, return_index=True)
    appearance = codes[np.argsort(first, kind="stable")]
    index = np.zeros(len(item_ids), dtype=np.int64)
    index[appearance] = np.arange(1, len(appearance) + 1)

    present = np.flatnonzero(lengths)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(lengths[present], out=offsets[1:])
    dataset = SequenceDataset(
        vocab=Vocabulary(raw_ids=tuple(item_ids.gather(appearance).to_list())),
        sequences=Sequences(offsets=offsets, items=index[item]),
        sequence_ids=tuple(seq_ids.gather(present).to_list()),
        timestamps=ts,
        source=source,
        report=read_report or ReadReport(),
    )
    log.info(
        "%s: %d sequences, %d items, %d events%s",
        source,
        len(dataset.sequences),
        len(dataset.vocab.raw_ids),
        len(dataset.sequences.items),
        "" if ts is not None else " (no timestamps: file order)",
    )
    return dataset


def _codes(values: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """Distinct values in order of first appearance, and each value's position in that list."""
    distinct = values.unique(maintain_order=True)
    codes = values.cast(pl.Enum(distinct)).to_physical().to_numpy().astype(np.int64)
    return distinct, codes


def _count_filter(
    seq: np.ndarray, item: np.ndarray, keep: np.ndarray, options: ReadOptions, report: list[str]
) -> np.ndarray:
    """Item-count, then sequence-length filtering; repeated until stable when ``k_core`` is set.

    One pass can push the other below its threshold (dropping a rare item shortens a sequence),
    which is why k-core iterates; plain minimum counts apply once, as their names promise.
    """
    min_item = max(options.min_item_count, options.k_core)
    min_len = max(options.min_sequence_length, options.k_core)
    keep = keep.copy()
    start_events = int(keep.sum())
    items_before = int((np.bincount(item[keep]) > 0).sum())
    seqs_before = int((np.bincount(seq[keep]) > 0).sum())
    rounds = 0
    while True:
        rounds += 1
        changed = False
        if min_item:
            counts = np.bincount(item, weights=keep, minlength=item.max() + 1)
            drop = keep & (counts[item] < min_item)
            changed |= bool(drop.any())
            keep &= ~drop
        if min_len:
            counts = np.bincount(seq, weights=keep, minlength=seq.max() + 1)
            drop = keep & (counts[seq] < min_len)
            changed |= bool(drop.any())
            keep &= ~drop
        if not options.k_core or not changed:
            break
    items_after = int((np.bincount(item[keep]) > 0).sum()) if keep.any() else 0
    seqs_after = int((np.bincount(seq[keep]) > 0).sum()) if keep.any() else 0
    settings = ", ".join(
        f"{name}={getattr(options, name)}"
        for name in ("min_item_count", "min_sequence_length", "k_core")
        if getattr(options, name)
    )
    report.append(
        f"{settings} removed {start_events - int(keep.sum())} events, {items_before - items_after} items "
        f"and {seqs_before - seqs_after} sequences" + (f" in {rounds} rounds" if options.k_core else "")
    )
    return keep


def reindex_dataset(dataset: SequenceDataset, vocab: Vocabulary) -> SequenceDataset:
    """Re-express ``dataset`` in another vocabulary, dropping events whose item it lacks.

    Used for a test file read on its own: a model can only score items it was trained on, so
    unknown items are removed (and counted in the log); sequences left empty are removed too.
    """
    if dataset.vocab == vocab:
        return dataset
    target = vocab.index_map()
    mapping = np.array([0, *(target.get(raw, 0) for raw in dataset.vocab.raw_ids)], dtype=np.int64)
    items = mapping[dataset.sequences.items]
    known = items > 0
    lengths = np.bincount(
        np.repeat(np.arange(len(dataset.sequences)), dataset.sequences.lengths())[known],
        minlength=len(dataset.sequences),
    )
    present = np.flatnonzero(lengths)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(lengths[present], out=offsets[1:])
    dropped = int((~known).sum())
    if dropped:
        unknown_items = int((mapping[1:] == 0).sum())
        log.info(
            "%s: dropped %d events of %d items unknown to the training vocabulary; %d sequences left empty",
            dataset.source,
            dropped,
            unknown_items,
            len(dataset.sequences) - len(present),
        )
    return SequenceDataset(
        vocab=vocab,
        sequences=Sequences(offsets=offsets, items=items[known]),
        sequence_ids=tuple(dataset.sequence_ids[i] for i in present),
        timestamps=dataset.timestamps[known] if dataset.timestamps is not None else None,
        source=dataset.source,
        report=dataset.report,
    )


def load_session_pair(
    train_path: str | Path, test_path: str | Path, options: ReadOptions | None = None
) -> tuple[SequenceDataset, SequenceDataset]:
    """Load a train/test session file pair, the test file indexed with the train vocabulary.

    Count filters (``min_item_count``, ``min_sequence_length``, ``k_core``) shape the training data
    only; the test file keeps every session so that evaluation is not made easier by filtering.
    Format, columns and duplicate dropping apply to both.
    """
    options = options or ReadOptions()
    train = load_dataset(train_path, options)
    test_options = dataclasses.replace(options, min_item_count=0, min_sequence_length=0, k_core=0)
    test = reindex_dataset(load_dataset(test_path, test_options), train.vocab)
    if not len(test.sequences):
        raise DataError(
            f"{Path(test_path).name}: none of its items occur in the training file {Path(train_path).name}"
        )
    return train, test
