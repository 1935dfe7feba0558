"""Retraining (continual learning), live curve points and the run comparison, as a user meets them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.webapp.conftest import client_for, synthetic_log
from webapp.core.exceptions import ApplicationError, ConflictError
from webapp.registry.models import ModelVersion
from webapp.training.attempts import training_job_run
from webapp.training.comparison import comparison_partner, job_comparison
from webapp.training.models import TrainingJob, TrainingPoint
from webapp.training.services import training_job_create, training_job_retrain

Status = TrainingJob.Status


@pytest.fixture
def trained(ready_dataset, tiny_config, django_capture_on_commit_callbacks):
    """A finished 1 → 2 block StackRec job on the synthetic log; its version is active."""
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.SUCCEEDED, done.error
    return done


@pytest.fixture
def increment(trained, upload, django_capture_on_commit_callbacks):
    """New events of known and new users appended to the trained job's dataset."""
    from webapp.datasets.services import dataset_create, dataset_parse

    more = "user,item,timestamp\n" + "\n".join(
        synthetic_log(users=8, items=35, start_user=35).splitlines()[1:]
    )
    with django_capture_on_commit_callbacks():
        grown = dataset_create(owner=trained.owner, upload=upload(more + "\n"), parent=trained.dataset)
    grown = dataset_parse(dataset_id=grown.pk)
    assert grown.status == "READY", grown.error
    return grown


def test_a_run_records_curve_points_with_stage_ends(trained):
    points = list(trained.points.all())
    kinds = {p.kind for p in points}
    assert {"valid", "stage"} <= kinds
    stage_ends = [p for p in points if p.kind == "stage"]
    assert [(p.stage, p.blocks) for p in stage_ends] == [(1, 1), (2, 2)]  # one per stage, in order
    assert stage_ends[0].wall_s <= stage_ends[1].wall_s
    valid = [p for p in points if p.kind == "valid"]
    assert all("mrr@5" in p.metrics and "ndcg@10" in p.metrics for p in valid)
    times = [p.wall_s for p in points]
    assert times == sorted(times)  # one clock over all stages


def test_retrain_of_a_grown_dataset_stacks_the_active_version_deeper_on_all_data(
    trained, increment, django_capture_on_commit_callbacks
):
    base = ModelVersion.objects.get(job=trained)
    with django_capture_on_commit_callbacks() as callbacks:
        job = training_job_retrain(owner=trained.owner, dataset=trained.dataset)  # the parent is named
    assert len(callbacks) == 1
    assert job.dataset == increment and job.base_version == base and job.owner == trained.owner
    assert job.config["warm_start"] is True
    # The default schedule from the base version's depth: function-preserving, growing while it pays.
    expected = {"start_blocks": 2, "final_blocks": 4, "method": "preserving", "grow": "auto", "keep": "best"}
    assert job.config["schedule"] | {} == {**job.config["schedule"], **expected}

    done = training_job_run(job_id=job.pk)
    assert done.status == Status.SUCCEEDED, done.error
    # The deployed model first trains on the grown data at its own depth, from what it scored there.
    carried = done.stages[0]
    assert carried["blocks"] == 2 and carried["steps"] > 0 and carried["stopped_by"] != "initial"
    first_point = done.points.filter(kind="valid", stage=1).order_by("id").first()
    assert first_point.step == 0 and carried["best"]["mrr@5"] >= first_point.metrics["mrr@5"]
    version = ModelVersion.objects.get(job=done)
    assert version.depth == done.metrics["kept"]["blocks"] and version.dataset == increment
    # Judged against the version serving the dataset it extends, on the new data's cases.
    assert version.promotion["serving"]["version"] == base.label
    assert "ndcg@10" in version.metrics["test"]
    previous = done.metrics["previous"]
    assert previous["version"] == base.label and previous["blocks"] == 2
    assert set(previous["test"]) >= {"ndcg@10", "hr@10"}  # the deployed model on the same test cases

    comparison = job_comparison(first=trained, second=done)
    assert comparison.speedup is None and "different data" in comparison.note
    assert base.label in comparison.note and comparison.previous_on_new_data == previous
    assert comparison_partner(done) == trained


