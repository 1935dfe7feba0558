"""The progressive schedule: train shallow, stack, train, … while depth pays, up to a ceiling.

One object, :class:`StackingSchedule`, describes the plan (start depth, depth ceiling, method,
growth rule, which model to keep, when a stage ends) for the CLI, the benchmarks and the web app
alike; :func:`run_schedule` executes it.

- **Growth.** ``grow="auto"`` (the default) stacks only while it pays: a stage whose best
  validation does not beat the model it was stacked from by ``min_gain`` (relative) ends the run,
  so ``final_blocks`` is a ceiling. ``grow="fixed"`` is the paper's plan: every stage up to
  ``final_blocks`` is trained whatever it gains.
- **The kept model.** ``keep="best"`` returns the best model over all stages, where a deeper
  stage replaces a shallower one only when it beats it by ``min_gain``: a gain inside the margin is
  validation noise, and the shallower model is cheaper to serve. ``keep="final"`` returns the last
  stage's model (what the paper's scripts export).
- **Stages.** An intermediate stage ends when validation plateaus (``stage_patience`` validations
  without a gain) or when its epoch/step budget is spent; the ceiling's stage follows the training
  config's own epochs and patience. The best-validation weights of each stage are what gets
  stacked, and each stacked stage validates its model before training it: that first validation
  competes for the stage's best, so a function-preserving stage never ends below the model it was
  stacked from.

Every stage's report says why it ended, what it gained over the model it was measured against and
what the schedule decided (kept, grew on, growth stopped).

A checkpoint is written after every finished stage, so an interrupted run (a killed worker, a
cancel) resumes from the last finished stage instead of from scratch.

- **Wall-time limit.** ``time_limit_s`` caps the whole run (every stage of one call of
  :func:`run_schedule`): the stage running when it is reached stops as if its own time budget ran
  out (validated once more, so its last steps count), the schedule stops growing, and the result
  keeps the best model so far with a sentence saying so. A limit reached before any stage was
  validated raises :class:`TimeLimitError`: there is nothing to keep.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.configs import Bound, ConfigError, ConfigMixin, between
from trainer.data.types import Split
from trainer.models import build_model
from trainer.models.base import BLOCKS, ModelConfig, SequentialRecommender
from trainer.stacking import METHODS, carry_optimizer_state, stack
from trainer.training import ProgressEvent, TrainConfig, fit, validation_metrics

if TYPE_CHECKING:
    from trainer.distributed import DistributedContext

logger = logging.getLogger(__name__)

NO_STACKING = "none"
GROW_MODES = ("auto", "fixed")
KEEP_MODES = ("best", "final")
# The relative validation gain a deeper stage must show to be kept (and, with grow=auto, to grow
# on). 1 % is the tolerance within which the benchmarks count a run as reaching a target: smaller
# gains are inside the noise of one validation (docs: "Automatic growth").
DEFAULT_MIN_GAIN = 0.01
# Where the auto schedule starts: the shallowest model of each family that is worth stacking
# (NextItNet and GRec blocks hold two dilated convolutions each; a SASRec block is a whole layer).
START_BLOCKS = {"nextitnet": 2, "grec": 2, "sasrec": 1}
DEFAULT_CEILING = {"nextitnet": 16, "grec": 16, "sasrec": 8}


class TimeLimitError(RuntimeError):
    """The run's wall-time limit came before any stage was validated: no model to keep."""


