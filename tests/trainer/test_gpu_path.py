"""The GPU path's settings as the CPU can check them: precision, losses read every few steps, the
compile fallback, the optimiser's kernel choice; and CPU training exactly as it was before them."""

from __future__ import annotations

import copy
import logging
import math
import sys

import numpy as np
import pytest
import torch

from tests.trainer.test_training import tiny_model, toy_split
from trainer import training
from trainer.configs import ConfigError
from trainer.devices import resolve_precision, to_device
from trainer.evaluation import EvalResult
from trainer.models import model_config
from trainer.schedule import StackingSchedule, run_schedule
from trainer.training import TrainConfig, fit, make_optimizer

CONFIG = TrainConfig(epochs=3, batch_size=16, lr=5e-3, patience=0, device="cpu", threads=1, eval_every=5)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# -- precision ---------------------------------------------------------------------------------


def test_precision_is_one_of_three_names():
    for value in ("auto", "fp32", "bf16"):
        assert TrainConfig(precision=value).precision == value
    with pytest.raises(ConfigError, match=r"train.precision must be one of auto, fp32, bf16, got 'fp16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match=r"train\.precision"):
        TrainConfig.from_dict({"precision": "half"})


def test_auto_precision_is_fp32_on_the_cpu_and_bf16_is_honoured_there():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16


def test_bf16_on_the_cpu_trains_in_bf16_and_fp32_is_the_default():
    split = toy_split()
    fp32, auto, bf16 = (tiny_model(split) for _ in range(3))
    fit(fp32, split, TrainConfig.from_dict({**CONFIG.to_dict(), "precision": "fp32"}))
    fit(auto, split, CONFIG)
    result = fit(bf16, split, TrainConfig.from_dict({**CONFIG.to_dict(), "precision": "bf16"}))
    assert_same_weights(weights(fp32), weights(auto))
    pairs = zip(weights(fp32).values(), weights(bf16).values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    assert all(math.isfinite(r.train_loss) for r in result.history)


# -- the CPU path is what it was -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "losses", "mrr"),
    [
        # Recorded with the loop as it was before the GPU path (a host read every step).
        ("full", [2.9894482612609865, 2.963262128829956, 2.931170701980591], 0.6213541666666667),
        ("sampled", [1.3322320222854613, 1.3297920227050781, 1.3337531089782715], 0.36875),
    ],
)
def test_cpu_training_gives_the_losses_it_gave_before_the_gpu_path(loss, losses, mrr):
    split = toy_split()
    result = fit(tiny_model(split), split, TrainConfig.from_dict({**CONFIG.to_dict(), "loss": loss}))
    assert [r.train_loss for r in result.history] == losses  # exactly: the same sums in the same order
    assert result.best.metrics["mrr@5"] == mrr
    assert result.steps == 12 and result.positions == 1728


def test_batches_stay_where_they_are_on_the_cpu():
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    tensor = to_device(array, torch.device("cpu"))
    assert tensor.data_ptr() == array.ctypes.data and not tensor.is_pinned()


# -- the host reads the loss every few steps -------------------------------------------------------


class HostReads:
    """Counts the tensor-to-host reads made by code in trainer/training.py itself."""

    METHODS = ("item", "tolist", "__float__", "__int__", "__bool__", "numpy", "cpu")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in self.METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._counting(name, getattr(torch.Tensor, name)))

    def _counting(self, name, method):
        def counted(tensor, *args, **kwargs):
            if sys._getframe(1).f_code.co_filename == training.__file__:
                self.calls.append(name)
            return method(tensor, *args, **kwargs)

        return counted


def fake_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation with fixed metrics, so the only host reads left are the training loop's own."""
    result = EvalResult({"mrr@5": 0.5}, np.zeros(0, dtype=np.int64))
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: result)


def test_the_loss_is_read_on_the_host_every_n_steps_not_every_step(monkeypatch):
    split = toy_split(n_users=400)  # 25 steps an epoch
    config = TrainConfig(epochs=1, batch_size=16, patience=0, device="cpu", eval_every=10**6)
    baseline = fit(tiny_model(split), split, config)
    fake_validation(monkeypatch)
    monkeypatch.setattr(training, "LOSS_READ_EVERY", 8)
    monkeypatch.setattr(training, "PROGRESS_INTERVAL_S", 1e6)  # no step events: only the interval reads
    reads = HostReads(monkeypatch)
    result = fit(tiny_model(split), split, config)
    assert result.steps == 25
    # Steps 8, 16 and 24, then the last one at the end: one read of the losses and one of the
    # positions each, instead of two reads a step.
    assert reads.calls == ["tolist"] * 8
    assert result.positions == baseline.positions
    assert result.history[-1].train_loss == baseline.history[-1].train_loss


def test_a_progress_event_reads_the_steps_before_it(monkeypatch):
    split = toy_split()
    monkeypatch.setattr(training, "PROGRESS_INTERVAL_S", 0.0)  # an event after every step
    events = []
    result = fit(tiny_model(split), split, CONFIG, on_progress=events.append)
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, result.steps + 1))
    assert all(e.loss is not None and math.isfinite(e.loss) for e in steps)
    assert steps[-1].positions_per_s > 0