def test_retrain_refusals_say_what_to_do(ready_dataset, make_version, tiny_config):
    with pytest.raises(ConflictError, match="no active version to retrain from: train one first"):
        training_job_retrain(dataset=ready_dataset)
    version = make_version(ready_dataset, active=True)  # registered without a PyTorch checkpoint
    with pytest.raises(ConflictError, match="no PyTorch checkpoint"):
        training_job_retrain(version=version)
    with pytest.raises(ApplicationError, match="one of the two"):
        training_job_retrain()


def test_comparison_measures_the_speedup_against_the_scratch_run(trained, tiny_config):
    """Synthetic curves: scratch reaches its best 0.30 at 90 s; StackRec passes 0.297 at 30 s → 3×."""
    scratch = TrainingJob.objects.create(
        owner=trained.owner,
        dataset=trained.dataset,
        status=Status.SUCCEEDED,
        config={
            **trained.config,
            "schedule": {**trained.config["schedule"], "start_blocks": 2, "method": "none"},
        },
        metrics={"test": {"ndcg@10": 0.2}},
    )
    stacked = TrainingJob.objects.create(
        owner=trained.owner,
        dataset=trained.dataset,
        status=Status.SUCCEEDED,
        finished_at=timezone.now(),
        config=trained.config,
        metrics={"test": {"ndcg@10": 0.21}},
    )

    def curve(job, values):
        for t, value, stage, step in values:
            TrainingPoint.objects.create(
                job=job,
                kind="valid",
                stage=stage,
                blocks=2 * stage,
                step=step,
                epoch=1,
                wall_s=t,
                metrics={"mrr@5": value},
            )

    curve(scratch, [(30, 0.1, 1, 100), (60, 0.25, 1, 200), (90, 0.30, 1, 300), (120, 0.29, 1, 400)])
    curve(stacked, [(10, 0.2, 1, 100)])
    TrainingPoint.objects.create(job=stacked, kind="stage", stage=1, blocks=2, step=150, epoch=1, wall_s=15)
    curve(stacked, [(30, 0.298, 2, 120), (50, 0.31, 2, 200)])
    comparison = job_comparison(first=stacked, second=scratch)
    assert comparison.reference.job == scratch
    assert comparison.time_to_reach_s == 30 and comparison.speedup == pytest.approx(3.0)
    # Steps count over stages: 150 in the first, 120 into the second; scratch needed 300.
    assert comparison.steps_to_reach == 270 and comparison.reference.steps_to_best == 300
    assert "in 30 s (270 steps); scratch took 90 s (300 steps): 3.0× by wall time (faster)" in comparison.note
    assert comparison.steps_ratio == pytest.approx(300 / 270) and "1.1× in optimiser steps" in comparison.note
    assert comparison_partner(scratch) == stacked
    data = comparison.to_dict()
    assert [len(r["curve"]) for r in data["runs"]] == [3, 4]
    api = client_for(trained.owner).get("/api/v1/jobs/compare", {"first": stacked.pk, "second": scratch.pk})
    assert api.status_code == 200 and api.json()["speedup"] == pytest.approx(3.0)
    missing = client_for(trained.owner).get("/api/v1/jobs/compare", {"first": stacked.pk})
    assert missing.status_code == 400 and "second" in missing.json()["message"]

    TrainingPoint.objects.filter(job=stacked).update(metrics={"mrr@5": 0.2})
    missed = job_comparison(first=stacked, second=scratch)
    assert missed.speedup is None and "did not reach" in missed.note


