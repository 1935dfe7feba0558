"""What a run will cost before it starts: its peak memory and wall time, estimated from its configs.

The web app refuses a job whose estimate is above its limits and shows the estimate on the job; the
CLI prints it before training. Nothing here touches data or a device: the inputs are the model,
training and schedule configs and the size of the log (:class:`DataSize`).

**Memory** (bytes, fp32 throughout: bf16 autocast on CUDA only makes activations smaller) is taken
at the deepest stage the schedule allows, the largest:

- *parameters* ``P``, counted exactly as the model builds them (a test compares with the built
  model): item embedding and output layer over the catalogue, each block, SASRec's positions;
- *training state*, per parameter: its gradient, Adam's two moments, and the copy of the best
  weights that :func:`trainer.training.fit` keeps: four more times ``P``;
- *the kept shallower model*: while growing, the schedule holds the stage it was stacked from;
- *activations* kept for the backward pass, ``batch × max_len`` positions deep: a model-specific
  number of ``[B, T, D]`` tensors per block (for SASRec also ``[B, H, T, T]`` attention maps);
- *logits* of the loss: with the full softmax ``batch × max_len × n_items`` scores three times
  (the scores, their log-softmax kept for the backward pass, its gradient): usually the largest
  part. With the sampled softmax, over ``1 + negatives`` items instead.

The CUDA context (about half a gigabyte) and the allocator's caching come on top.

**Time** is floating-point operations over an assumed throughput: a training step costs about
three forward passes (the backward pass twice one), a forward pass ``2 × multiply-adds`` of the
blocks and the output layer at every position; validations add one forward pass per case. The
step count is the schedule's ceiling: every stage trained to its whole epoch (or step) budget, so
early stopping and automatic growth usually end sooner; a stage's ``time_budget_s`` and the run's
``time_limit_s`` cap it. The throughput is a setting of whoever runs the job (the web app's
default is a conservative CPU figure), so the estimate says how much work a config asks for, in
the units a user plans in.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

from trainer.losses import default_negatives
from trainer.models.base import ModelConfig
from trainer.models.sasrec import SASRecConfig
from trainer.schedule import NO_STACKING, StackingSchedule, duration_words
from trainer.training import TrainConfig

FLOAT_BYTES = 4
# Tensors of [B, T, D] a block keeps for its backward pass (inputs of the convolutions or linear
# layers, layer-norm and ReLU outputs, masks, the residual branch). Counted from what autograd
# saves on a small model (tests/trainer/test_budget.py measures it), rounded up.
NEXTITNET_BLOCK_ACTIVATIONS = 12
SASREC_BLOCK_ACTIVATIONS = 16
# Per SASRec block, [B, H, T, T] maps kept: the attention weights (and their dropout's output).
SASREC_ATTENTION_MAPS = 2
# Validation scores are computed in batches of this size at most (trainer.evaluation's default).
EVAL_SCORES_BYTES = 64 * 1024**2
GB = 1e9


def bytes_words(n: float) -> str:
    """A size as a person reads it: "850 MB", "1.23 GB", "2.5 TB" (decimal units)."""
    if n < 1e6:
        return f"{n / 1e3:.0f} kB"
    if n < GB:
        return f"{n / 1e6:.0f} MB"
    if n < 1000 * GB:
        return f"{n / GB:.3g} GB"
    return f"{n / (1000 * GB):,.3g} TB"


@dataclass(frozen=True)
class DataSize:
    """How big the log is: the inputs of an estimate that come from the data, not the configs."""

    n_items: int  # distinct items (the model adds the padding id)
    n_events: int
    n_sequences: int
    validation_cases: int = 0  # 0 → one per sequence (the leave-one-out split)

    @classmethod
    def from_stats(cls, stats: dict[str, Any], *, split: str = "leave_one_out", valid_share: float = 0.1):
        """From :func:`trainer.data.stats.dataset_stats`' summary; a time split validates on about
        ``valid_share`` of all events."""
        n_events = int(stats["n_events"])
        cases = math.ceil(valid_share * n_events) if split == "time" else 0
        return cls(int(stats["n_items"]), n_events, int(stats["n_sequences"]), cases)


@dataclass(frozen=True)
class RunEstimate:
    parameters: int  # of the deepest model
    parameter_bytes: int
    training_state_bytes: int  # gradients, Adam's moments, the best weights' copy
    kept_model_bytes: int  # the shallower stage the schedule holds while growing
    activation_bytes: int
    logits_bytes: int
    peak_bytes: int
    steps: int  # optimiser steps over every stage, at most
    flops: float
    flops_per_s: float  # the assumed throughput
    seconds: float
    largest: str  # parameters | activations | logits: the part to shrink first

    def summary(self) -> str:
        """ "estimated peak memory 1.2 GB, ~25 min" (what the job page shows)."""
        return f"estimated peak memory {bytes_words(self.peak_bytes)}, ~{duration_words(self.seconds)}"

    def memory_advice(self) -> str:
        """Which settings lower the largest part of the peak."""
        return {
            "logits": "the full-softmax logits (batch × max_len × items) are the largest part: lower "
            "train.batch_size or train.max_len, or set train.loss to sampled",
            "activations": "activations (batch × max_len × depth) are the largest part: lower "
            "train.batch_size, train.max_len or schedule.final_blocks",
            "parameters": "the weights and their training state are the largest part (items × "
            "embedding_dim, twice): lower model_options.embedding_dim or schedule.final_blocks",
        }[self.largest]

    @staticmethod
    def time_advice() -> str:
        return (
            "lower train.epochs (or schedule.stage_epochs), schedule.final_blocks or "
            "model_options.embedding_dim, or cap the run with train.max_steps or schedule.time_limit_s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def parameter_count(model_name: str, config: ModelConfig, n_items: int) -> int:
    """Parameters of model ``model_name`` built from ``config`` over ``n_items`` ids (padding included)."""
    d = config.embedding_dim
    total = n_items * d + n_items + (0 if config.tie_output else n_items * d)  # embedding, bias, output
    residual = 1 if config.rezero else 0  # α is a parameter only when learnable
    if isinstance(config, SASRecConfig):
        f = config.ffn_dim or d
        block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d + 2 * residual
        total += config.max_len * d + 2 * d + (2 * d if config.norm_position == "pre" else 0)
    else:  # NextItNet and GRec: two dilated causal convolutions with layer norms
        k = config.kernel_size  # type: ignore[attr-defined]
        block = 2 * (d * d * k + d) + 4 * d + residual
    return total + config.blocks * block


def _block_flops(config: ModelConfig, length: int) -> float:
    """Multiply-adds × 2 of one block at one position (``length``: the positions attention sees)."""
    d = config.embedding_dim
    if isinstance(config, SASRecConfig):
        f = config.ffn_dim or d
        return 2 * (4 * d * d + 2 * length * d + 2 * d * f)
    return 2 * 2 * config.kernel_size * d * d  # type: ignore[attr-defined]


def _activation_bytes(config: ModelConfig, blocks: int, batch: int, length: int) -> int:
    d = config.embedding_dim
    positions = batch * length
    if isinstance(config, SASRecConfig):
        t = min(length, config.max_len)
        maps = SASREC_ATTENTION_MAPS * batch * config.heads * t * t
        f = config.ffn_dim or d
        per_block = SASREC_BLOCK_ACTIVATIONS * positions * d + 3 * positions * f + maps
        inputs = 6 * positions * d
    else:
        # Each convolution also keeps its left-padded input: (kernel − 1) × dilation more positions.
        pad = sum(
            3 * (config.kernel_size - 1) * config.block_dilation(i)  # type: ignore[attr-defined]
            for i in range(blocks)
        )
        per_block = NEXTITNET_BLOCK_ACTIVATIONS * positions * d
        inputs = 2 * positions * d + batch * d * pad
    return FLOAT_BYTES * (blocks * per_block + inputs)


def _stage_steps(train: TrainConfig, data: DataSize) -> tuple[int, int]:
    """Optimiser steps of a stage trained with ``train`` to its whole budget, and steps per epoch."""
    # A sequence of n items gives ⌈(n − 1) / max_len⌉ windows: at most n / max_len + 1 each.
    windows = math.ceil(data.n_events / train.max_len) + data.n_sequences
    per_epoch = max(1, math.ceil(windows / train.batch_size))
    steps = train.epochs * per_epoch
    return (min(steps, train.max_steps) if train.max_steps else steps), per_epoch


def run_estimate(
    model_name: str,
    model_config: ModelConfig,
    train: TrainConfig,
    schedule: StackingSchedule,
    data: DataSize,
    *,
    flops_per_s: float,
) -> RunEstimate:
    """Peak memory and wall time of the run these configs describe, at most (see the module docstring)."""
    n_ids = data.n_items + 1
    depths = schedule.depths()
    deepest = depths[-1]
    config = model_config if model_config.blocks == deepest else _with_blocks(model_config, deepest)
    params = parameter_count(model_name, config, n_ids)
    shallower = _with_blocks(model_config, depths[-2]) if len(depths) > 1 else None
    kept = parameter_count(model_name, shallower, n_ids) * FLOAT_BYTES if shallower else 0
    # A schedule that stacks holds the model it stacked from as well; without stacking, nothing.
    kept = kept if schedule.method != NO_STACKING else 0

    batch, length = train.batch_size, train.max_len
    positions = batch * length
    sampled = train.loss == "sampled"
    negatives = train.negatives or default_negatives(n_ids)
    scored = 1 + negatives if sampled else n_ids
    logits = 3 * positions * scored * FLOAT_BYTES
    activations = _activation_bytes(config, deepest, batch, length)
    eval_scores = train.eval_batch_size * n_ids * FLOAT_BYTES if train.eval_batch_size else EVAL_SCORES_BYTES
    static = params * FLOAT_BYTES * 5 + kept
    peak = static + max(activations + logits, eval_scores)
    parts = {"parameters": params * FLOAT_BYTES * 5 + kept, "activations": activations, "logits": logits}

    costs = stage_costs(model_config, train, schedule, data, flops_per_s=flops_per_s)
    seconds = sum(c.seconds for c in costs)
    if schedule.time_limit_s:
        seconds = min(seconds, schedule.time_limit_s)
    return RunEstimate(
        parameters=params,
        parameter_bytes=params * FLOAT_BYTES,
        training_state_bytes=params * FLOAT_BYTES * 4,
        kept_model_bytes=kept,
        activation_bytes=activations,
        logits_bytes=logits,
        peak_bytes=peak,
        steps=sum(c.steps for c in costs),
        flops=sum(c.flops for c in costs),
        flops_per_s=flops_per_s,
        seconds=seconds,
        largest=max(parts, key=parts.__getitem__),
    )


@dataclass(frozen=True)
class StageCost:
    """One stage of a run trained to its whole budget: the parts :func:`run_estimate` sums. A live
    run weighs its stages by ``flops`` (a deeper stage costs more per step) to say how far it is."""

    blocks: int
    steps: int  # optimiser steps, at most
    flops: float  # those steps and the stage's validations
    seconds: float  # at the assumed throughput, capped by the stage's time_budget_s
    case_flops: float  # scoring one held-out case at this depth (a validation's, a test's unit)


def stage_costs(
    model_config: ModelConfig,
    train: TrainConfig,
    schedule: StackingSchedule,
    data: DataSize,
    *,
    flops_per_s: float,
) -> list[StageCost]:
    """The cost of each stage ``schedule`` may train, in order (see the module docstring)."""
    n_ids = data.n_items + 1
    length = train.max_len
    positions = train.batch_size * length
    negatives = train.negatives or default_negatives(n_ids)
    scored = 1 + negatives if train.loss == "sampled" else n_ids
    cases = data.validation_cases or data.n_sequences
    if train.valid_sample:
        cases = min(cases, train.valid_sample)
    costs = []
    for stage, blocks in enumerate(schedule.depths()):
        stage_train = schedule.stage_config(train, stage)
        steps, per_epoch = _stage_steps(stage_train, data)
        encode = blocks * _block_flops(model_config, length)  # one position through every block
        step_flops = 3 * positions * (encode + 2 * model_config.embedding_dim * scored)
        interval = stage_train.eval_every or per_epoch
        validations = math.ceil(steps / interval) + 1  # and one before the first step, or after the last
        # A validation case encodes its history and scores the catalogue at its last position.
        case_flops = length * encode + 2 * model_config.embedding_dim * n_ids
        flops = steps * step_flops + validations * cases * case_flops
        seconds = flops / flops_per_s
        if stage_train.time_budget_s:
            seconds = min(seconds, stage_train.time_budget_s)
        costs.append(StageCost(blocks, steps, flops, seconds, case_flops))
    return costs


def _with_blocks(config: ModelConfig, blocks: int) -> ModelConfig:
    return dataclasses.replace(config, blocks=blocks)
