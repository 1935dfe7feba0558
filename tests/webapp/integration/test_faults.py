"""Faults injected into a running system: a broker restart, a killed worker, a frozen worker, a
database that drops its connections. Each test starts a Redis server of its own on a free port (so
it can kill and restart it) and real worker processes with short thresholds; the database is the
test database (PostgreSQL in the second half of ``./studio test``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from serving.artifact import read_artifact
from tests.webapp.conftest import TINY_CONFIG
from tests.webapp.integration.test_workers import _free_port
from tests.webapp.workers import Workers, use_broker, wait_for
from webapp.config.celery_app import app as celery_app
from webapp.config.settings.base import redis_reachable
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.models import TrainingJob

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Thresholds short enough for a test: the reconciler runs every second, re-sends what waited 2 s,
# and a job whose heartbeat (every 0.5 s) is 4 s old belongs to a dead worker.
FAST = {
    "CELERY_RECONCILE_INTERVAL_S": "1",
    "CELERY_DISPATCH_RESEND_S": "2",
    "DJANGO_JOB_HEARTBEAT_STALE_S": "4",
}
# Stage 1 is a few steps; stage 2 trains for a few seconds, long enough to break something in it.
SLOW_STAGE = {
    **TINY_CONFIG,
    "train": {**TINY_CONFIG["train"], "epochs": 1000, "eval_every": 5, "time_budget_s": 3},
}


class OwnRedis:
    """A redis-server of this test's own, without persistence: a restart loses every message."""

    def __init__(self, root: Path) -> None:
        self.port, self.root = _free_port(), root
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not redis_reachable(self.url):
            assert time.monotonic() < deadline, (self.root / "redis.log").read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def system(tmp_path) -> Iterator[tuple[OwnRedis, Workers]]:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed")
    redis = OwnRedis(tmp_path)
    redis.start()
    previous = celery_app.conf.broker_url
    use_broker(redis.url)
    workers = Workers(redis.url, tmp_path)
    workers.env.update(FAST)
    try:
        yield redis, workers
    finally:
        workers.stop()
        use_broker(previous)
        redis.kill()
        print(workers.logs())


def _job(api, dataset_id: int, config: dict) -> int:
    response = api.post("/api/v1/jobs", {"dataset": dataset_id, "config": config}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def _in_stage_two(job_id: int) -> bool:
    job = TrainingJob.objects.get(pk=job_id)
    return job.status == "RUNNING" and (job.progress or {}).get("stage") == 2


def test_a_broker_restart_loses_no_upload_and_no_job(system, api, ready_dataset, upload):
    redis, workers = system
    workers.start("worker")
    workers.start("worker-gpu")
    wait_for(lambda: "ready" in workers.logs(), "the workers to start", workers)
    redis.kill()  # Redis goes away, and every message it held with it
    uploaded = api.post(
        "/api/v1/datasets", {"name": "during the outage", "file": upload()}, format="multipart"
    )
    assert uploaded.status_code == 202 and uploaded.json()["status"] == "PENDING"
    job_id = _job(api, ready_dataset.pk, TINY_CONFIG)
    time.sleep(1.5)  # long enough for the reconciler to try (and fail) to send them again
    redis.start()  # same port, empty
    dataset = wait_for(
        lambda: (d := Dataset.objects.get(pk=uploaded.json()["id"])).status in ("READY", "FAILED") and d,
        "the upload made during the outage to be parsed",
        workers,
    )
    assert dataset.status == "READY", dataset.error
    job = wait_for(
        lambda: (j := TrainingJob.objects.get(pk=job_id)).status in ("SUCCEEDED", "FAILED") and j,
        "the job queued during the outage",
        workers,
    )
    assert job.status == "SUCCEEDED", job.error
    assert job.attempts == 1  # sent again, run once


def test_a_killed_worker_s_job_resumes_on_a_worker_with_another_name(system, api, ready_dataset):
    _, workers = system
    workers.start("worker-gpu")
    job_id = _job(api, ready_dataset.pk, SLOW_STAGE)
    wait_for(lambda: _in_stage_two(job_id), "stage 2", workers)
    workers.kill("worker-gpu")
    workers.start("worker-gpu", name="gpu-recreated")  # what a recreated container does
    job = wait_for(
        lambda: (j := TrainingJob.objects.get(pk=job_id)).status in ("SUCCEEDED", "FAILED") and j,
        "the job to resume and finish without a manual call",
        workers,
    )
    assert job.status == "SUCCEEDED", job.error
    assert job.attempts == 2 and job.worker.startswith("gpu-recreated@")


def test_a_frozen_worker_never_writes_after_its_lease_was_taken(system, api, ready_dataset):
    _, workers = system
    workers.start("worker-gpu", name="gpu-frozen")
    job_id = _job(api, ready_dataset.pk, SLOW_STAGE)
    wait_for(lambda: _in_stage_two(job_id), "stage 2", workers)
    frozen = workers.processes["gpu-frozen"]
    frozen.send_signal(signal.SIGSTOP)
    workers.start("worker-gpu", name="gpu-other")
    job = wait_for(
        lambda: (j := TrainingJob.objects.get(pk=job_id)).status in ("SUCCEEDED", "FAILED") and j,
        "the other worker to take the job over and finish it",
        workers,
    )
    assert job.status == "SUCCEEDED", job.error
    version = ModelVersion.objects.get(job_id=job_id)
    points = job.points.count()
    frozen.send_signal(signal.SIGCONT)  # wakes up in the middle of stage 2 of attempt 1
    wait_for(
        lambda: "lost its lease" in workers.logs(), "the woken worker to notice its lease is gone", workers
    )
    time.sleep(1)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("SUCCEEDED", 2) and job.worker.startswith("gpu-other@")
    assert job.points.count() == points  # not one curve point more
    version.refresh_from_db()
    assert version.artifact_dir.endswith("-attempt-2") and ModelVersion.objects.count() == 1
    read_artifact(version.artifact_path)  # its files still match the checksums in its metadata
    assert version.metrics == job.metrics
    assert not list(version.artifact_path.parent.glob(f"job-{job_id}-attempt-1*"))


def test_terminating_the_job_s_database_connections_does_not_fail_it(system, api, ready_dataset):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's (this runs in the PostgreSQL half of the suite)")
    _, workers = system
    workers.start("worker-gpu")
    job_id = _job(api, ready_dataset.pk, SLOW_STAGE)
    wait_for(lambda: _in_stage_two(job_id), "stage 2", workers)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the worker's connections, at least
    job = wait_for(
        lambda: (j := TrainingJob.objects.get(pk=job_id)).status in ("SUCCEEDED", "FAILED") and j,
        "the job to finish",
        workers,
    )
    assert job.status == "SUCCEEDED", job.error
    assert job.attempts == 1  # rode it out within the attempt
