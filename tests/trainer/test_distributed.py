"""One run on two processes (gloo on the CPU) against the same run on one: trainer.distributed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.checkpoint import load_checkpoint
from trainer.configs import ConfigError
from trainer.data import DataError
from trainer.distributed import run_schedule_distributed
from trainer.models import model_config
from trainer.runs import DataSpec, prepare_split
from trainer.schedule import StackingSchedule, run_schedule
from trainer.training import TrainConfig

# Two ranks add their halves of each gradient in another order than one process adds the whole
# batch, so the curves agree to float rounding, not bit for bit: measured 2e-7 relative over 40
# steps (NextItNet, GRec and SASRec alike); 1e-4 leaves room for other CPUs' kernels.
LOSS_RTOL = 1e-4
CONFIG = TrainConfig(
    epochs=10, batch_size=16, lr=5e-3, patience=0, eval_every=1, max_steps=20, device="cpu", threads=1
)
MODEL = model_config("nextitnet", {"blocks": 1, "embedding_dim": 16})
# Two stages of 20 steps: 1 block, stacked to 2 (every rank stacks the same model).
SCHEDULE = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed", stage_steps=20, stage_patience=0)


def cycle_log(path, users: int = 70) -> DataSpec:
    """Users walk a cycle of 19 items, one sequence per line. 70 windows in batches of 16 end
    with a batch of 6, which the two ranks share 3 and 3."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(users):
        start = int(rng.integers(1, 20))
        lines.append(" ".join(str((start + i) % 19 + 1) for i in range(12)))
    path.write_text("\n".join(lines) + "\n")
    return DataSpec(path=str(path), read={"format": "lines"})


@pytest.mark.slow
def test_two_processes_follow_the_single_process_loss_curve_and_stack_alike(tmp_path):
    data = cycle_log(tmp_path / "log.txt")
    single = run_schedule("nextitnet", MODEL, prepare_split(data), CONFIG, SCHEDULE)
    events = []
    multi = run_schedule_distributed(
        "nextitnet", MODEL, data, CONFIG, SCHEDULE,
        processes=2, workdir=tmp_path / "ranks", checkpoint_dir=tmp_path / "stages",
        on_progress=events.append,
    )  # fmt: skip

    assert [s.blocks for s in multi.stages] == [1, 2]
    for one, two in zip(single.stages, multi.stages, strict=True):
        assert one.steps == two.steps == 20
        # eval_every=1: each validation's train_loss is that one step's loss (of the global batch).
        curve_one = [r["train_loss"] for r in one.history if r["train_loss"] is not None]
        curve_two = [r["train_loss"] for r in two.history if r["train_loss"] is not None]
        assert len(curve_one) == len(curve_two) == 20
        np.testing.assert_allclose(curve_two, curve_one, rtol=LOSS_RTOL)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(multi.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)

    # Rank 0's events came through to this process, both stages' validations among them.
    evals = [e for e in events if e.event.kind == "eval"]
    assert [e.stage for e in evals] == [0] * 20 + [
        1
    ] * 21  # the stacked stage validates before its first step
    assert events[-1].event.kind == "end" and events[-1].stage == 1
    # One writer: each stage's checkpoint once, no temporary file left behind; the last is the result.
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["stage-0.pt", "stage-1.pt"]
    stored = load_checkpoint(tmp_path / "stages" / "stage-1.pt").model
    for name, value in stored.state_dict().items():
        torch.testing.assert_close(multi.model.state_dict()[name], value, rtol=0, atol=0)
    log = (tmp_path / "ranks" / "ranks.log").read_text()
    assert (
        "rank 1: INFO trainer.schedule: stacked preserving: 1 → 2 blocks" in log
    )  # the other rank stacked too


@pytest.mark.slow
def test_a_cancel_in_the_launching_process_stops_every_rank(tmp_path):
    data = cycle_log(tmp_path / "log.txt")
    events = []
    result = run_schedule_distributed(
        "nextitnet", MODEL, data, CONFIG, SCHEDULE, processes=2, workdir=tmp_path / "ranks",
        on_progress=events.append, should_stop=lambda: bool(events),
    )  # fmt: skip
    assert result.cancelled
    assert len(result.stages) < 2


@pytest.mark.slow
def test_a_rank_error_comes_back_as_the_trainers_own_error(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("1\n2\n3\n")  # one item per user: nothing to learn from
    with pytest.raises(DataError):
        run_schedule_distributed(
            "nextitnet", MODEL, DataSpec(path=str(path), read={"format": "lines"}), CONFIG, SCHEDULE,
            processes=2, workdir=tmp_path / "ranks",
        )  # fmt: skip


def test_the_gpu_count_is_checked_like_every_setting(tmp_path):
    assert TrainConfig(gpus=8).gpus == 8
    with pytest.raises(ConfigError, match=r"train\.gpus"):
        TrainConfig(gpus=0)
    with pytest.raises(ConfigError, match=r"train\.device is cpu"):
        TrainConfig(gpus=2, device="cpu")
    with pytest.raises(ConfigError, match="at least 2 processes"):
        run_schedule_distributed(
            "nextitnet",
            MODEL,
            cycle_log(tmp_path / "log.txt"),
            CONFIG,
            SCHEDULE,
            processes=1,
            workdir=tmp_path,
        )