def duration_words(seconds: float) -> str:
    """A duration as a person reads it: "40 s", "25 min", "2 h", "1.5 h", "3 days", "690 days"."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2g} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h"
    days = seconds / 86400
    return f"{days:.2g} days" if days < 10 else f"{days:,.0f} days"


@dataclass(frozen=True)
class StackingSchedule(ConfigMixin):
    start_blocks: int = 2
    final_blocks: int = 16  # grow=auto: the deepest model the run may grow to; grow=fixed: the depth reached
    method: str = "preserving"  # preserving | adjacent | cross (paper) | none (final depth from scratch)
    grow: str = "auto"  # auto: stack while a stage gains min_gain | fixed: every stage to final_blocks
    min_gain: float = DEFAULT_MIN_GAIN  # relative validation gain that makes a deeper stage worth keeping
    keep: str = "best"  # best: the best model over all stages | final: the last stage's model
    stage_epochs: int = 0  # epoch budget of each intermediate stage; 0 → the training config's epochs
    stage_steps: int = 0  # step budget of each intermediate stage; 0 → none
    stage_patience: int = 2  # validations without gain that end an intermediate stage (plateau)
    time_limit_s: float = 0.0  # wall-clock cap on the whole run; 0 → none (see run_schedule)

    section = "schedule"
    BOUNDS: ClassVar[dict[str, Bound]] = {
        "start_blocks": BLOCKS,
        "final_blocks": BLOCKS,
        "min_gain": between(0, 1, "a relative gain: 0.01 is 1 %", hi_open=True),
        "stage_epochs": between(0, 1000, "0 means train.epochs; as train.epochs"),
        "stage_steps": between(0, 10_000_000, "0 means none; as train.max_steps"),
        "stage_patience": between(0, 1000, "validations; 0 ends a stage only by its budget"),
        "time_limit_s": between(0, 30 * 86400, "seconds for the whole run, 0 means none; up to 30 days"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method != NO_STACKING and self.method not in METHODS:
            raise ConfigError(
                f"unknown stacking method {self.method!r}; choose one of {', '.join([*METHODS, NO_STACKING])}"
            )
        for name, allowed in (("grow", GROW_MODES), ("keep", KEEP_MODES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"schedule.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if self.method == NO_STACKING:
            return
        if self.final_blocks < self.start_blocks:
            raise ConfigError(
                f"schedule.final_blocks must be at least start_blocks ({self.start_blocks}), "
                f"got {self.final_blocks}"
            )
        if self.grow == "fixed":
            depth = self.start_blocks
            while depth < self.final_blocks:
                depth *= 2
            if depth != self.final_blocks:
                raise ConfigError(
                    f"schedule.final_blocks must be start_blocks ({self.start_blocks}) times a power of two "
                    f"when growth is fixed (each stage doubles the depth), got {self.final_blocks}"
                )

    def depths(self) -> list[int]:
        """Block count of each stage the schedule may train, e.g. [2, 4, 8, 16]; [final] without
        stacking. With ``grow="auto"`` the run may stop before the last one."""
        if self.method == NO_STACKING:
            return [self.final_blocks]
        depths = [self.start_blocks]
        while depths[-1] * 2 <= self.final_blocks:
            depths.append(depths[-1] * 2)
        return depths

    def describe(self) -> str:
        """One line for a user: "2 → 4 → 8 → 16 blocks at most (preserving), growing while … 1.0%"."""
        depths = " → ".join(map(str, self.depths()))
        if self.method == NO_STACKING:
            return f"{self.final_blocks} blocks from scratch"
        if self.grow == "auto":
            return (
                f"{depths} blocks at most ({self.method}), growing while a stage gains more than "
                f"{self.min_gain:.1%}"
            )
        return f"{depths} blocks ({self.method}), every stage"

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
    """A training-loop event tagged with its stage; ``offset_s`` is the run's time before the stage.

    A stage's ``end`` event comes once the schedule has judged the stage: its ``stopped_by`` is the
    stage report's (``time_limit`` where the run's limit cut it) and ``decision`` says what the
    schedule made of it, so a live page can show both before the run ends.
    """

    stage: int
    stages: int
    blocks: int
    offset_s: float
    event: ProgressEvent
    decision: str = ""

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
    # epochs | patience | max_steps | time_budget | time_limit (the run's) | initial (trained before the run)
    stopped_by: str
    best: dict[str, float]
    history: list[dict[str, Any]]  # validation records; ``wall_s`` counted from the run's start
    checkpoint: str | None = None
    note: str = ""
    best_step: int = 0  # the stage's step at its best validation
    best_wall_s: float = 0.0  # when that validation was made, in seconds since the run started
    gain: float | None = None  # relative gain of ``best`` over the model kept before this stage
    kept: bool = False  # this stage's model is the run's result (so far)
    decision: str = ""  # what the schedule made of this stage, in words

    def line(self, metric: str) -> str:
        how = "initial, trained before this run" if self.stopped_by == "initial" else self.stopped_by
        return (
            f"stage {self.stage + 1}: {self.blocks:>3} blocks  {self.steps:>6} steps  {self.wall_s:8.1f}s  "
            f"best valid {metric} {self.best.get(metric, float('nan')):.4f}  "
            f"ndcg@10 {self.best.get('ndcg@10', float('nan')):.4f}  ({how})"
            + (f"  {self.decision}" if self.decision else "")
        )


@dataclass
class ScheduleResult:
    model: SequentialRecommender  # the kept model (see StackingSchedule.keep)
    stages: list[StageReport] = field(default_factory=list)
    cancelled: bool = False
    kept_stage: int = -1  # index into ``stages`` of the kept model
    growth: str = ""  # why the run stopped growing where it did, in words
    time_limited: bool = False  # the run's wall-time limit ended it (see StackingSchedule.time_limit_s)

    @property
    def kept(self) -> StageReport:
        return self.stages[self.kept_stage]

    @property
    def wall_s(self) -> float:
        return sum(s.wall_s for s in self.stages)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def curve(self, metric: str) -> list[tuple[float, float, int]]:
        """(seconds since start, validation value, stage) for every validation of the run."""
        return [(r["wall_s"], r["metrics"][metric], s.stage) for s in self.stages for r in s.history]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "cancelled": self.cancelled,
            "kept_stage": self.kept_stage,
            "kept_blocks": self.kept.blocks if self.stages else None,
            "growth": self.growth,
            "time_limited": self.time_limited,
        }


def relative_gain(new: float, old: float) -> float:
    """``(new − old) / old``; from a zero baseline any improvement counts as infinite gain."""
    if old > 0:
        return (new - old) / old
    return math.inf if new > old else 0.0


def _judge(
    report: StageReport, reference: StageReport, schedule: StackingSchedule, metric: str, last: bool
) -> bool:
    """Set ``report``'s gain and decision against the kept ``reference``; true if growth goes on."""
    gain = relative_gain(report.best.get(metric, 0.0), reference.best.get(metric, 0.0))
    report.gain = gain
    shown = "+∞" if math.isinf(gain) else f"{gain:+.1%}"
    versus = f"{_blocks(report.blocks)} gained {shown} over {_blocks(reference.blocks)}"
    if gain > schedule.min_gain:
        report.kept = True
        report.decision = f"kept: {versus}, more than {schedule.min_gain:.1%}"
        return True
    if schedule.keep == "final":
        report.kept = True
        report.decision = f"kept as the final stage (keep: final): {versus}"
    else:
        report.decision = f"not kept: {versus}, within the {schedule.min_gain:.1%} margin"
    if schedule.grow == "auto" and not last:
        report.decision = (
            f"depth stopped paying at {_blocks(reference.blocks)}: {versus}, not more than "
            f"{schedule.min_gain:.1%}"
        )
        return False
    return True


