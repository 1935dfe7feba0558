"""The progressive schedule and the scenarios built on it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.trainer.test_training import toy_split
from trainer import training
from trainer.configs import ConfigError
from trainer.data.types import SequenceDataset, Sequences, Vocabulary
from trainer.models import build_model, model_config
from trainer.scenarios import RunReport, comparison_table, first_share, scenario_cl, scenario_ts
from trainer.schedule import StackingSchedule, StageReport, run_schedule
from trainer.training import TrainConfig
from trainer.transfer import remap_items, transfer_blocks

CONFIG = TrainConfig(epochs=3, batch_size=16, lr=5e-3, patience=0, device="cpu", threads=1)
MODEL = model_config("nextitnet", {"embedding_dim": 16})


def test_schedule_depths_and_validation():
    assert StackingSchedule(start_blocks=2, final_blocks=16).depths() == [2, 4, 8, 16]
    assert StackingSchedule(start_blocks=3, final_blocks=12, method="cross").depths() == [3, 6, 12]
    assert StackingSchedule(final_blocks=16, method="none").depths() == [16]
    with pytest.raises(ConfigError, match="power of two"):
        StackingSchedule(start_blocks=2, final_blocks=12, grow="fixed")
    # Growing automatically, the final depth is a ceiling: 2 → 4 → 8 fits under 12.
    assert StackingSchedule(start_blocks=2, final_blocks=12).depths() == [2, 4, 8]
    with pytest.raises(ConfigError, match="at least start_blocks"):
        StackingSchedule(start_blocks=4, final_blocks=2)
    with pytest.raises(ConfigError, match="grow must be one of"):
        StackingSchedule(grow="sometimes")
    with pytest.raises(ConfigError, match="min_gain"):
        StackingSchedule(min_gain=5)
    with pytest.raises(ConfigError, match="unknown stacking method"):
        StackingSchedule(method="zigzag")
    stage = StackingSchedule(stage_epochs=1, stage_patience=1).stage_config(CONFIG, 0)
    assert (stage.epochs, stage.patience) == (1, 1)
    assert StackingSchedule().stage_config(CONFIG, 3) == CONFIG  # the final stage trains as configured


def test_run_schedule_reports_each_stage_and_resumes_after_the_last_finished_one(tmp_path):
    split = toy_split()
    schedule = StackingSchedule(
        start_blocks=1, final_blocks=4, method="adjacent", stage_epochs=1, grow="fixed"
    )
    events = []
    result = run_schedule(
        "nextitnet", MODEL, split, CONFIG, schedule, checkpoint_dir=tmp_path, on_progress=events.append
    )
    assert [s.blocks for s in result.stages] == [1, 2, 4]
    assert len(result.model.blocks) == 4
    assert {e.stage for e in events} == {0, 1, 2}
    assert all(s.wall_s > 0 and s.steps > 0 for s in result.stages)
    # Curves count time from the run's start: each stage starts after the previous one.
    starts = [s.start_s for s in result.stages]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage-0.pt", "stage-1.pt", "stage-2.pt"]

    # A worker died during stage 3: only stages 1-2 finished. The rerun trains stage 3 only.
    (tmp_path / "stage-2.pt").unlink()
    resumed = run_schedule("nextitnet", MODEL, split, CONFIG, schedule, checkpoint_dir=tmp_path)
    assert [s.blocks for s in resumed.stages] == [1, 2, 4]
    assert resumed.stages[0].wall_s == result.stages[0].wall_s  # reused, not retrained


def test_a_stacked_stage_does_not_replay_the_batches_its_previous_stage_trained_on(monkeypatch):
    """Each stage draws its epochs' orders from its own stream: after a stack the deeper model
    meets the data in a new order, as a model trained from scratch would in its next epoch."""
    first_batches = []

    class Recording(training.TrainBatcher):
        def __iter__(self):
            batches = list(super().__iter__())
            first_batches.append(batches[0][0].tolist())
            return iter(batches)

    monkeypatch.setattr(training, "TrainBatcher", Recording)
    schedule = StackingSchedule(
        start_blocks=1, final_blocks=2, method="preserving", stage_epochs=1, grow="fixed"
    )
    run_schedule("nextitnet", MODEL, toy_split(), dataclasses.replace(CONFIG, epochs=1), schedule)
    assert len(first_batches) == 2  # one epoch per stage
    assert first_batches[0] != first_batches[1]


def test_cancel_during_a_stage_keeps_the_finished_stages(tmp_path):
    split = toy_split()
    schedule = StackingSchedule(start_blocks=1, final_blocks=4, method="cross", stage_epochs=1, grow="fixed")
    stop_after = {"steps": 6}

    def should_stop() -> bool:
        stop_after["steps"] -= 1
        return stop_after["steps"] < 0

    result = run_schedule(
        "nextitnet", MODEL, split, CONFIG, schedule, checkpoint_dir=tmp_path, should_stop=should_stop
    )
    assert result.cancelled
    assert [s.blocks for s in result.stages] == [1]
    assert (tmp_path / "stage-0.pt").is_file()


def test_function_preserving_stages_start_where_their_source_ended_and_never_end_below_it():
    """Each stacked stage validates its model before training it: a preserving stack validates
    exactly as its source did, and the stage's best (what the next stack, or the user, gets) is
    never below that, however the deeper model's training goes."""
    split = toy_split()
    schedule = StackingSchedule(
        start_blocks=1, final_blocks=4, method="preserving", stage_epochs=2, grow="fixed"
    )
    result = run_schedule("nextitnet", MODEL, split, CONFIG, schedule)
    assert result.stages[0].history[0]["step"] > 0  # the fresh first stage has nothing to check
    for before, after in zip(result.stages, result.stages[1:], strict=False):
        at_stack = after.history[0]
        assert at_stack["step"] == 0 and at_stack["train_loss"] is None
        assert at_stack["metrics"] == pytest.approx(before.best, abs=1e-9)
        assert after.best["mrr@5"] >= before.best["mrr@5"]


