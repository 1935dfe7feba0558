"""The one training loop: batches → loss → Adam step, validation, early stopping, checkpoints.

Read top to bottom: :class:`TrainConfig` says what can be set, :func:`fit` does the work. Callers
(the CLI, the stacking schedule, the web app's Celery task) observe it through ``on_progress`` and
stop it through ``should_stop``; it never prints.

On CUDA the loop never waits for the GPU inside a step: batches come from pinned memory without
blocking (:func:`trainer.devices.to_device`), the forward pass and loss run under bf16 autocast
(``precision``), Adam is the fused kernel, and each step's loss and position count stay on the
device until the host reads them all at once: at a progress event, a validation, the end, or
every ``LOSS_READ_EVERY`` steps. A non-finite loss is found at that read and named by the step
it came from. The CPU takes the same path, with identical results: fp32, the same sums in the
same order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from trainer.checkpoint import save_checkpoint
from trainer.configs import Bound, ConfigError, ConfigMixin, between
from trainer.data.batching import TrainBatcher, make_windows
from trainer.data.types import EvalSet, Split
from trainer.devices import (
    PRECISIONS,
    autocast,
    deterministic_kernels,
    resolve_device,
    resolve_precision,
    to_device,
)
from trainer.evaluation import evaluate
from trainer.losses import default_negatives, full_softmax_loss, sampled_softmax_loss
from trainer.metrics import parse_metric
from trainer.models.base import SequentialRecommender

if TYPE_CHECKING:
    from trainer.distributed import DistributedContext

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5  # step events are throttled so callbacks (DB writes) stay cheap
# Steps whose losses may wait on the device before the host reads them. Each read makes the host
# wait for the GPU and leaves it idle while the next step is prepared, so one read in 64 steps
# costs about 1/64 of a step's host time; it also bounds how far a time budget can overshoot.
LOSS_READ_EVERY = 64


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    epochs: int = 30
    batch_size: int = 64  # windows of max_len positions each; small logs need many updates per epoch
    max_len: int = 50  # training windows hold this many target positions; histories keep the last max_len
    lr: float = 1e-3  # reference: Adam, 1e-3, no warm-up
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw
    lr_schedule: str = "constant"  # constant | cosine (decays to 0 over the planned steps)
    warmup_steps: int = 0
    grad_clip: float = 5.0  # max global gradient norm; 0 disables
    loss: str = "full"  # full | sampled
    negatives: int = 0  # sampled softmax negatives; 0 → 20 % of the catalogue (reference)
    eval_every: int = 0  # optimiser steps between validations, across epoch ends; 0 → at each epoch's end
    patience: int = 5  # validations without improvement before stopping; 0 disables
    metric: str = "mrr@5"  # early-stopping metric (StackRec's reference selects by MRR@5)
    max_steps: int = 0  # 0 → no cap beyond epochs
    time_budget_s: float = 0.0  # 0 → no wall-clock cap
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads on the CPU; 0 → PyTorch's default
    eval_batch_size: int = 0  # 0 → as many cases as fit in 64 MiB of scores
    exclude_seen: bool = False  # drop history items from validation candidates
    valid_sample: int = 0  # validate on a fixed random sample of this many cases; 0 → all of them
    bucket: bool = True  # group training windows by length (less padding)
    precision: str = "auto"  # auto | fp32 | bf16: auto → bf16 autocast on a CUDA GPU with bf16, else fp32
    compile: bool = False  # torch.compile the training forward; falls back to eager with a warning
    gpus: int = 1  # processes training this one run with DDP, one per GPU (trainer.distributed); 1: this one

    section = "train"
    BOUNDS: ClassVar[dict[str, Bound]] = {
        "epochs": between(1, 1000, "runs plateau long before; 1000 passes over a large log take days"),
        "batch_size": between(1, 8192, "windows per step; the logits grow with batch × max_len × items"),
        "max_len": between(1, 1024, "SASRec's paper uses 50 and 200; attention grows with its square"),
        "lr": between(
            0, 1, "Adam moves each weight by about lr a step; at 1 training falls apart", lo_open=True
        ),
        "weight_decay": between(0, 1, "a share of each weight decayed per step (times lr); 0 disables it"),
        "warmup_steps": between(0, 1_000_000, "optimiser steps, as max_steps"),
        "grad_clip": between(0, 1000, "the largest global gradient norm; 0 disables clipping"),
        "negatives": between(0, 1_000_000, "sampled items per step; 0 means 20 % of the catalogue"),
        "eval_every": between(0, 10_000_000, "optimiser steps; 0 means each epoch's end"),
        "patience": between(0, 1000, "validations, as epochs; 0 disables early stopping"),
        "max_steps": between(0, 10_000_000, "0 means no cap; ten million steps take weeks on one GPU"),
        "time_budget_s": between(0, 30 * 86400, "seconds per stage, 0 means none; up to 30 days"),
        "seed": between(0, 2**32 - 1, "NumPy and most tools take 32-bit seeds"),
        "threads": between(0, 1024, "CPU threads; 0 means PyTorch's default"),
        "eval_batch_size": between(0, 65_536, "cases per validation batch; 0 sizes it to 64 MiB of scores"),
        "valid_sample": between(0, 10_000_000, "validation cases; 0 means all of them"),
        "gpus": between(1, 64, "one process per GPU on one host; 8 is a large host, 64 a ceiling"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, allowed in (
            ("optimizer", ("adam", "adamw")),
            ("lr_schedule", ("constant", "cosine")),
            ("loss", ("full", "sampled")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"train.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        try:
            parse_metric(self.metric)
        except ValueError as exc:
            raise ConfigError(f"train.metric: {exc}") from None
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"unknown device {self.device!r}: use auto, cpu or cuda")
        if self.gpus > 1 and self.device == "cpu":
            raise ConfigError(f"train.gpus is {self.gpus}, but train.device is cpu: use auto or cuda")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )


@dataclass(frozen=True)
class ProgressEvent:
    """What a caller sees while training: ``kind`` is ``step``, ``eval`` or ``end``."""

    kind: str
    step: int
    epoch: int
    steps_per_epoch: int
    planned_steps: int
    wall_s: float
    loss: float | None = None
    metrics: dict[str, float] | None = None
    eta_s: float | None = None
    positions_per_s: float | None = None
    stopped_by: str = ""  # on ``end``: why training stopped (as FitResult.stopped_by)


@dataclass
class EvalRecord:
    step: int
    epoch: float  # fractional epochs done
    wall_s: float
    train_loss: float | None  # None for a validation before the first step
    metrics: dict[str, float]


@dataclass
class FitResult:
    history: list[EvalRecord]
    best: EvalRecord | None
    steps: int
    wall_s: float  # everything, validation included
    train_s: float  # optimiser steps only
    positions: int  # target positions trained on
    stopped_by: str  # epochs | patience | max_steps | time_budget | cancelled
    optimizer_state: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def positions_per_s(self) -> float:
        return self.positions / self.train_s if self.train_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [asdict(r) for r in self.history],
            "best": asdict(self.best) if self.best else None,
            "steps": self.steps,
            "wall_s": self.wall_s,
            "train_s": self.train_s,
            "positions": self.positions,
            "positions_per_s": self.positions_per_s,
            "stopped_by": self.stopped_by,
        }


def make_optimizer(model: SequentialRecommender, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``model``'s parameters; the fused kernel when they all live on CUDA.

    Fused Adam updates every parameter in one kernel launch instead of several per tensor, with
    the same update rule; on the CPU the default implementation is kept, so runs repeat bit for bit.
    """
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    params = list(model.parameters())
    fused = all(p.is_cuda and p.is_floating_point() for p in params)
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


