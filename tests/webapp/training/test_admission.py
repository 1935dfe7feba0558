"""Bounded jobs in the web app: out-of-range configs and over-budget estimates are refused with the
numbers, the estimate is stored and shown, the queued and running limits per user hold, and the
wall-time limit ends a run cleanly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.core.exceptions import TooManyRequestsError
from webapp.registry.models import ModelVersion
from webapp.training import attempts
from webapp.training.attempts import training_job_run
from webapp.training.models import TrainingJob
from webapp.training.services import (
    training_job_claim,
    training_job_create,
    training_job_resume,
    training_job_retrain,
    training_jobs_reconcile,
)

Status = TrainingJob.Status


def _post(api, dataset, config):
    return api.post("/api/v1/jobs", {"dataset": dataset.pk, "config": config}, format="json")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "epochs", 1e12,
         "train.epochs must be a whole number between 1 and 1000, got 1000000000000.0"),
        ("train", "epochs", 10**12, "train.epochs must be between 1 and 1000, got 1000000000000"),
        ("model_options", "embedding_dim", 1e7,
         "model_options.embedding_dim must be a whole number between 8 and 1024, got 10000000.0"),
        ("model_options", "embedding_dim", 10**7,
         "model_options.embedding_dim must be between 8 and 1024, got 10000000"),
        ("train", "lr", True, "train.lr must be a number greater than 0 and at most 1, got true"),
    ],
)  # fmt: skip
def test_an_out_of_range_setting_is_a_400_naming_the_range(
    api, ready_dataset, tiny_config, section, key, value, message
):
    tiny_config[section] = {**tiny_config.get(section, {}), key: value}
    response = _post(api, ready_dataset, tiny_config)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert not TrainingJob.objects.exists()


def test_a_config_too_big_for_memory_is_a_400_with_the_estimate_the_limit_and_the_knob(api, ready_dataset):
    # Every value is in range, but together: 1024-wide activations of 8192 × 1024 positions, 64 blocks deep.
    config = {
        "model_options": {"embedding_dim": 1024},
        "schedule": {"final_blocks": 64},
        "train": {"batch_size": 8192, "max_len": 1024},
    }
    response = _post(api, ready_dataset, config)
    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith("this job needs about ")
    assert "of memory at its peak (estimated), above the limit of 16 GB: activations" in body["message"]
    assert "lower train.batch_size, train.max_len or schedule.final_blocks" in body["message"]
    assert body["extra"]["limit_bytes"] == 16_000_000_000
    assert body["extra"]["estimate"]["peak_bytes"] > 16_000_000_000
    assert not TrainingJob.objects.exists()


def test_a_config_estimated_too_long_is_a_400_with_the_estimate_and_the_limit(
    api, ready_dataset, tiny_config, settings
):
    settings.STUDIO_JOB_ASSUMED_FLOPS = 1e6  # a very slow worker: the tiny job takes hours
    settings.STUDIO_JOB_MAX_ESTIMATED_S = 3600
    response = _post(api, ready_dataset, {**tiny_config, "train": {**tiny_config["train"], "epochs": 1000}})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("this job would train for about ") and "(estimated at 1e+06 FLOP/s" in message
    assert "above the limit of 60 min: lower train.epochs" in message
    # The job's own cap bounds its time: the same job with a one-hour run limit is accepted.
    capped = {**tiny_config, "schedule": {**tiny_config["schedule"], "time_limit_s": 1800}}
    capped["train"] = {**tiny_config["train"], "epochs": 1000}
    assert _post(api, ready_dataset, capped).status_code == 202


def test_the_estimate_is_stored_and_shown(api, client, user, ready_dataset, tiny_config):
    response = _post(api, ready_dataset, tiny_config)
    assert response.status_code == 202
    estimate = response.json()["estimate"]
    assert estimate["summary"].startswith("estimated peak memory ") and estimate["peak_bytes"] > 0
    assert estimate["wall_limit_s"] == 12 * 3600 and estimate["parameters"] > 0
    assert TrainingJob.objects.get().estimate == estimate
    client.login(username="alice", password="alice-password")
    page = client.get(f"/jobs/{response.json()['id']}/").content.decode()
    assert estimate["summary"] in page and "the run stops at 12 h 00 min and keeps its best model" in page


def test_beyond_the_queued_limit_creating_retraining_and_resuming_are_429(
    api, ready_dataset, tiny_config, settings
):
    settings.STUDIO_JOBS_MAX_QUEUED_PER_USER = 2
    failed = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    TrainingJob.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    for _ in range(2):
        assert _post(api, ready_dataset, tiny_config).status_code == 202
    response = _post(api, ready_dataset, tiny_config)
    assert response.status_code == 429
    assert response.json()["message"] == (
        "alice has 2 jobs queued and 0 running; at most 2 may wait per user "
        "(DJANGO_JOBS_MAX_QUEUED_PER_USER): wait for one to start, or cancel one"
    )
    assert response.json()["extra"] == {"queued": 2, "running": 0, "limit": 2}
    ModelVersion.objects.create(  # a serving version to retrain from; its files are never read here
        owner=ready_dataset.owner,
        dataset=ready_dataset,
        number=1,
        model_name="nextitnet",
        depth=1,
        method="none",
        artifact_dir="artifacts/v1",
        checkpoint_file="artifacts/v1.pt",
        is_active=True,
    )
    with pytest.raises(TooManyRequestsError, match="alice has 2 jobs queued"):
        training_job_retrain(dataset=ready_dataset)
    with pytest.raises(TooManyRequestsError, match="alice has 2 jobs queued"):
        training_job_resume(job=failed)
    assert TrainingJob.objects.filter(status=Status.PENDING).count() == 2
    # The limit is per owner: another user's first job is accepted.
    dave = type(ready_dataset.owner).objects.create_user("dave", password="dave-password")
    assert training_job_create(owner=dave, dataset=ready_dataset, config=tiny_config).status == Status.PENDING


def test_beyond_the_running_limit_a_job_waits_queued_with_the_reason_until_a_place_is_free(
    ready_dataset, tiny_config, settings, django_capture_on_commit_callbacks
):
    settings.STUDIO_JOBS_MAX_RUNNING_PER_USER = 1
    first, second = (
        training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
        for _ in range(2)
    )
    assert training_job_claim(job_id=first.pk, worker="w1").status == Status.RUNNING
    assert training_job_claim(job_id=second.pk, worker="w2") is None
    second.refresh_from_db()
    assert second.status == Status.PENDING and second.attempts == 0
    assert second.progress["waiting"] == (
        "waiting: its owner runs 1 job already, the most one user may run at once "
        "(DJANGO_JOBS_MAX_RUNNING_PER_USER=1); it starts when one of them ends"
    )
    # The reconciler sends what waits too long again; the claim still says no while the first runs.
    settings.STUDIO_DISPATCH_RESEND_S = 0
    assert second.pk in training_jobs_reconcile()["jobs_resent"]
    assert training_job_claim(job_id=second.pk, worker="w2") is None
    # The first job's end sends the waiting one at once, and its claim now succeeds.
    with django_capture_on_commit_callbacks() as sent:
        attempts._finish(first.pk, 1, Status.FAILED, error="stopped for the test")
    assert len(sent) == 1
    claimed = training_job_claim(job_id=second.pk, worker="w2")
    assert claimed.status == Status.RUNNING and "waiting" not in claimed.progress


def test_a_running_job_whose_worker_died_does_not_hold_a_place(ready_dataset, tiny_config, settings):
    settings.STUDIO_JOBS_MAX_RUNNING_PER_USER = 1
    first, second = (
        training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
        for _ in range(2)
    )
    training_job_claim(job_id=first.pk, worker="w1")
    TrainingJob.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert training_job_claim(job_id=second.pk, worker="w2").status == Status.RUNNING


def test_the_wall_time_limit_ends_the_run_keeping_the_best_model_so_far(ready_dataset, tiny_config, settings):
    settings.STUDIO_JOB_MAX_WALL_S = 3.0
    # Stage 1 is three steps (well under the limit, even on a busy machine); the final stage would
    # train 1000 epochs (about 20 s): the limit ends it.
    tiny_config["schedule"] = {**tiny_config["schedule"], "keep": "best"}
    tiny_config["train"] = {**tiny_config["train"], "epochs": 1000, "eval_every": 5}
    job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == Status.SUCCEEDED, done.error
    assert done.error == ""
    growth = done.metrics["kept"]["growth"]
    assert growth.startswith("stopped at the wall-time limit of 3 s; kept the best model so far (stage ")
    assert done.metrics["kept"]["time_limited"] is True
    # The stage training when the limit came was cut (on a very busy machine, the limit may come
    # between stage 1 and 2: then no stage 2 started).
    assert done.stages[-1]["stopped_by"] == "time_limit" or len(done.stages) == 1
    assert ModelVersion.objects.get(job=done).depth == done.metrics["kept"]["blocks"]


def test_a_wall_time_limit_before_any_validation_fails_the_job_with_the_sentence(
    ready_dataset, tiny_config, settings
):
    settings.STUDIO_JOB_MAX_WALL_S = 1e-9
    job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == Status.FAILED
    assert done.error == (
        "stopped at the wall-time limit of 1e-09 s before any stage was validated: there is no model to keep"
    )
    assert not ModelVersion.objects.exists()


def test_the_wall_time_limit_stays_under_the_celery_hard_limit(ready_dataset, tiny_config, settings):
    from webapp.training.admission import training_job_wall_limit_s
    from webapp.training.configs import job_config_build

    settings.STUDIO_TRAINING_TIME_LIMIT_S = 3600
    assert training_job_wall_limit_s(job_config_build(tiny_config)) == 3600 - 900
    settings.STUDIO_JOB_MAX_WALL_S = 600
    tiny_config["schedule"] = {**tiny_config["schedule"], "time_limit_s": 120}
    assert training_job_wall_limit_s(job_config_build(tiny_config)) == 120