def test_ts_scenario_compares_shallow_scratch_and_stacked():
    split = toy_split()
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, stage_epochs=1, grow="fixed")
    reports = scenario_ts(split, "nextitnet", MODEL, CONFIG, schedule, ("adjacent", "preserving"))
    assert [r.name for r in reports] == ["shallow-1", "scratch-2", "stackrec-adjacent", "stackrec-preserving"]
    assert [r.blocks for r in reports] == [1, 2, 2, 2]
    assert all(len(r.test_ranks) == len(split.test) for r in reports)
    table = comparison_table(reports)
    assert "scratch-2" in table and "speedup" in table and "target: scratch-2" in table
    for report in reports[:2]:
        assert report.stack_changes("mrr@5") == []
    stacked = reports[2]
    at_stack, trained = (r["metrics"]["mrr@5"] for r in stacked.stages[1].history[:2])
    before = stacked.stages[0].best["mrr@5"]
    assert stacked.stack_changes("mrr@5") == [
        (pytest.approx(at_stack - before), pytest.approx(trained - before))
    ]


def test_time_and_steps_to_a_target_count_every_stage_before_it():
    def record(step: int, wall_s: float, value: float) -> dict:
        return {"step": step, "wall_s": wall_s, "metrics": {"mrr@5": value}}

    shallow = StageReport(
        0,
        1,
        300,
        0.0,
        3.0,
        3.0,
        "patience",
        {"mrr@5": 0.02},
        [record(100, 1.0, 0.01), record(300, 3.0, 0.02)],
    )
    deeper = StageReport(
        1, 2, 200, 3.0, 2.5, 2.5, "epochs", {"mrr@5": 0.03}, [record(0, 3.2, 0.02), record(100, 4.5, 0.03)]
    )
    report = RunReport("stackrec-preserving", 2, [shallow, deeper], {}, np.zeros(0))
    assert (report.time_to_reach("mrr@5", 0.03), report.steps_to_reach("mrr@5", 0.03)) == (4.5, 400)
    assert (report.time_to_reach("mrr@5", 0.02), report.steps_to_reach("mrr@5", 0.02)) == (3.0, 300)
    assert report.steps_to_reach("mrr@5", 0.0101) == 100  # within 1 % of a target counts as reaching it
    assert report.time_to_reach("mrr@5", 0.05) is None and report.steps_to_reach("mrr@5", 0.05) is None


def test_runs_without_stacking_get_the_whole_schedules_time_budget():
    """A 2-stage StackRec run may train two budgets; scratch and shallow must not be cut at one."""
    split = toy_split()
    config = dataclasses.replace(CONFIG, epochs=1000, time_budget_s=0.3)
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed")
    reports = scenario_ts(split, "nextitnet", MODEL, config, schedule, ("preserving",))
    for report in reports[:2]:  # shallow-1, scratch-2: one stage each
        assert report.stages[-1].stopped_by == "time_budget"
        assert report.wall_s >= 0.6
    assert reports[2].stages[-1].stopped_by == "time_budget" and len(reports[2].stages) == 2


