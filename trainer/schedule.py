"""The progressive schedule: train shallow, stack, train, … up to the final depth.

One object, :class:`StackingSchedule`, describes the plan (start depth, final depth, method, when a
stage ends) for the CLI, the benchmarks and the web app alike; :func:`run_schedule` executes it.
An intermediate stage ends when validation plateaus (``stage_patience`` validations without a
gain) or when its epoch/step budget is spent; the final stage follows the training config's own
epochs and patience. The best-validation weights of each stage are what gets stacked, and each
stacked stage validates its model before training it: that first validation competes for the
stage's best, so a function-preserving stage never ends below the model it was stacked from.

A checkpoint is written after every finished stage, so an interrupted run (a killed worker, a
cancel) resumes from the last finished stage instead of from scratch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.configs import ConfigError, ConfigMixin
from trainer.data.types import Split
from trainer.models import build_model
from trainer.models.base import ModelConfig, SequentialRecommender
from trainer.stacking import METHODS, carry_optimizer_state, stack
from trainer.training import ProgressEvent, TrainConfig, fit

logger = logging.getLogger(__name__)

NO_STACKING = "none"


@dataclass(frozen=True)
class StackingSchedule(ConfigMixin):
    start_blocks: int = 2
    final_blocks: int = 16
    method: str = "adjacent"  # adjacent | cross | preserving | none (final depth from scratch)
    stage_epochs: int = 0  # epoch budget of each intermediate stage; 0 → the training config's epochs
    stage_steps: int = 0  # step budget of each intermediate stage; 0 → none
    stage_patience: int = 2  # validations without gain that end an intermediate stage (plateau)

    def __post_init__(self) -> None:
        if self.method != NO_STACKING and self.method not in METHODS:
            raise ConfigError(
                f"unknown stacking method {self.method!r}; choose one of {', '.join([*METHODS, NO_STACKING])}"
            )
        for name in ("start_blocks", "final_blocks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("stage_epochs", "stage_steps", "stage_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.method != NO_STACKING:
            depth = self.start_blocks
            while depth < self.final_blocks:
                depth *= 2
            if depth != self.final_blocks:
                raise ConfigError(
                    f"stacking doubles the depth, so final_blocks ({self.final_blocks}) must be start_blocks "
                    f"({self.start_blocks}) times a power of two"
                )

    def depths(self) -> list[int]:
        """Block count of each stage, e.g. [2, 4, 8, 16]; [final] without stacking."""
        if self.method == NO_STACKING:
            return [self.final_blocks]
        depths = [self.start_blocks]
        while depths[-1] < self.final_blocks:
            depths.append(depths[-1] * 2)
        return depths

    def stage_config(self, config: TrainConfig, stage: int) -> TrainConfig:
        """Training settings of ``stage``: the final stage uses ``config`` unchanged."""
        if stage == len(self.depths()) - 1:
            return config
        return dataclasses.replace(
            config,
            epochs=self.stage_epochs or config.epochs,
            max_steps=self.stage_steps,
            patience=self.stage_patience,
            lr_schedule="constant",  # a decaying rate would end each stage cold before the next stack
        )


@dataclass(frozen=True)
class ScheduleEvent:
    """A training-loop event tagged with its stage; ``offset_s`` is the run's time before the stage."""

    stage: int
    stages: int
    blocks: int
    offset_s: float
    event: ProgressEvent

    @property
    def wall_s(self) -> float:
        return self.offset_s + self.event.wall_s


@dataclass
class StageReport:
    stage: int
    blocks: int
    steps: int
    start_s: float  # when the stage began, in seconds since the run started
    wall_s: float
    train_s: float
    stopped_by: str
    best: dict[str, float]
    history: list[dict[str, Any]]  # validation records; ``wall_s`` counted from the run's start
    checkpoint: str | None = None
    note: str = ""

    def line(self, metric: str) -> str:
        return (
            f"stage {self.stage + 1}: {self.blocks:>3} blocks  {self.steps:>6} steps  {self.wall_s:8.1f}s  "
            f"best valid {metric} {self.best.get(metric, float('nan')):.4f}  "
            f"ndcg@10 {self.best.get('ndcg@10', float('nan')):.4f}  ({self.stopped_by})"
        )


@dataclass
class ScheduleResult:
    model: SequentialRecommender
    stages: list[StageReport] = field(default_factory=list)
    cancelled: bool = False

    @property
    def wall_s(self) -> float:
        return sum(s.wall_s for s in self.stages)

    def curve(self, metric: str) -> list[tuple[float, float, int]]:
        """(seconds since start, validation value, stage) for every validation of the run."""
        return [(r["wall_s"], r["metrics"][metric], s.stage) for s in self.stages for r in s.history]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [dataclasses.asdict(s) for s in self.stages], "cancelled": self.cancelled}