def _with_implementation(state: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``state`` with ``optimizer``'s own kernel choice (fused, foreach, capturable).

    A loaded state's groups replace the optimiser's settings, these included, and they decide where
    each step counter is put: a state from a fused CUDA run resumed on the CPU must not stay fused,
    nor one from the CPU go unfused on a GPU.
    """
    own = {k: v for k, v in optimizer.param_groups[0].items() if k in ("fused", "foreach", "capturable")}
    return {**state, "param_groups": [{**group, **own} for group in state["param_groups"]]}


def _lr_factor(config: TrainConfig, planned_steps: int, offset: int = 0) -> Callable[[int], float]:
    """Learning-rate multiplier per step; ``offset`` is where a resumed run starts."""

    def factor(local_step: int) -> float:
        step = local_step + offset
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "cosine":
            span = max(1, planned_steps - config.warmup_steps)
            done = min(1.0, (step - config.warmup_steps) / span)
            return 0.5 * (1.0 + math.cos(math.pi * done))
        return 1.0

    return factor


def fit(
    model: SequentialRecommender,
    split: Split,
    config: TrainConfig,
    *,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    checkpoint_path: str | Path | None = None,
    resume: dict[str, Any] | None = None,
    order_stream: int = 0,
    validate_first: bool = False,
    dist: DistributedContext | None = None,
) -> FitResult:
    """Train ``model`` on ``split.train``, validating on ``split.valid``; the best weights are kept.

    ``optimizer_state`` seeds Adam's moments (function-preserving stacking carries them over).
    With ``checkpoint_path`` a checkpoint is written after every validation; passing a loaded
    checkpoint's ``progress`` (and its optimizer state) as ``resume`` continues that run at the
    step it reached, with the same batch order. ``order_stream`` picks an independent sequence of
    epoch orders (see :class:`TrainBatcher`); a schedule passes its stage number. On the CPU
    the same seed and settings give the same model (see :func:`deterministic_kernels`).

    ``validate_first`` validates the model before its first step and lets those weights compete
    for best: a model that arrives trained (stacked deeper, carried to grown data) then never
    comes back worse on validation than it went in, however its further training goes.

    With ``dist`` (one rank of a multi-process run, :mod:`trainer.distributed`) each global batch is
    split across the ranks and the model trains under DDP; rank 0 alone validates, calls
    ``on_progress`` and ``should_stop``, reads the clock and writes the checkpoint, and every rank
    follows its decisions. Without it nothing of that runs and results are as on one process.
    """
    entered = time.perf_counter()  # the clock covers setup too (batching, optimiser): it is part of the run
    device = dist.device if dist is not None else resolve_device(config.device)
    main = dist is None or dist.is_main
    precision = resolve_precision(config.precision, device)
    with deterministic_kernels(device):
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        model.to(device).train()
        step_forward: Callable[[torch.Tensor], torch.Tensor] | None = None  # set at the first step
        metric = config.metric

        valid = _validation_cases(split.valid, config.valid_sample, config.seed)
        windows = make_windows(split.train, config.max_len)
        if len(windows) == 0:
            raise ConfigError("no training windows: every training sequence is shorter than 2 items")
        batcher = TrainBatcher(
            windows,
            config.batch_size,
            shuffle=True,
            seed=config.seed,
            bucket=config.bucket,
            stream=order_stream,
        )
        steps_per_epoch = len(batcher)
        planned = config.epochs * steps_per_epoch
        if config.max_steps:
            planned = min(planned, config.max_steps)
        # A set interval is kept across epoch ends: where one validation costs more than an epoch
        # (long histories on a small log), validating at every epoch's end would swamp training.
        eval_every = config.eval_every or steps_per_epoch
        negatives = config.negatives or default_negatives(model.n_items)

        optimizer = make_optimizer(model, config)
        if optimizer_state:
            optimizer.load_state_dict(_with_implementation(optimizer_state, optimizer))
            for group in optimizer.param_groups:  # the new run's settings win over the carried ones
                group["lr"], group["weight_decay"] = config.lr, config.weight_decay
        generator = torch.Generator(device=device).manual_seed(config.seed)

        state = _LoopState.from_resume(resume, model, device)
        if state.step:
            logger.info("resuming at step %d (epoch %d)", state.step, state.epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_factor(config, planned, offset=state.step)
        )
        started = entered - state.wall_s
        last_event = 0.0
        stopped_by = "epochs"
        loss_sum, loss_n = 0.0, 0
        window_sum, window_n = 0.0, 0
        # Per step since the last read, still on the device: its loss and its count of real targets.
        pending_loss: list[torch.Tensor] = []
        pending_positions: list[torch.Tensor] = []

        def read_pending() -> None:
            """Bring the pending steps' losses and positions to the host in one wait, and add them up."""
            nonlocal loss_sum, loss_n, window_sum, window_n
            if not pending_loss:
                return
            losses = torch.stack(pending_loss).tolist()
            positions = torch.stack(pending_positions).tolist()
            first = state.step - len(losses)  # the step number the first pending loss came from
            pending_loss.clear()
            pending_positions.clear()
            for offset, (loss_value, count) in enumerate(zip(losses, positions, strict=True)):
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"training loss became {loss_value} at step {first + offset}; lower the learning rate"
                    )
                state.positions += int(count)
                loss_sum, loss_n = loss_sum + loss_value, loss_n + 1
                window_sum, window_n = window_sum + loss_value, window_n + 1

        def emit(event: ProgressEvent) -> None:
            if on_progress is not None and main:
                on_progress(event)

        def progress_event(kind: str, **extra: Any) -> ProgressEvent:
            elapsed = time.perf_counter() - started
            done = max(state.step, 1)
            return ProgressEvent(
                kind=kind,
                step=state.step,
                epoch=state.epoch,
                steps_per_epoch=steps_per_epoch,
                planned_steps=planned,
                wall_s=elapsed,
                eta_s=elapsed / done * max(planned - state.step, 0),
                positions_per_s=state.positions / state.train_s if state.train_s else None,
                **extra,
            )

        def validate(train_loss: float | None) -> None:
            """Validate, keep the weights if they are the best so far, and tell the caller."""
            record = _validate(
                model, valid, config, state, started, train_loss, steps_per_epoch, device, dist
            )
            improved = state.best is None or record.metrics[metric] > state.best.metrics[metric]
            if improved:
                state.best = record
                state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                state.bad_evals = 0
            else:
                state.bad_evals += 1
            logger.info(
                "step %d epoch %.2f loss %s valid %s %.4f%s",
                state.step,
                record.epoch,
                "—" if train_loss is None else f"{train_loss:.4f}",
                metric,
                record.metrics[metric],
                " (best)" if improved else "",
            )
            emit(progress_event("eval", loss=train_loss, metrics=record.metrics))

        if validate_first and not state.history:  # a resumed run validated before its checkpoint
            validate(None)
        while state.epoch < config.epochs and stopped_by == "epochs":
            batcher.epoch = state.epoch  # an epoch's batch order depends only on (seed, epoch)
            for batch_index, (inputs_np, targets_np) in enumerate(batcher):
                if batch_index < state.batch_in_epoch:
                    continue  # resuming mid-epoch: these batches were trained before the checkpoint
                stop = main and should_stop is not None and should_stop()
                if dist is not None:
                    (stop,) = dist.decide(stop)  # rank 0's answer, so every rank stops at the same step
                if stop:
                    stopped_by = "cancelled"
                    break
                t_step = time.perf_counter()
                inputs = to_device(inputs_np, device)
                targets = to_device(targets_np, device)
                inputs, targets = model.training_inputs(inputs, targets, generator)
                if dist is not None:  # after training_inputs: its random draws are the global batch's
                    inputs, targets = dist.shard(inputs), dist.shard(targets)
                if step_forward is None:
                    step_forward = _training_forward(model, inputs, config.compile, device, precision, dist)
                with autocast(device, precision):
                    hidden = step_forward(inputs)  # [B, T, D]
                    if config.loss == "sampled":
                        loss = sampled_softmax_loss(model, hidden, targets, negatives, generator)
                    else:
                        loss = full_softmax_loss(model, hidden, targets)
                positions = (targets > 0).sum()
                shown = loss
                if dist is not None:  # this rank's share of the global batch's mean, and that mean
                    loss, shown, positions = dist.global_loss(loss, positions)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                pending_loss.append(shown.detach())
                pending_positions.append(positions)
                state.step += 1
                state.batch_in_epoch = batch_index + 1
                now = time.perf_counter()
                event_due = now - last_event >= PROGRESS_INTERVAL_S
                if dist is not None:  # rank 0's clock decides (one host-side broadcast)
                    (event_due,) = dist.decide(event_due)
                if event_due or state.step % eval_every == 0 or len(pending_loss) >= LOSS_READ_EVERY:
                    read_pending()  # waits for the GPU: inside the step's time, where that work belongs
                state.train_s += time.perf_counter() - t_step

                if event_due:
                    last_event = now
                    # The mean over the steps since the last event: one batch's loss is too noisy to plot.
                    emit(progress_event("step", loss=window_sum / window_n))
                    window_sum, window_n = 0.0, 0

                if state.step % eval_every == 0:
                    validate(loss_sum / max(loss_n, 1))
                    loss_sum, loss_n = 0.0, 0
                    if checkpoint_path is not None and main:
                        state.wall_s = time.perf_counter() - started
                        save_checkpoint(
                            checkpoint_path,
                            model=model,
                            vocab=split.vocab,
                            train_config=config.to_dict(),
                            optimizer=optimizer,
                            progress=state.to_progress(),
                        )
                    if config.patience and state.bad_evals >= config.patience:
                        stopped_by = "patience"
                        break
                if config.max_steps and state.step >= config.max_steps:
                    stopped_by = "max_steps"
                    break
                time_up = bool(config.time_budget_s) and time.perf_counter() - started >= config.time_budget_s
                if dist is not None and config.time_budget_s:
                    (time_up,) = dist.decide(time_up)
                if time_up:
                    stopped_by = "time_budget"
                    break
            if stopped_by != "epochs":
                break
            # A checkpoint written at the epoch-end validation still names this epoch with all of
            # its batches done; resuming from it skips them and arrives here.
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0

        read_pending()  # the steps since the last read, before they are validated and reported
        unvalidated = not state.history or state.history[-1].step != state.step
        if state.best is None or (unvalidated and stopped_by in ("epochs", "max_steps", "time_budget")):
            # Ended between validations (a budget, or the last epoch): the steps since the last one
            # would otherwise be thrown away with the weights (up to a whole interval per stage).
            validate(loss_sum / max(loss_n, 1))
        if state.best_state is not None:
            model.load_state_dict(state.best_state)
        wall = time.perf_counter() - started
        result = FitResult(
            history=state.history,
            best=state.best,
            steps=state.step,
            wall_s=wall,
            train_s=state.train_s,
            positions=state.positions,
            stopped_by=stopped_by,
            optimizer_state=optimizer.state_dict(),
        )
        emit(progress_event("end", metrics=state.best.metrics if state.best else None, stopped_by=stopped_by))
        logger.info(
            "stopped by %s after %d steps, %.1fs (%.0f positions/s); best valid %s %.4f at step %d",
            stopped_by,
            state.step,
            wall,
            result.positions_per_s,
            metric,
            state.best.metrics[metric],
            state.best.step,
        )
        return result


