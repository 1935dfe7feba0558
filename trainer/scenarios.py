"""The paper's three scenarios, each a side-by-side comparison of training runs.

- **TS** (training from scratch): StackRec's progressive schedule against the final depth trained
  from scratch, with the shallow first-stage model alone beside them (if it already matches the
  deep model, depth does not pay on that data and a "speedup" says nothing about stacking).
- **CL** (continual learning): the data arrives in time order; a model trained on the first share
  is stacked deeper when the rest arrives and trained on all of it, against a deep model
  retrained from scratch on all of it.
- **TF** (transfer learning): pre-train on a source data set, carry the blocks to the target
  catalogue (its own embeddings and output layer), stack and fine-tune, against the deep model
  trained on the target alone.

Every run is evaluated on the same test cases, and per-case ranks are kept so that the benchmark
can put bootstrap intervals on each metric and on paired differences.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer.configs import ConfigError
from trainer.data.types import SequenceDataset, Sequences, Split
from trainer.evaluation import evaluate
from trainer.models.base import ModelConfig, SequentialRecommender
from trainer.schedule import NO_STACKING, ScheduleEvent, StackingSchedule, StageReport, run_schedule
from trainer.training import TrainConfig
from trainer.transfer import transfer_blocks

logger = logging.getLogger(__name__)

Progress = Callable[[str, ScheduleEvent], None] | None


# A run "reached" a target once its validation came within 1 % (relative) of it: the benchmark,
# the CLI and the web app's comparison all judge speed-ups this way.
REACH_TOLERANCE = 0.01


@dataclass
class RunReport:
    """One trained model of a comparison, with everything a results table needs."""

    name: str
    blocks: int
    stages: list[StageReport]
    test: dict[str, float]
    test_ranks: np.ndarray = field(repr=False)
    prior_s: float = 0.0  # training that happened before this run (CL's shallow model, TF's pre-training)

    @property
    def wall_s(self) -> float:
        return sum(s.wall_s for s in self.stages)

    @property
    def best_valid(self) -> dict[str, float]:
        """Validation metrics of the model the run kept (see ``StackingSchedule.keep``)."""
        kept = [s for s in self.stages if s.kept]
        return (kept[-1] if kept else self.stages[-1]).best

    def curve(self, metric: str) -> list[tuple[float, float, int]]:
        """(seconds since this run started, validation value, stage) for every validation."""
        return [(r["wall_s"], r["metrics"][metric], s.stage) for s in self.stages for r in s.history]

    def time_to_reach(self, metric: str, target: float, tolerance: float = REACH_TOLERANCE) -> float | None:
        """Seconds until validation ``metric`` first reached ``target`` within ``tolerance`` (relative)."""
        reached = self.reach(metric, target, tolerance)
        return reached[0] if reached else None

    def steps_to_reach(self, metric: str, target: float, tolerance: float = REACH_TOLERANCE) -> int | None:
        """Optimiser steps, over all stages, until ``metric`` first reached ``target``."""
        reached = self.reach(metric, target, tolerance)
        return reached[1] if reached else None

    def reach(
        self, metric: str, target: float, tolerance: float = REACH_TOLERANCE
    ) -> tuple[float, int] | None:
        """(seconds, optimiser steps over all stages) at the first validation within ``tolerance``
        of ``target``. Time to a target is steps × cost per step: a stacked run can beat scratch
        only by needing fewer steps or by taking cheaper ones, and the two figures tell them apart.
        """
        steps_before = 0
        for stage in self.stages:
            for record in stage.history:
                if record["metrics"][metric] >= target * (1.0 - tolerance):
                    return record["wall_s"], steps_before + record["step"]
            steps_before += stage.steps
        return None

    def stack_changes(self, metric: str) -> list[tuple[float, float | None]]:
        """Per stack, two differences from the best of the model stacked (which is what was stacked):
        the deeper model's validation before it trained — what the stacking operation itself cost,
        zero for a function-preserving stack — and its first validation after one validation
        interval of training (``None`` if the stage ended before one). A model trained elsewhere
        (CL's deployed model) is validated on this run's data before it is stacked, so its stack is
        measured against what it scored there.
        """
        changes = []
        for before, after in zip(self.stages, self.stages[1:], strict=False):
            if before.best and after.history:
                values = [r["metrics"][metric] - before.best[metric] for r in after.history[:2]]
                changes.append((values[0], values[1] if len(values) > 1 else None))
        return changes

    def stage_boundaries(self) -> list[float]:
        return [s.start_s for s in self.stages[1:] if s.stopped_by != "initial"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blocks": self.blocks,
            "wall_s": self.wall_s,
            "prior_s": self.prior_s,
            "test": self.test,
            "best_valid": self.best_valid,
            "stages": [dataclasses.asdict(s) for s in self.stages],
        }


def train_run(
    name: str,
    model_name: str,
    model_config: ModelConfig,
    split: Split,
    config: TrainConfig,
    schedule: StackingSchedule,
    *,
    initial_model: SequentialRecommender | None = None,
    prior_s: float = 0.0,
    on_progress: Progress = None,
) -> tuple[RunReport, SequentialRecommender]:
    """Run ``schedule`` and evaluate its final model on ``split.test``."""
    logger.info("run %s: %s blocks (%s)", name, " → ".join(map(str, schedule.depths())), schedule.method)
    result = run_schedule(
        model_name,
        model_config,
        split,
        config,
        schedule,
        initial_model=initial_model,
        on_progress=(lambda event: on_progress(name, event)) if on_progress else None,
    )
    test = evaluate(result.model, split.test, max_len=config.max_len, exclude_seen=config.exclude_seen)
    report = RunReport(name, len(result.model.blocks), result.stages, test.metrics, test.ranks, prior_s)
    return report, result.model


def _single_depth_config(config: TrainConfig, schedule: StackingSchedule) -> TrainConfig:
    """The training config of a run without stacking (scratch, shallow, deployed, pre-trained).

    A time budget is per stage, so a stacked run of n stages may train n budgets' worth; a
    single-depth run gets the same total, or the race to scratch's best would be run against a
    scratch model cut off early (and a "speed-up" would only measure the cut).
    """
    if not config.time_budget_s:
        return config
    return dataclasses.replace(config, time_budget_s=config.time_budget_s * len(schedule.depths()))


def _scratch(schedule: StackingSchedule) -> StackingSchedule:
    return dataclasses.replace(schedule, method=NO_STACKING, start_blocks=schedule.final_blocks)


def _shallow(schedule: StackingSchedule) -> StackingSchedule:
    return dataclasses.replace(
        schedule, method=NO_STACKING, start_blocks=schedule.start_blocks, final_blocks=schedule.start_blocks
    )


def scenario_ts(
    split: Split,
    model_name: str,
    model_config: ModelConfig,
    config: TrainConfig,
    schedule: StackingSchedule,
    methods: tuple[str, ...],
    *,
    include_shallow: bool = True,
    on_progress: Progress = None,
) -> list[RunReport]:
    """Training from scratch: shallow alone, deep from scratch, and StackRec with each method."""
    reports = []
    single = _single_depth_config(config, schedule)
    plans = [(f"scratch-{schedule.final_blocks}", _scratch(schedule), single)]
    if include_shallow:
        plans.insert(0, (f"shallow-{schedule.start_blocks}", _shallow(schedule), single))
    plans += [(f"stackrec-{m}", dataclasses.replace(schedule, method=m), config) for m in methods]
    for name, plan, run_cfg in plans:
        report, _ = train_run(name, model_name, model_config, split, run_cfg, plan, on_progress=on_progress)
        reports.append(report)
    return reports


def first_share(dataset: SequenceDataset, share: float) -> SequenceDataset:
    """The events that had arrived when ``share`` of the log had: by timestamp, else per sequence.

    With timestamps the cut is global in time (stable: file order breaks ties); a log without
    them keeps the first ``share`` of every sequence. The vocabulary is kept whole, so a model
    trained on the chunk can be stacked and trained on the full log without remapping items.
    """
    if not 0.0 < share < 1.0:
        raise ConfigError(f"the first chunk's share must be between 0 and 1, got {share}")
    seqs = dataset.sequences
    lengths = seqs.lengths()
    if dataset.timestamps is not None:
        order = np.argsort(dataset.timestamps, kind="stable")
        keep = np.zeros(len(seqs.items), dtype=bool)
        keep[order[: round(share * len(order))]] = True
    else:
        position = np.arange(len(seqs.items)) - np.repeat(seqs.offsets[:-1], lengths)
        keep = position < np.ceil(share * np.repeat(lengths, lengths))
    owner = np.repeat(np.arange(len(seqs)), lengths)
    kept = np.bincount(owner[keep], minlength=len(seqs))
    present = np.flatnonzero(kept)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(kept[present], out=offsets[1:])
    return SequenceDataset(
        vocab=dataset.vocab,
        sequences=Sequences(offsets, seqs.items[keep]),
        sequence_ids=tuple(dataset.sequence_ids[i] for i in present),
        timestamps=dataset.timestamps[keep] if dataset.timestamps is not None else None,
        source=f"{dataset.source} (first {share:.0%})",
    )


def scenario_cl(
    first_split: Split,
    full_split: Split,
    model_name: str,
    model_config: ModelConfig,
    config: TrainConfig,
    schedule: StackingSchedule,
    methods: tuple[str, ...],
    *,
    on_progress: Progress = None,
) -> list[RunReport]:
    """Continual learning: a ``start_blocks`` model trained on the first chunk is stacked up to
    ``final_blocks`` and trained on all data, against ``final_blocks`` from scratch on all data.

    Both splits must share one vocabulary (see :func:`first_share`). Each stacked run reports the
    time spent on the first chunk as ``prior_s``: it is sunk cost in production (the deployed model
    already exists), but part of the bill if one counts from nothing.
    """
    if first_split.vocab != full_split.vocab:
        raise ConfigError("the first chunk and the full data must be indexed in one vocabulary")
    single = _single_depth_config(config, schedule)
    deployed, deployed_model = train_run(
        f"deployed-{schedule.start_blocks} (first chunk)",
        model_name,
        model_config,
        first_split,
        single,
        _shallow(schedule),
        on_progress=on_progress,
    )
    # What the deployed model scores on the full data's test cases, before any retraining.
    test = evaluate(deployed_model, full_split.test, max_len=config.max_len, exclude_seen=config.exclude_seen)
    deployed.test, deployed.test_ranks = test.metrics, test.ranks
    reports = [deployed]
    scratch, _ = train_run(
        f"scratch-{schedule.final_blocks}",
        model_name,
        model_config,
        full_split,
        single,
        _scratch(schedule),
        on_progress=on_progress,
    )
    reports.append(scratch)
    start = functools.partial(copy.deepcopy, deployed_model)  # each method stacks the same model
    reports += _stacked_runs(
        start, deployed.wall_s, model_name, model_config, full_split, config, schedule, methods, on_progress
    )
    return reports


def scenario_tf(
    source_split: Split,
    target_split: Split,
    model_name: str,
    model_config: ModelConfig,
    config: TrainConfig,
    schedule: StackingSchedule,
    methods: tuple[str, ...],
    *,
    on_progress: Progress = None,
) -> list[RunReport]:
    """Transfer: pre-train ``start_blocks`` on the source, carry the blocks to the target catalogue,
    stack up to ``final_blocks`` and fine-tune there; against ``final_blocks`` on the target alone."""
    single = _single_depth_config(config, schedule)
    pretrained, source_model = train_run(
        f"pretrained-{schedule.start_blocks} (source)",
        model_name,
        model_config,
        source_split,
        single,
        _shallow(schedule),
        on_progress=on_progress,
    )
    reports = []
    scratch, _ = train_run(
        f"scratch-{schedule.final_blocks} (target only)",
        model_name,
        model_config,
        target_split,
        single,
        _scratch(schedule),
        on_progress=on_progress,
    )
    reports.append(scratch)
    start = functools.partial(transfer_blocks, source_model, target_split.n_items)
    reports += _stacked_runs(
        start,
        pretrained.wall_s,
        model_name,
        model_config,
        target_split,
        config,
        schedule,
        methods,
        on_progress,
    )
    return reports


def _stacked_runs(
    start: Callable[[], SequentialRecommender],
    prior_s: float,
    model_name: str,
    model_config: ModelConfig,
    split: Split,
    config: TrainConfig,
    schedule: StackingSchedule,
    methods: tuple[str, ...],
    on_progress: Progress,
) -> list[RunReport]:
    """One StackRec run per method, each from a fresh copy of the starting model (CL and TF)."""
    reports = []
    for method in methods:
        report, _ = train_run(
            f"stackrec-{method}",
            model_name,
            model_config,
            split,
            config,
            dataclasses.replace(schedule, method=method),
            initial_model=start(),
            prior_s=prior_s,
            on_progress=on_progress,
        )
        reports.append(report)
    return reports


def comparison_table(reports: list[RunReport], *, metric: str = "mrr@5", reference: str | None = None) -> str:
    """Runs side by side: depth, time, validation, test metrics, time and steps to the reference's best.

    ``reference`` names the run whose best validation ``metric`` the others race to (default: the
    run whose name starts with ``scratch``).
    """
    ref = next(
        (r for r in reports if r.name == reference or (reference is None and r.name.startswith("scratch"))),
        None,
    )
    target = ref.best_valid.get(metric) if ref else None
    ref_time = ref.time_to_reach(metric, target) if ref and target else None
    header = (
        f"{'run':<32} {'blocks':>6} {'train s':>8} {'valid ' + metric:>12} {'test hr@10':>10} "
        f"{'ndcg@10':>8} {'mrr@5':>7} {'to target s':>11} {'steps':>7} {'speedup':>8}"
    )
    lines = [header]
    for r in reports:
        reach, steps = (r.reach(metric, target) if target else None) or (None, None)
        speedup = f"{ref_time / reach:7.2f}x" if reach and ref_time else "      -"
        lines.append(
            f"{r.name:<32} {r.blocks:>6} {r.wall_s:8.1f} {r.best_valid.get(metric, float('nan')):12.4f} "
            f"{r.test['hr@10']:10.4f} {r.test['ndcg@10']:8.4f} {r.test['mrr@5']:7.4f} "
            f"{(f'{reach:11.1f}' if reach is not None else '    not yet'):>11} "
            f"{(f'{steps:7d}' if steps is not None else '      -'):>7} {speedup:>8}"
        )
    if target is not None:
        lines.append(f"target: {ref.name}'s best validation {metric} {target:.4f} (within 1 % relative)")
    return "\n".join(lines)