def test_first_share_cuts_by_time_or_by_position():
    vocab = Vocabulary(("a", "b", "c", "d"))
    seqs = Sequences(np.array([0, 4, 6]), np.array([1, 2, 3, 4, 1, 2]))
    timed = SequenceDataset(vocab, seqs, ("u1", "u2"), np.array([1.0, 2, 5, 6, 3, 4]), "t")
    chunk = first_share(timed, 0.5)  # the 3 earliest events: times 1, 2, 3
    assert chunk.sequences.items.tolist() == [1, 2, 1] and chunk.sequence_ids == ("u1", "u2")
    assert chunk.vocab == vocab
    untimed = SequenceDataset(vocab, seqs, ("u1", "u2"), None, "t")
    chunk = first_share(untimed, 0.5)  # first half of each sequence
    assert chunk.sequences.items.tolist() == [1, 2, 1]
    with pytest.raises(ConfigError):
        first_share(timed, 1.0)


def test_cl_scenario_stacks_the_deployed_model():
    full = toy_split(seed=0)
    first = toy_split(seed=0, n_users=32)
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed")
    reports = scenario_cl(first, full, "nextitnet", MODEL, CONFIG, schedule, ("adjacent",))
    names = [r.name for r in reports]
    assert names == ["deployed-1 (first chunk)", "scratch-2", "stackrec-adjacent"]
    stacked = reports[-1]
    assert stacked.prior_s == pytest.approx(reports[0].wall_s)
    assert stacked.stages[0].stopped_by == "initial" and stacked.blocks == 2
    # The deployed model is validated on the full data before it is stacked: the stack is measured
    # against what it already scored there.
    deployed_on_full = stacked.stages[0].best["mrr@5"]
    at_stack = stacked.stages[1].history[0]["metrics"]["mrr@5"]
    assert stacked.stack_changes("mrr@5")[0][0] == pytest.approx(at_stack - deployed_on_full)


def test_remap_items_keeps_known_rows_and_transfer_keeps_blocks():
    torch.manual_seed(0)
    old = Vocabulary(("x", "y", "z"))
    new = Vocabulary(("z", "new", "x"))
    model = build_model(
        "nextitnet", model_config("nextitnet", {"blocks": 2, "embedding_dim": 8}), old.n_items
    )
    grown = remap_items(model, old, new)
    torch.testing.assert_close(grown.item_embedding.weight[1], model.item_embedding.weight[3])  # z
    torch.testing.assert_close(grown.item_embedding.weight[3], model.item_embedding.weight[1])  # x
    torch.testing.assert_close(grown.output_weight[3], model.output_weight[1])
    torch.testing.assert_close(grown.blocks[1].conv1.conv.weight, model.blocks[1].conv1.conv.weight)
    moved = transfer_blocks(model, 11)
    assert moved.n_items == 11
    torch.testing.assert_close(moved.blocks[0].conv2.conv.weight, model.blocks[0].conv2.conv.weight)


def test_a_fresh_run_starts_from_the_same_weights_whatever_ran_before():
    """A benchmark's shallow run and a stacked run's first stage train the same model alike."""
    split = toy_split()
    shallow = run_schedule("nextitnet", MODEL, split, CONFIG, StackingSchedule(1, 1, method="none"))
    torch.rand(1000)  # other work in the process moves the global generator
    stacked = run_schedule(
        "nextitnet",
        MODEL,
        split,
        CONFIG,
        StackingSchedule(1, 2, method="adjacent", stage_epochs=3, grow="fixed"),
    )
    assert stacked.stages[0].best == shallow.stages[0].best


class ScriptedFit:
    """Stands in for the training loop: each stage ends with the next scripted validation value.

    The decisions under test (grow or stop, which stage to keep) depend only on the stages' best
    validations, so scripting them tests those decisions exactly, with real stacking around them.
    """

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self, model, split, config, **kwargs):
        value = self.values[self.calls]
        self.calls += 1
        with torch.no_grad():  # mark the model, so the test can tell which stage's weights came back
            model.item_embedding.weight.fill_(value)
        record = training.EvalRecord(
            step=10, epoch=1.0, wall_s=0.01, train_loss=1.0, metrics={"mrr@5": value}
        )
        return training.FitResult([record], record, 10, 0.01, 0.01, 100, "patience", {})


def _scripted_run(monkeypatch, values, tmp_path=None, **schedule):
    from trainer import schedule as schedule_module

    scripted = ScriptedFit(values)
    monkeypatch.setattr(schedule_module, "fit", scripted)
    plan = StackingSchedule(**{"start_blocks": 1, "final_blocks": 8, **schedule})
    return run_schedule("nextitnet", MODEL, toy_split(), CONFIG, plan, checkpoint_dir=tmp_path), scripted


