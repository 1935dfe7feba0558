"""Reading interaction logs, splitting them for evaluation, and batching them for training.

Typical use::

    ds = load_dataset(resolve_dataset("ml-100k"))
    split = leave_one_out(ds)
    batches = TrainBatcher(make_windows(split.train, max_len=50), batch_size=256)
"""

from trainer.data.batching import TrainBatcher, eval_batches, left_pad, make_windows
from trainer.data.loading import load_dataset, load_session_pair, reindex_dataset
from trainer.data.options import ReadOptions
from trainer.data.sources import DATASETS, fetch_ml100k, resolve_dataset
from trainer.data.splits import leave_one_out, prefix_cases, session_split, time_split
from trainer.data.stats import dataset_stats
from trainer.data.types import DataError, EvalSet, SequenceDataset, Sequences, Split, Vocabulary

__all__ = [
    "DATASETS",
    "DataError",
    "EvalSet",
    "ReadOptions",
    "SequenceDataset",
    "Sequences",
    "Split",
    "TrainBatcher",
    "Vocabulary",
    "dataset_stats",
    "eval_batches",
    "fetch_ml100k",
    "leave_one_out",
    "left_pad",
    "load_dataset",
    "load_session_pair",
    "make_windows",
    "prefix_cases",
    "reindex_dataset",
    "resolve_dataset",
    "session_split",
    "time_split",
]