def _growth_summary(
    stages: list[StageReport], kept: StageReport, schedule: StackingSchedule, time_limited: bool = False
) -> str:
    if time_limited:
        which = "the last stage's model" if schedule.keep == "final" else "the best model so far"
        return (
            f"stopped at the wall-time limit of {duration_words(schedule.time_limit_s)}; kept {which} "
            f"(stage {kept.stage + 1}, {_blocks(kept.blocks)})"
        )
    if schedule.method == NO_STACKING:
        return f"{_blocks(kept.blocks)} from scratch, no stacking"
    last = stages[-1]
    if schedule.grow == "auto" and last.blocks < schedule.depths()[-1]:
        return last.decision
    if schedule.grow == "auto":
        return f"grew to the {last.blocks}-block ceiling; kept {_blocks(kept.blocks)}"
    return f"trained every stage to {_blocks(last.blocks)} (grow: fixed); kept {_blocks(kept.blocks)}"


def _blocks(n: int) -> str:
    return f"{n} block{'s' if n != 1 else ''}"


class _StageEvents:
    """``on_progress`` of one stage's :func:`fit`: its events tagged with the stage, the end event
    held back until the schedule has judged the stage (see :class:`ScheduleEvent`)."""

    def __init__(
        self,
        on_progress: Callable[[ScheduleEvent], None] | None,
        stage: int,
        stages: int,
        blocks: int,
        offset_s: float,
    ) -> None:
        self.on_progress = on_progress
        self.stage, self.stages, self.blocks, self.offset_s = stage, stages, blocks, offset_s
        self.end: ProgressEvent | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "end":
            self.end = event
        else:
            self._send(event)

    def ended(self, stopped_by: str, decision: str = "") -> None:
        """Send the held end event with the stage report's reason and the schedule's decision."""
        if self.end is not None:
            self._send(dataclasses.replace(self.end, stopped_by=stopped_by), decision)

    def _send(self, event: ProgressEvent, decision: str = "") -> None:
        if self.on_progress is not None:
            tagged = ScheduleEvent(self.stage, self.stages, self.blocks, self.offset_s, event, decision)
            self.on_progress(tagged)


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
            if _plan(checkpoint.extra.get("schedule") or {}) != _plan(schedule.to_dict()):
                raise ConfigError(f"{path} belongs to a different schedule; use a fresh checkpoint folder")
            stages = [StageReport(**s) for s in checkpoint.extra["stages"]]
            logger.info("resuming after stage %d (%d blocks) from %s", stage + 1, stages[-1].blocks, path)
            return checkpoint, stages
    return None, []


