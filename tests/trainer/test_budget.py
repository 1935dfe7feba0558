"""Estimates before a run: the parameter count is the built model's, the memory for the backward pass
covers what autograd really keeps, and the step count covers the steps really trained."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.test_training import toy_split
from trainer.budget import DataSize, bytes_words, parameter_count, run_estimate
from trainer.losses import full_softmax_loss
from trainer.models import build_model, model_config
from trainer.schedule import StackingSchedule, run_schedule
from trainer.training import TrainConfig

VARIANTS = [
    ("nextitnet", {}),
    ("nextitnet", {"tie_output": True, "rezero": False, "kernel_size": 5, "dilations": [1, 2, 4, 8]}),
    ("grec", {"dropout": 0.3}),
    ("sasrec", {"heads": 2}),
    ("sasrec", {"norm_position": "pre", "ffn_dim": 48, "max_len": 60, "dropout": 0.3}),
]


@pytest.mark.parametrize(("name", "options"), VARIANTS)
@pytest.mark.parametrize("blocks", [1, 4])
def test_the_parameter_count_is_the_built_models(name, options, blocks):
    config = model_config(name, {"embedding_dim": 32, "blocks": blocks, **options})
    model = build_model(name, config, 500)
    assert parameter_count(name, config, 500) == sum(p.numel() for p in model.parameters())


def _saved_for_backward(model, inputs, targets) -> tuple[int, int]:
    """Bytes autograd keeps for the backward pass: (the blocks', the loss's), parameters aside."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor):
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in params:
            kept[pointer] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        hidden = model(inputs)
        blocks = sum(kept.values())
        full_softmax_loss(model, hidden, targets)
    return blocks, sum(kept.values()) - blocks


@pytest.mark.parametrize(("name", "options"), VARIANTS)
def test_the_memory_estimate_covers_what_a_training_step_keeps(name, options):
    """A real measurement: every tensor autograd saves in one step of a 3-block model, against the
    estimate's activations and logits (which also count the backward pass's gradient of the logits)."""
    torch.manual_seed(0)
    n_items, batch, length = 400, 16, 40
    config = model_config(name, {"embedding_dim": 32, "blocks": 3, **options})
    model = build_model(name, config, n_items).train()
    inputs = torch.randint(1, n_items, (batch, length))
    blocks, loss = _saved_for_backward(model, inputs, torch.randint(1, n_items, (batch, length)))
    train = TrainConfig(batch_size=batch, max_len=length)
    schedule = StackingSchedule(start_blocks=3, final_blocks=3, method="none")
    estimate = run_estimate(
        name, config, train, schedule, DataSize(n_items - 1, 10_000, 100), flops_per_s=1e10
    )
    assert blocks <= estimate.activation_bytes <= 2.5 * blocks
    assert loss <= estimate.logits_bytes <= 3.5 * loss
    assert estimate.parameters == sum(p.numel() for p in model.parameters())
    assert estimate.peak_bytes >= 5 * 4 * estimate.parameters + estimate.activation_bytes


def test_the_step_estimate_covers_the_steps_trained_without_early_stopping():
    split = toy_split()
    config = TrainConfig(epochs=3, batch_size=16, lr=5e-3, patience=0, device="cpu", threads=1)
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed", stage_epochs=2)
    model = model_config("nextitnet", {"embedding_dim": 16})
    result = run_schedule("nextitnet", model, split, config, schedule)
    lengths = split.train.lengths()
    size = DataSize(split.n_items - 1, int(lengths.sum()), len(lengths), len(split.valid))
    estimate = run_estimate("nextitnet", model, config, schedule, size, flops_per_s=1e9)
    assert result.steps <= estimate.steps <= 1.5 * result.steps
    assert estimate.seconds == pytest.approx(estimate.flops / 1e9)


def test_the_largest_part_names_the_settings_that_shrink_it():
    schedule = StackingSchedule(start_blocks=2, final_blocks=16)
    big_catalogue = DataSize(n_items=1_000_000, n_events=20_000_000, n_sequences=100_000)
    nextitnet = model_config("nextitnet", {"embedding_dim": 64})
    full = run_estimate(
        "nextitnet",
        nextitnet,
        TrainConfig(batch_size=256, max_len=100),
        schedule,
        big_catalogue,
        flops_per_s=1e10,
    )
    assert full.largest == "logits" and "train.loss to sampled" in full.memory_advice()
    assert full.logits_bytes == 3 * 256 * 100 * 1_000_001 * 4  # the full softmax over every item, 3 times
    sampled = run_estimate(
        "nextitnet",
        model_config("nextitnet", {"embedding_dim": 1024}),
        TrainConfig(batch_size=64, loss="sampled", negatives=100),
        schedule,
        big_catalogue,
        flops_per_s=1e10,
    )
    assert sampled.largest == "parameters" and "model_options.embedding_dim" in sampled.memory_advice()
    assert sampled.peak_bytes < full.peak_bytes
    assert full.summary().startswith("estimated peak memory ") and full.summary().endswith(("h", "days"))
    sizes = (2_000, 850e6, 1.23e9, 26.5e9, 2.53e12)
    assert [bytes_words(n) for n in sizes] == ["2 kB", "850 MB", "1.23 GB", "26.5 GB", "2.53 TB"]


def test_caps_the_config_sets_cap_the_time_estimate():
    size = DataSize(n_items=5_000, n_events=5_000_000, n_sequences=50_000)
    model = model_config("sasrec", {"embedding_dim": 256})
    train = TrainConfig(epochs=1000, max_len=200)
    open_ended = run_estimate("sasrec", model, train, StackingSchedule(1, 8), size, flops_per_s=2e10)
    capped = run_estimate(
        "sasrec", model, train, StackingSchedule(1, 8, time_limit_s=3600), size, flops_per_s=2e10
    )
    assert open_ended.seconds > 86_400 and capped.seconds == 3600
