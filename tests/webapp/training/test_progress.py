"""How far a run is: deeper stages weigh more, a retrain does not start half done, the time left is
the run's own measured speed, and a real run leaves a progress that says how each stage ended and
which phases it went through."""

from __future__ import annotations

import pytest

from trainer.runs import DataSpec, prepare_split
from webapp.training.attempts import training_job_run
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob
from webapp.training.progress import run_percent_and_eta, run_plan
from webapp.training.services import training_job_create

NO_PHASES = [
    {"name": n, "flops": 0.0} for n in ("final evaluation", "promotion gate", "export", "activation")
]


def _plan(*work: float, phases=NO_PHASES) -> dict:
    return {
        "stages": [{"blocks": 2**i, "steps": 100, "flops": w} for i, w in enumerate(work)],
        "phases": phases,
    }


def test_a_2_4_8_run_at_the_start_of_stage_3_is_six_fourteenths_done_not_two_thirds():
    """Stage costs ∝ depth × steps: 2 + 4 of 2 + 4 + 8 units are done (43 %), where counting every
    stage alike said 67 % (the "68 % with 13 minutes to go" that users saw)."""
    progress = {"plan": _plan(2.0, 4.0, 8.0), "stage": 3, "step": 0, "planned_steps": 100, "elapsed_s": 60.0}
    progress["finished_stages"] = [
        {"stage": 1, "steps": 100, "planned_steps": 100},
        {"stage": 2, "steps": 100, "planned_steps": 100},
    ]
    percent, eta = run_percent_and_eta(progress)
    assert percent == 42.8  # 6 / 14, rounded down
    assert eta == pytest.approx(8 / (6 / 60))  # 8 units left at the 0.1 units/s this run measured


def test_a_stage_that_stopped_early_counts_whole_but_only_its_trained_part_sets_the_speed():
    progress = {
        "plan": _plan(100.0, 100.0),
        "stage": 2,
        "step": 0,
        "planned_steps": 200,
        "elapsed_s": 10.0,
        "finished_stages": [{"stage": 1, "steps": 50, "planned_steps": 100}],  # a plateau at half budget
    }
    assert run_percent_and_eta(progress) == (50.0, 20.0)  # 100 left at 50 per 10 s
    assert run_percent_and_eta({**progress, "elapsed_s": 5.0})[1] is None  # not measured long enough


def test_the_phases_after_training_have_their_own_weight():
    phases = [
        {"name": "final evaluation", "flops": 10.0},
        {"name": "promotion gate", "flops": 0.0},
        {"name": "export", "flops": 10.0},
        {"name": "activation", "flops": 0.0},
    ]
    progress = {"plan": _plan(40.0, 40.0, phases=phases), "stage": 2, "step": 100, "planned_steps": 100}
    progress["phases"] = [
        {"name": "final evaluation", "state": "running", "done": 5, "total": 10},
        {"name": "promotion gate", "state": "waiting"},
        {"name": "export", "state": "waiting"},
        {"name": "activation", "state": "waiting"},
    ]
    assert run_percent_and_eta(progress) == (85.0, None)  # 80 + half of 10, of 100
    progress["phases"][0]["state"] = "done"
    progress["phases"][1]["state"] = "skipped"
    assert run_percent_and_eta(progress)[0] == 90.0


@pytest.fixture
def split(tmp_path):
    from tests.webapp.conftest import synthetic_log

    log = tmp_path / "log.csv"
    log.write_text(synthetic_log())
    return prepare_split(DataSpec(path=str(log)))


def test_the_plan_weighs_deeper_stages_more_and_a_fixed_retrain_starts_near_zero(split):
    config = job_config_build(
        {"schedule": {"start_blocks": 2, "final_blocks": 8, "grow": "fixed", "method": "adjacent"}}
    )
    plan = run_plan(config, split, carried=False, serving=False)
    work = [s["flops"] for s in plan["stages"]]
    assert [s["blocks"] for s in plan["stages"]] == [2, 4, 8] and work[0] < work[1] < work[2]
    assert all(p["flops"] > 0 for p in plan["phases"] if p["name"] in ("final evaluation", "export"))
    # A retrain that stacks the deployed model at once: its first stage is a validation, not training.
    carried = run_plan(config, split, carried=True, serving=True)
    start = {"plan": carried, "stage": 2, "step": 0, "planned_steps": 100, "elapsed_s": 1.0}
    assert run_percent_and_eta(start)[0] < 5.0


def test_a_real_run_records_each_stage_its_phases_and_its_baseline(
    ready_dataset, tiny_config, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == TrainingJob.Status.SUCCEEDED, done.error
    progress = done.progress
    first, second = progress["finished_stages"]
    assert first["stopped_by"] == "max_steps" and first["steps"] == 3  # the schedule's stage_steps
    assert first["decision"] == "first stage" and "ndcg@10" in first["best"]
    assert second["decision"].startswith("kept") and second["stopped_by"]
    assert progress["epoch"] == 1 and progress["epochs"] == 1  # one-based: the one epoch it trained
    assert progress["popularity"] == done.metrics["popularity"]["valid"]
    assert [(p["name"], p["state"]) for p in progress["phases"]] == [
        ("final evaluation", "done"),
        ("promotion gate", "done"),
        ("export", "done"),
        ("activation", "done"),
    ]
    evaluation = progress["phases"][0]
    assert evaluation["done"] == evaluation["total"] > 0 and evaluation["unit"] == "cases"
    assert progress["phases"][3]["note"] == f"serving as {done.version.label}"
    assert progress["run_percent"] == 100.0 and progress["run_eta_s"] is None
