"""A job that asks for several GPUs: run under torchrun when the host has them, failed plainly if not."""

from __future__ import annotations

import pytest

from webapp.registry.models import ModelVersion
from webapp.training import attempts
from webapp.training.attempts import training_job_run
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_create

Status = TrainingJob.Status


def _job(dataset, config: dict, gpus: int, capture) -> TrainingJob:
    config["train"] = {**config["train"], "gpus": gpus, "device": "auto"}
    with capture():
        return training_job_create(owner=dataset.owner, dataset=dataset, config=config)


def test_a_job_asking_for_more_gpus_than_the_host_has_fails_saying_so(
    ready_dataset, tiny_config, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(attempts, "visible_gpus", lambda: 1)
    job = _job(ready_dataset, tiny_config, 2, django_capture_on_commit_callbacks)
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.FAILED
    assert done.error == "this job asks for 2 GPUs; the worker's host has 1"


@pytest.mark.slow
def test_a_job_on_two_gpus_runs_its_ranks_and_publishes_a_version(
    ready_dataset, tiny_config, django_capture_on_commit_callbacks, monkeypatch
):
    # This host has no GPU: the two ranks run on the CPU with gloo, through the worker's own path.
    monkeypatch.setattr(attempts, "visible_gpus", lambda: 2)
    job = _job(ready_dataset, tiny_config, 2, django_capture_on_commit_callbacks)
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.SUCCEEDED, done.error
    assert [s["blocks"] for s in done.stages] == [1, 2]
    assert done.progress  # rank 0's events reached the job row through the worker
    assert ModelVersion.objects.filter(job=done).count() == 1
