"""Summary numbers of a loaded log, for the dataset page and for sanity checks against papers."""

from __future__ import annotations

from typing import Any

import numpy as np

from trainer.data.types import SequenceDataset


def dataset_stats(dataset: SequenceDataset) -> dict[str, Any]:
    """Counts, sequence-length summary and histogram, time range and how the file was read, as JSON types.

    Histogram bins follow a 1-2-5 series (1, 2–4, 5–9, 10–19, 20–49, …; ``hi`` inclusive) because
    sequence lengths are long-tailed: equal-width bins would put almost everything in the first.
    """
    lengths = dataset.sequences.lengths()
    ts = dataset.timestamps
    return {
        "n_sequences": len(lengths),
        "n_items": len(dataset.vocab.raw_ids),
        "n_events": int(lengths.sum()),
        "length": {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "length_histogram": length_histogram(lengths),
        "time_range": None if ts is None or not len(ts) else {"min": float(ts.min()), "max": float(ts.max())},
        "reading": dataset.report.to_dict(),  # encoding, time unit, events dropped for bad times
    }


def length_histogram(lengths: np.ndarray) -> list[dict[str, int]]:
    """``[{lo, hi, count}]`` over 1-2-5 bins from the shortest to the longest sequence; ``hi`` inclusive."""
    top = int(lengths.max(initial=1))
    edges = [m * 10**e for e in range(len(str(top)) + 1) for m in (1, 2, 5)]
    edges = edges[: next(i for i, edge in enumerate(edges) if edge > top) + 1]  # last edge > longest
    counts, _ = np.histogram(lengths, bins=edges)
    bins = [
        {"lo": lo, "hi": hi - 1, "count": int(c)}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    low = int(lengths.min(initial=1))
    return [b for b in bins if b["hi"] >= low]  # no empty bins below the shortest sequence