def _training_forward(
    model: SequentialRecommender,
    inputs: torch.Tensor,
    compile: bool,
    device: torch.device,
    precision: torch.dtype | None,
    dist: DistributedContext | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward pass the training step calls: ``model`` itself, or with ``compile`` its compiled form.

    ``torch.compile`` compiles lazily, so a missing compiler or an unsupported operation would
    surface in the middle of training; here the first batch's forward and backward pass are
    compiled at once, on a throwaway loss with the random state set aside (the real step then
    starts as an eager one would). If that fails, one warning is logged and training runs eagerly.
    Only this forward is compiled, and the wrapper shares ``model``'s parameters: the model
    itself, its state dict, validation, stacking and export are untouched, and each :func:`fit`
    (each stage of a schedule, whose stacked model is a new module) compiles its own model.

    On a rank of a multi-process run the forward is ``model`` in DDP (each stage wraps its own);
    compiling is not combined with it yet, and is skipped with a warning.
    """
    if dist is not None:
        if compile:
            logger.warning("train.compile is not used in a multi-process run; training without it")
        return dist.wrap(model)
    if not compile:
        return model
    try:
        compiled = torch.compile(model)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            with autocast(device, precision):
                probe = compiled(inputs).float().mean()
            probe.backward()
    except Exception as exc:  # compilers raise many unrelated types (missing C compiler, unsupported op)
        logger.warning("train.compile: torch.compile failed, training without it: %s", _first_line(exc))
        return model
    finally:
        model.zero_grad(set_to_none=True)
    return _CompiledForward(compiled, model)


class _CompiledForward:
    """A compiled forward that falls back to ``model`` for good if a later recompilation fails
    (a new batch shape recompiles), with one warning."""

    def __init__(self, compiled: Callable[[torch.Tensor], torch.Tensor], model: SequentialRecommender):
        self.compiled: Callable[[torch.Tensor], torch.Tensor] | None = compiled
        self.model = model

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(inputs)
            except Exception as exc:  # as in _training_forward
                logger.warning("train.compile: recompiling failed, training without it: %s", _first_line(exc))
                self.compiled = None
        return self.model(inputs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def validation_metrics(model: SequentialRecommender, split: Split, config: TrainConfig) -> dict[str, float]:
    """What :func:`fit` would record for ``model`` as it is: the same validation cases and settings.

    The schedule validates a model trained elsewhere (the deployed one, carried to grown data) this
    way, so the stages after it are judged against what it already scores on the new data.
    """
    device = resolve_device(config.device)
    with deterministic_kernels(device):
        model.to(device)
        valid = _validation_cases(split.valid, config.valid_sample, config.seed)
        return _evaluate_as_configured(model, valid, config, device)


def _evaluate_as_configured(
    model: SequentialRecommender, cases: EvalSet, config: TrainConfig, device: torch.device
) -> dict[str, float]:
    return evaluate(
        model,
        cases,
        max_len=config.max_len,
        batch_size=config.eval_batch_size or None,
        exclude_seen=config.exclude_seen,
        device=device,
    ).metrics


def _validation_cases(cases: EvalSet, sample: int, seed: int) -> EvalSet:
    """All validation cases, or a fixed random sample of them.

    A time split of a long-history log yields ~10 % of all events as validation cases, each a
    forward pass over up to ``max_len`` items; validating on a few thousand of them keeps each
    validation cheaper than the epoch it follows, and the sample stays the same all run long.
    """
    if not sample or len(cases) <= sample:
        return cases
    chosen = np.sort(np.random.default_rng(seed).choice(len(cases), size=sample, replace=False))
    return cases.subset(chosen)


def _validate(
    model: SequentialRecommender,
    valid: EvalSet,
    config: TrainConfig,
    state: _LoopState,
    started: float,
    train_loss: float | None,
    steps_per_epoch: int,
    device: torch.device,
    dist: DistributedContext | None = None,
) -> EvalRecord:
    if dist is None:
        metrics = _evaluate_as_configured(model, valid, config, device)
    else:  # rank 0 validates; every rank records its metrics, so all keep the same best and stop alike
        metrics = dist.broadcast(
            _evaluate_as_configured(model, valid, config, device) if dist.is_main else None
        )
    record = EvalRecord(
        step=state.step,
        epoch=state.step / steps_per_epoch,
        wall_s=time.perf_counter() - started,
        train_loss=train_loss,
        metrics=metrics,
    )
    state.history.append(record)
    return record


@dataclass
class _LoopState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    positions: int = 0
    train_s: float = 0.0
    wall_s: float = 0.0
    bad_evals: int = 0
    history: list[EvalRecord] = field(default_factory=list)
    best: EvalRecord | None = None
    best_state: dict[str, torch.Tensor] | None = None

    def to_progress(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "positions": self.positions,
            "train_s": self.train_s,
            "wall_s": self.wall_s,
            "bad_evals": self.bad_evals,
            "history": [asdict(r) for r in self.history],
            "best": asdict(self.best) if self.best else None,
            "best_state": {k: v.cpu() for k, v in self.best_state.items()} if self.best_state else None,
        }

    @classmethod
    def from_resume(
        cls, progress: dict[str, Any] | None, model: SequentialRecommender, device: torch.device
    ) -> _LoopState:
        if not progress:
            return cls()
        best_state = progress.get("best_state")
        return cls(
            step=progress["step"],
            epoch=progress["epoch"],
            batch_in_epoch=progress["batch_in_epoch"],
            positions=progress["positions"],
            train_s=progress["train_s"],
            wall_s=progress["wall_s"],
            bad_evals=progress["bad_evals"],
            history=[EvalRecord(**r) for r in progress["history"]],
            best=EvalRecord(**progress["best"]) if progress.get("best") else None,
            best_state={k: v.to(device) for k, v in best_state.items()} if best_state else None,
        )