def _stage_path(checkpoint_dir: Path, stage: int) -> Path:
    return checkpoint_dir / f"stage-{stage}.pt"


def _resume_point(checkpoint_dir: Path | None, schedule: StackingSchedule) -> tuple[Any, list[StageReport]]:
    """The checkpoint of the last finished stage of this same schedule, if any."""
    if checkpoint_dir is None:
        return None, []
    for stage in reversed(range(len(schedule.depths()))):
        path = _stage_path(checkpoint_dir, stage)
        if path.is_file():
            checkpoint = load_checkpoint(path)
            if checkpoint.extra.get("schedule") != schedule.to_dict():
                raise ConfigError(f"{path} belongs to a different schedule; use a fresh checkpoint folder")
            stages = [StageReport(**s) for s in checkpoint.extra["stages"]]
            logger.info("resuming after stage %d (%d blocks) from %s", stage + 1, stages[-1].blocks, path)
            return checkpoint, stages
    return None, []


def run_schedule(
    model_name: str,
    model_config: ModelConfig,
    split: Split,
    config: TrainConfig,
    schedule: StackingSchedule,
    *,
    on_progress: Callable[[ScheduleEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_dir: str | Path | None = None,
    initial_model: SequentialRecommender | None = None,
) -> ScheduleResult:
    """Run every stage of ``schedule``; returns the final model (best weights) and stage reports.

    ``initial_model`` is an already-trained model whose depth is the schedule's first stage (the
    continual-learning scenario: the deployed model is stacked deeper and trained on all data).
    """
    depths = schedule.depths()
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    checkpoint, stages = _resume_point(checkpoint_dir, schedule)
    model: SequentialRecommender | None = checkpoint.model if checkpoint else None
    optimizer_state = checkpoint.extra.get("optimizer_state") if checkpoint else None
    if model is None and initial_model is not None:
        if len(initial_model.blocks) != depths[0]:
            raise ConfigError(
                f"the initial model has {len(initial_model.blocks)} blocks, "
                f"but the schedule starts at {depths[0]}"
            )
        model = initial_model
        stages = [
            StageReport(0, depths[0], 0, 0.0, 0.0, 0.0, "initial", {}, [], note="trained before this run")
        ]
    offset = sum(s.wall_s for s in stages)

    for stage, blocks in enumerate(depths):
        if stage < len(stages):
            continue
        started = time.perf_counter()
        if model is None:
            # Seeded here, so a fresh model's weights depend on the seed alone, not on what ran before
            # in this process (a benchmark's shallow run and a stacked run's first stage start alike).
            torch.manual_seed(config.seed)
            model = build_model(model_name, dataclasses.replace(model_config, blocks=blocks), split.n_items)
        elif len(model.blocks) < blocks:
            deeper = stack(model, schedule.method)
            optimizer_state = carry_optimizer_state(model, optimizer_state, deeper, schedule.method)
            model = deeper
            logger.info("stacked %s: %d → %d blocks", schedule.method, blocks // 2, blocks)
        stage_offset = offset + (time.perf_counter() - started)

        def forward(event: ProgressEvent, stage=stage, blocks=blocks, stage_offset=stage_offset) -> None:
            if on_progress is not None:
                on_progress(ScheduleEvent(stage, len(depths), blocks, stage_offset, event))

        result = fit(
            model,
            split,
            schedule.stage_config(config, stage),
            on_progress=forward,
            should_stop=should_stop,
            optimizer_state=optimizer_state,
            order_stream=stage,
            validate_first=stage > 0,
        )
        if result.stopped_by == "cancelled":
            logger.info("cancelled during stage %d; the last finished stage's checkpoint is kept", stage + 1)
            return ScheduleResult(model, stages, cancelled=True)
        optimizer_state = result.optimizer_state
        wall = time.perf_counter() - started
        report = StageReport(
            stage=stage,
            blocks=blocks,
            steps=result.steps,
            start_s=offset,
            wall_s=wall,
            train_s=result.train_s,
            stopped_by=result.stopped_by,
            best=dict(result.best.metrics) if result.best else {},
            history=[
                dict(dataclasses.asdict(r), wall_s=stage_offset + r.wall_s, blocks=blocks)
                for r in result.history
            ],
        )
        offset += wall
        stages.append(report)
        if checkpoint_dir is not None:
            path = _stage_path(checkpoint_dir, stage)
            report.checkpoint = str(path)
            save_checkpoint(
                path,
                model=model,
                vocab=split.vocab,
                train_config=config.to_dict(),
                extra={
                    "schedule": schedule.to_dict(),
                    "stages": [dataclasses.asdict(s) for s in stages],
                    "optimizer_state": optimizer_state,
                },
            )
        logger.info(report.line(config.metric))
    assert model is not None
    return ScheduleResult(model, stages)