def test_curve_api_returns_new_points_after_an_id(trained, other_user):
    api = client_for(trained.owner)
    first = api.get(f"/api/v1/jobs/{trained.pk}/curve").json()
    assert first["job"]["status"] == "SUCCEEDED" and first["job"]["finished"] is True
    assert len(first["points"]) == trained.points.count() and first["last"] == trained.points.last().pk
    again = api.get(f"/api/v1/jobs/{trained.pk}/curve", {"after": first["last"]}).json()
    assert again["points"] == [] and again["last"] == first["last"]
    assert client_for(other_user).get(f"/api/v1/jobs/{trained.pk}/curve").status_code == 404
    assert api.get(f"/api/v1/jobs/{trained.pk}/curve", {"after": "x"}).status_code == 400


def test_retrain_api_for_schedulers(trained, increment, other_user):
    api = client_for(trained.owner)
    response = api.post("/api/v1/jobs/retrain", {"dataset": trained.dataset_id}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["dataset"] == increment.pk
    assert response.json()["config"]["schedule"]["final_blocks"] == 4
    both = api.post("/api/v1/jobs/retrain", {"dataset": 1, "version": 1}, format="json")
    assert both.status_code == 400 and "either dataset or version" in both.json()["message"]
    foreign = client_for(other_user).post(
        "/api/v1/jobs/retrain", {"dataset": trained.dataset_id}, format="json"
    )
    assert foreign.status_code == 404


def test_admin_retrain_action_on_a_dataset(trained, increment, staff_user, client):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    response = client.post(
        "/admin/datasets/dataset/",
        {"action": "retrain", "index": 0, "_selected_action": [trained.dataset_id]},
        follow=True,
    )
    assert response.status_code == 200
    assert "retraining jobs queued: 1" in response.content.decode().lower()
    job = TrainingJob.objects.exclude(pk=trained.pk).get()
    assert job.dataset == increment and job.owner == trained.owner  # the user sees it on their dashboard

    response = client.post(
        "/admin/training/trainingjob/",
        {"action": "cancel", "index": 0, "_selected_action": [job.pk]},
        follow=True,
    )
    assert "cancelled: 1" in response.content.decode().lower()
    job.refresh_from_db()
    assert job.status == Status.CANCELLED


def test_a_run_is_summarised_by_the_model_it_exported_not_by_its_curves_peak(trained):
    """The 4-block stage peaked 0.5 % above the 2-block one, inside the margin: the 2-block model was
    kept and exported, so its figures (and when the run first had it) are the run's."""
    from webapp.training.comparison import run_summary

    job = TrainingJob.objects.create(
        owner=trained.owner,
        dataset=trained.dataset,
        status=Status.SUCCEEDED,
        config=trained.config,
        stages=[
            {
                "stage": 0,
                "blocks": 2,
                "steps": 100,
                "best": {"mrr@5": 0.300},
                "kept": True,
                "best_step": 80,
                "best_wall_s": 20.0,
                "wall_s": 25.0,
            },
            {
                "stage": 1,
                "blocks": 4,
                "steps": 50,
                "best": {"mrr@5": 0.3015},
                "kept": False,
                "best_step": 30,
                "best_wall_s": 40.0,
                "wall_s": 20.0,
            },
        ],
        metrics={
            "kept": {"stage": 1, "blocks": 2, "growth": "depth stopped paying at 2 blocks"},
            "popularity": {"test": {"ndcg@10": 0.05}},
            "test": {"ndcg@10": 0.2},
        },
    )
    for t, value, stage, step in [(20, 0.300, 1, 80), (40, 0.3015, 2, 30)]:
        TrainingPoint.objects.create(
            job=job, kind="valid", stage=stage, blocks=2 * stage, step=step, epoch=1, wall_s=t,
            metrics={"mrr@5": value},
        )  # fmt: skip
    summary = run_summary(job, "mrr@5")
    assert (summary.best_valid, summary.time_to_best_s, summary.steps_to_best) == (0.300, 20.0, 80)
    assert summary.kept_blocks == 2 and summary.growth == "depth stopped paying at 2 blocks"
    assert summary.popularity_test == {"ndcg@10": 0.05}