def test_a_non_finite_loss_names_the_step_it_came_from(monkeypatch):
    split = toy_split(n_users=400)
    monkeypatch.setattr(training, "LOSS_READ_EVERY", 8)
    model = tiny_model(split)
    forward, calls = model.forward, []

    def poisoned(item_seq):
        calls.append(1)
        hidden = forward(item_seq)
        return hidden * math.nan if len(calls) == 6 else hidden  # the step numbered 5

    model.forward = poisoned
    with pytest.raises(
        FloatingPointError, match=r"training loss became nan at step 5; lower the learning rate"
    ):
        fit(model, split, TrainConfig(epochs=1, batch_size=16, patience=0, device="cpu", eval_every=10**6))


# -- torch.compile ---------------------------------------------------------------------------------


def test_compile_that_fails_logs_one_warning_and_trains_as_eager(monkeypatch, caplog):
    split = toy_split()
    eager = tiny_model(split)
    fit(eager, split, CONFIG)

    def broken(model, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler found\nmore detail")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    model = tiny_model(split)
    with caplog.at_level(logging.WARNING, logger="trainer.training"):
        fit(model, split, TrainConfig.from_dict({**CONFIG.to_dict(), "compile": True}))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "train.compile: torch.compile failed, training without it: RuntimeError: no C++ compiler found"
    ]
    assert_same_weights(weights(model), weights(eager))


def test_a_recompilation_that_fails_later_falls_back_once(monkeypatch, caplog):
    split = toy_split()
    eager = tiny_model(split)
    fit(eager, split, CONFIG)

    def fails_after_two_calls(model, **kwargs):
        calls = []

        def call(*args):
            calls.append(1)
            if len(calls) > 2:
                raise RuntimeError("recompile failed")
            return model(*args)

        return call

    monkeypatch.setattr(torch, "compile", fails_after_two_calls)
    model = tiny_model(split)
    with caplog.at_level(logging.WARNING, logger="trainer.training"):
        fit(model, split, TrainConfig.from_dict({**CONFIG.to_dict(), "compile": True}))
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "train.compile: recompiling failed, training without it: RuntimeError: recompile failed"
    ]
    assert_same_weights(weights(model), weights(eager))  # the probe left no trace: same random state


def test_a_compiled_forward_leaves_the_model_and_its_state_dict_as_they_are(monkeypatch):
    split = toy_split()
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: compiled.append(model) or model)
    model = tiny_model(split)
    keys = list(model.state_dict())
    fit(model, split, TrainConfig.from_dict({**CONFIG.to_dict(), "compile": True}))
    assert compiled == [model] and list(model.state_dict()) == keys
    assert type(model).__call__ is torch.nn.Module.__call__


@pytest.mark.slow
def test_compile_trains_a_schedule_through_stacking(caplog):
    """The real compiler (or its fallback, where this machine cannot compile): each stage's new,
    stacked model is compiled afresh and the run ends with plain, exportable modules."""
    split = toy_split()
    config = TrainConfig(epochs=2, batch_size=16, lr=5e-3, device="cpu", compile=True)
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed")
    nextitnet = model_config("nextitnet", {"blocks": 1, "embedding_dim": 16})
    with caplog.at_level(logging.WARNING, logger="trainer.training"):
        result = run_schedule("nextitnet", nextitnet, split, config, schedule)
    assert [s.blocks for s in result.stages] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) for s in result.stages for r in s.history if r["train_loss"])
    assert not any("_orig_mod" in k for k in result.model.state_dict())
    fallbacks = [r for r in caplog.records if "train.compile" in r.getMessage()]
    assert len(fallbacks) <= len(result.stages)  # compiled, or one warning per stage that could not


# -- Adam ------------------------------------------------------------------------------------------


def test_adam_on_the_cpu_keeps_its_default_kernels():
    split = toy_split()
    optimizer = make_optimizer(tiny_model(split), CONFIG)
    assert not optimizer.param_groups[0]["fused"]


def test_a_carried_state_from_a_fused_run_is_not_fused_on_the_cpu():
    """A state's groups carry their kernel choice; a fused GPU run's state resumed on the CPU must
    take the CPU's (the same update as a state from a CPU run)."""
    split = toy_split()
    first = tiny_model(split)
    carried = fit(first, split, CONFIG).optimizer_state
    as_if_fused = {**carried, "param_groups": [{**g, "fused": True} for g in carried["param_groups"]]}
    from_cpu, from_gpu = tiny_model(split), tiny_model(split)
    fit(from_cpu, split, CONFIG, optimizer_state=copy.deepcopy(carried))  # Adam updates it in place
    fit(from_gpu, split, CONFIG, optimizer_state=copy.deepcopy(as_if_fused))
    assert_same_weights(weights(from_cpu), weights(from_gpu))
