"""The parsed log in one normalised file, and a preview of the upload as the user sent it.

Whatever the upload's format (CSV, ``.inter``, one sequence per line, Parquet), a parsed dataset is
written once as a TSV of ``user_id, item_id[, timestamp]`` in sequence order. Training reads that
file with fixed options, and an increment is the parent's normalised events followed by the new
upload's events, filtered together.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trainer.data import DataError, ReadOptions, SequenceDataset
from trainer.data.encoding import detect_encoding
from trainer.data.loading import build_dataset
from trainer.data.readers import read_events

EVENTS_FILE = "events.tsv"
PREVIEW_LINES = 10
PREVIEW_LINE_CHARS = 300


def normalised_read_options(has_timestamps: bool) -> dict[str, Any]:
    """ReadOptions fields that read an events file written by :func:`write_events`."""
    return {
        "format": "delimited",
        "delimiter": "\t",
        "has_header": True,
        "user_col": "user_id",
        "item_col": "item_id",
        "time_col": "timestamp" if has_timestamps else None,
    }


def write_events(dataset: SequenceDataset, path: Path) -> Path:
    """Write ``dataset``'s events as TSV (temp file + rename, so readers never see half a file)."""
    lengths = dataset.sequences.lengths()
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    columns = {
        "user_id": pl.Series(dataset.sequence_ids, dtype=pl.Utf8).gather(owner),
        "item_id": pl.Series(dataset.vocab.raw_ids, dtype=pl.Utf8).gather(dataset.sequences.items - 1),
    }
    if dataset.timestamps is not None:
        columns["timestamp"] = pl.Series(dataset.timestamps, dtype=pl.Float64)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pl.DataFrame(columns).write_csv(tmp, separator="\t")
    os.replace(tmp, path)
    return path


def _without_filters(options: ReadOptions) -> ReadOptions:
    return dataclasses.replace(
        options, drop_consecutive_duplicates=False, min_item_count=0, min_sequence_length=0, k_core=0
    )


def load_with_parent(
    path: Path, options: ReadOptions, parent_events: Path, *, name: str | None = None
) -> SequenceDataset:
    """The parent's events followed by those of ``path``, ordered and filtered together.

    The new file alone may hold single events per user (new clicks of known users), so it is read
    as raw events, not as a dataset of its own. ``name`` is how messages call the new file; the
    report (encoding, dropped events) is the new file's, the parent's events being normalised.
    """
    name = name or path.name
    with open(parent_events, encoding="utf-8") as f:
        has_ts = "timestamp" in f.readline().rstrip("\n").split("\t")
    old = read_events(
        parent_events, ReadOptions.from_dict(normalised_read_options(has_ts)), "the parent's events"
    )
    new = read_events(path, _without_filters(options), name)
    if ("ts" in old.frame.columns) != ("ts" in new.frame.columns):
        which = (
            "has timestamps but the new file has none" if has_ts else "has no timestamps but the new file has"
        )
        raise DataError(f"{name}: cannot append: the parent dataset {which}; map time_col to match")
    columns = ["seq", "item", *(["ts"] if "ts" in old.frame.columns else [])]
    casts = {"seq": pl.Utf8, "item": pl.Utf8, "ts": pl.Float64}
    events = pl.concat(
        [raw.frame.select(pl.col(c).cast(casts[c]) for c in columns) for raw in (old, new)], how="vertical"
    )
    return build_dataset(events, name, options, new.report)


def raw_preview(path: Path) -> list[str]:
    """The first lines of the upload as text, in its own encoding (nothing for binary files such as
    Parquet, or text in no encoding the reader accepts: its parse says why)."""
    with open(path, "rb") as f:
        head = f.read(PREVIEW_LINES * (PREVIEW_LINE_CHARS + 1) * 4)
        complete = not f.read(1)
    if head.startswith(b"PAR1"):
        return []
    try:
        encoding = detect_encoding(head, complete=complete, name=path.name)
    except DataError:
        return []
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    return [line[:PREVIEW_LINE_CHARS] for line in text.splitlines()[:PREVIEW_LINES]]


def event_preview(dataset: SequenceDataset, n: int = PREVIEW_LINES) -> list[dict[str, Any]]:
    """The first ``n`` events as the parser understood them (user, item, timestamp)."""
    items = dataset.sequences.items[:n]
    owner = np.searchsorted(dataset.sequences.offsets, np.arange(len(items)), side="right") - 1
    rows = []
    for position, (item, seq) in enumerate(zip(items, owner, strict=True)):
        ts = dataset.timestamps[position] if dataset.timestamps is not None else None
        rows.append(
            {
                "user": dataset.sequence_ids[int(seq)],
                "item": dataset.vocab.raw_ids[int(item) - 1],
                "timestamp": float(ts) if ts is not None else None,
            }
        )
    return rows