def _plan(schedule: dict[str, Any]) -> dict[str, Any]:
    """What makes a schedule's stages what they are: its settings but the run's time limit, which a
    resumed run may be given anew (a changed setting must not orphan the stages trained so far)."""
    return {k: v for k, v in schedule.items() if k != "time_limit_s"}


def _kept_index(stages: list[StageReport]) -> int:
    return max((i for i, s in enumerate(stages) if s.kept), default=len(stages) - 1)


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
    dist: DistributedContext | None = None,
) -> ScheduleResult:
    """Run the stages of ``schedule``; returns the kept model (best weights) and every stage's report.

    ``initial_model`` is an already-trained model whose depth is the schedule's first stage (the
    continual-learning scenario: the deployed model is stacked deeper and trained on all data). With
    ``grow="fixed"`` it is validated on this run's data and stacked at once, as in the paper; with
    ``grow="auto"`` it first trains at its own depth on this run's data (validated before its first
    step), so the run always yields a model that has seen the new data, and deeper stages are
    judged against that.

    ``schedule.time_limit_s`` caps this call's wall-clock time (a resumed run gets it anew): see the
    module docstring; :class:`TimeLimitError` if it ends the run before any stage was validated.

    ``dist`` makes this call one rank of a multi-process run (:mod:`trainer.distributed`): every rank
    runs the same stages and stacks the same model; rank 0 alone writes the stage checkpoints, and
    its clock and validations decide for all.
    """
    entered = time.perf_counter()
    depths = schedule.depths()
    metric = config.metric
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    checkpoint, stages = _resume_point(checkpoint_dir, schedule)
    model: SequentialRecommender | None = checkpoint.model if checkpoint else None
    optimizer_state = checkpoint.extra.get("optimizer_state") if checkpoint else None
    growing = bool(checkpoint.extra.get("growing", True)) if checkpoint else True
    kept_model = model
    if stages and _kept_index(stages) != len(stages) - 1:
        kept_model = load_checkpoint(_stage_path(checkpoint_dir, _kept_index(stages))).model

    def save_stage(stage: int, report: StageReport) -> None:
        if checkpoint_dir is None:
            return
        report.checkpoint = str(_stage_path(checkpoint_dir, stage))
        if dist is not None and not dist.is_main:
            return
        path = _stage_path(checkpoint_dir, stage)
        save_checkpoint(
            path,
            model=model,
            vocab=split.vocab,
            train_config=config.to_dict(),
            extra={
                "schedule": schedule.to_dict(),
                "stages": [dataclasses.asdict(s) for s in stages],
                "optimizer_state": optimizer_state,
                "growing": growing,
            },
        )

    carried = model is None and initial_model is not None
    if carried and len(initial_model.blocks) != depths[0]:
        raise ConfigError(
            f"the initial model has {len(initial_model.blocks)} blocks, "
            f"but the schedule starts at {depths[0]}"
        )
    if carried and schedule.grow == "auto":
        # Growing automatically, the carried model first trains on this run's data at its own depth
        # (validated before its first step, so it never ends below what it scored there): a retrain
        # then always yields a model that has seen the new data, and deeper stages must beat that.
        model = kept_model = initial_model
    elif carried:
        started = time.perf_counter()
        model = kept_model = initial_model
        best = validation_metrics(model, split, config)  # what the deployed model scores on this data
        if dist is not None:
            best = dist.broadcast(best)
        wall = time.perf_counter() - started
        report = StageReport(
            0, depths[0], 0, 0.0, wall, 0.0, "initial", best, [], note="trained before this run",
            best_wall_s=wall, kept=True, decision="the model this run starts from, validated on its data",
        )  # fmt: skip
        stages.append(report)
        save_stage(0, report)
        logger.info(report.line(metric))
    first_is_carried = carried and schedule.grow == "auto"
    offset = sum(s.wall_s for s in stages)
    time_limited = False

    for stage, blocks in enumerate(depths):
        if stage < len(stages):
            continue
        if not growing:
            break
        stage_config = schedule.stage_config(config, stage)
        limited = False  # whether the run's limit, not the stage's own budget, caps this stage
        if schedule.time_limit_s:
            left = schedule.time_limit_s - (time.perf_counter() - entered)
            if dist is not None:
                left = dist.broadcast(left)  # rank 0's clock, so every rank ends the run alike
            if left <= 0:
                time_limited = True
                break
            if not stage_config.time_budget_s or left < stage_config.time_budget_s:
                stage_config = dataclasses.replace(stage_config, time_budget_s=left)
                limited = True
        started = time.perf_counter()
        if model is None:
            # Seeded here, so a fresh model's weights depend on the seed alone, not on what ran before
            # in this process (a benchmark's shallow run and a stacked run's first stage start alike).
            torch.manual_seed(config.seed)
            model = build_model(model_name, dataclasses.replace(model_config, blocks=blocks), split.n_items)
        elif len(model.blocks) < blocks:
            deeper = stack(model, schedule.method)  # a new model: the one stacked stays as it was
            optimizer_state = carry_optimizer_state(model, optimizer_state, deeper, schedule.method)
            model = deeper
            logger.info("stacked %s: %d → %d blocks", schedule.method, blocks // 2, blocks)
        stage_offset = offset + (time.perf_counter() - started)

        forward = _StageEvents(on_progress, stage, len(depths), blocks, stage_offset)
        result = fit(
            model,
            split,
            stage_config,
            on_progress=forward,
            should_stop=should_stop,
            optimizer_state=optimizer_state,
            order_stream=stage,
            validate_first=stage > 0 or first_is_carried,
            dist=dist,
        )
        if result.stopped_by == "cancelled":
            forward.ended(result.stopped_by)
            logger.info("cancelled during stage %d; the last finished stage's checkpoint is kept", stage + 1)
            return ScheduleResult(kept_model or model, stages, cancelled=True, kept_stage=_kept_index(stages))
        optimizer_state = result.optimizer_state
        wall = time.perf_counter() - started
        stopped_by = result.stopped_by
        if limited and stopped_by == "time_budget":
            stopped_by, time_limited = "time_limit", True
        report = StageReport(
            stage=stage,
            blocks=blocks,
            steps=result.steps,
            start_s=offset,
            wall_s=wall,
            train_s=result.train_s,
            stopped_by=stopped_by,
            best=dict(result.best.metrics) if result.best else {},
            history=[
                dict(dataclasses.asdict(r), wall_s=stage_offset + r.wall_s, blocks=blocks)
                for r in result.history
            ],
            best_step=result.best.step if result.best else 0,
            best_wall_s=stage_offset + result.best.wall_s if result.best else offset + wall,
        )
        if not stages:
            report.kept = True
            report.decision = (
                "the carried model, trained on this run's data" if first_is_carried else "first stage"
            )
        else:
            last = stage == len(depths) - 1 or time_limited  # a cut stage is judged as the last one
            growing = _judge(report, stages[_kept_index(stages)], schedule, metric, last=last)
        growing = growing and not time_limited
        forward.ended(report.stopped_by, report.decision)
        if report.kept:
            kept_model = model
            for earlier in stages:
                earlier.kept = False
        offset += wall
        stages.append(report)
        save_stage(stage, report)
        logger.info(report.line(metric))
    if not stages:  # only the time limit ends a run before its first stage
        raise TimeLimitError(
            f"stopped at the wall-time limit of {duration_words(schedule.time_limit_s)} before any stage "
            "was validated: there is no model to keep"
        )
    assert model is not None and kept_model is not None
    kept_stage = _kept_index(stages)
    result = ScheduleResult(kept_model, stages, kept_stage=kept_stage, time_limited=time_limited)
    result.growth = _growth_summary(stages, stages[kept_stage], schedule, time_limited)
    if time_limited:
        logger.info(result.growth)
    return result