def test_auto_growth_stops_at_the_first_stage_that_does_not_pay(monkeypatch):
    # 1 → 2 blocks gains 50 %; 2 → 4 gains 0.5 %, inside the default 1 % margin: growth stops there.
    result, scripted = _scripted_run(monkeypatch, [0.10, 0.15, 0.15075, 0.5])
    assert scripted.calls == 3  # the 8-block stage never trains
    assert [s.blocks for s in result.stages] == [1, 2, 4]
    assert [s.kept for s in result.stages] == [False, True, False]
    assert len(result.model.blocks) == 2 and result.kept.blocks == 2
    assert result.model.item_embedding.weight[1, 0].item() == pytest.approx(0.15)  # the 2-block weights
    assert result.stages[1].gain == pytest.approx(0.5)
    assert result.growth == result.stages[2].decision
    assert result.growth == (
        "depth stopped paying at 2 blocks: 4 blocks gained +0.5% over 2 blocks, not more than 1.0%"
    )


def test_auto_growth_goes_on_to_the_ceiling_while_every_stage_pays(monkeypatch):
    result, _ = _scripted_run(monkeypatch, [0.10, 0.12, 0.14, 0.16])
    assert [s.blocks for s in result.stages] == [1, 2, 4, 8]
    assert len(result.model.blocks) == 8
    assert result.growth == "grew to the 8-block ceiling; kept 8 blocks"


def test_a_fixed_schedule_trains_every_stage_and_keeps_the_best(monkeypatch):
    """The paper's schedule to a fixed depth, where the deepest stage is far worse (as with
    paper-faithful stacking, which re-initialises the output layer): the run gives the 2-block model."""
    result, _ = _scripted_run(
        monkeypatch, [0.010, 0.030, 0.008], final_blocks=4, grow="fixed", method="adjacent"
    )
    assert [s.blocks for s in result.stages] == [1, 2, 4]
    assert len(result.model.blocks) == 2 and result.kept_stage == 1
    assert result.stages[2].decision.startswith("not kept: 4 blocks gained -73.3% over 2 blocks")
    final, _ = _scripted_run(
        monkeypatch, [0.010, 0.030, 0.008], final_blocks=4, grow="fixed", method="adjacent", keep="final"
    )
    assert len(final.model.blocks) == 4 and final.kept_stage == 2


def test_a_deeper_stage_within_the_margin_does_not_replace_the_shallower_model(monkeypatch):
    result, _ = _scripted_run(monkeypatch, [0.100, 0.1009], final_blocks=2, min_gain=0.01)
    assert len(result.model.blocks) == 1
    result, _ = _scripted_run(monkeypatch, [0.100, 0.1009], final_blocks=2, min_gain=0.0)
    assert len(result.model.blocks) == 2


def test_a_resumed_run_keeps_its_growth_decision_and_its_kept_model(monkeypatch, tmp_path):
    first, _ = _scripted_run(monkeypatch, [0.10, 0.15, 0.15075], tmp_path=tmp_path)
    assert [s.blocks for s in first.stages] == [1, 2, 4]
    again, scripted = _scripted_run(monkeypatch, [0.9], tmp_path=tmp_path)
    assert scripted.calls == 0  # growth had stopped: nothing more to train
    assert again.kept.blocks == 2 and len(again.model.blocks) == 2
    assert again.model.item_embedding.weight[1, 0].item() == pytest.approx(0.15)


def test_growing_automatically_a_carried_model_first_trains_on_the_new_data():
    """A retrain (continual learning) under the auto schedule never hands back the deployed model
    untouched: its first stage trains it on the grown data, from what it scored there."""
    full, first = toy_split(seed=0), toy_split(seed=0, n_users=32)
    shallow = run_schedule("nextitnet", MODEL, first, CONFIG, StackingSchedule(1, 1, method="none"))
    plan = StackingSchedule(start_blocks=1, final_blocks=2, stage_epochs=2)  # auto, preserving
    result = run_schedule("nextitnet", MODEL, full, CONFIG, plan, initial_model=shallow.model)
    carried = result.stages[0]
    assert carried.stopped_by != "initial" and carried.steps > 0
    at_start = carried.history[0]
    assert at_start["step"] == 0 and at_start["train_loss"] is None  # the deployed model, on the new data
    assert carried.best["mrr@5"] >= at_start["metrics"]["mrr@5"]
    assert carried.decision == "the carried model, trained on this run's data"
