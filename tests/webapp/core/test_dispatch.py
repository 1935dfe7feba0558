"""Durable dispatch: the row is written whatever the broker does, and the reconciler sends it later."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from webapp.core.reconciler import reconcile_once
from webapp.datasets.models import Dataset
from webapp.datasets.tasks import parse_dataset
from webapp.training.models import TrainingJob
from webapp.training.tasks import run_job


class Broker:
    """Stands in for the broker behind ``apply_async``: down (raises) or up (records the sends)."""

    def __init__(self, monkeypatch) -> None:
        self.up = True
        self.sent: list[tuple[str, list]] = []
        for task in (run_job, parse_dataset):
            monkeypatch.setattr(task, "apply_async", self._send(task.name))

    def _send(self, name):
        def apply_async(args=(), **options):
            if not self.up:
                raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
            self.sent.append((name, list(args)))

        return apply_async


@pytest.fixture
def broker(monkeypatch) -> Broker:
    return Broker(monkeypatch)


def _age(model, pk: int, seconds: float) -> None:
    model.objects.filter(pk=pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_with_the_broker_down_uploads_and_jobs_are_accepted_and_kept(
    api, broker, ready_dataset, upload, tiny_config, django_capture_on_commit_callbacks
):
    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = api.post("/api/v1/datasets", {"name": "clicks", "file": upload()}, format="multipart")
        created = api.post(
            "/api/v1/jobs", {"dataset": ready_dataset.pk, "config": tiny_config}, format="json"
        )
    assert uploaded.status_code == 202 and uploaded.json()["status"] == "PENDING"
    assert created.status_code == 202 and created.json()["status"] == "PENDING"
    assert created.json()["status_label"] == "queued"
    assert Dataset.objects.get(pk=uploaded.json()["id"]).status == Dataset.Status.PENDING
    assert TrainingJob.objects.get(pk=created.json()["id"]).status == TrainingJob.Status.PENDING
    assert broker.sent == []


def test_the_reconciler_sends_again_what_waited_too_long_once_per_period(
    broker, ready_dataset, tiny_config, settings, django_capture_on_commit_callbacks
):
    from webapp.training.services import training_job_create

    settings.STUDIO_DISPATCH_RESEND_S = 60
    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    broker.up = True
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_once()["jobs_resent"] == []  # queued a moment ago: its message may be on its way
    _age(TrainingJob, job.pk, 61)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_once()["jobs_resent"] == [job.pk]
        assert reconcile_once()["jobs_resent"] == []  # touched: the next send waits a whole period
    assert broker.sent == [("training.run_job", [job.pk])]


def test_the_reconciler_requeues_a_stale_job_whatever_worker_held_it(
    broker, ready_dataset, tiny_config, settings, django_capture_on_commit_callbacks
):
    from webapp.training.services import training_job_create

    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    stale = timezone.now() - timedelta(seconds=settings.STUDIO_HEARTBEAT_STALE_S + 1)
    TrainingJob.objects.filter(pk=job.pk).update(
        status="RUNNING", worker="gpu@a-gone-container", heartbeat_at=stale
    )
    with django_capture_on_commit_callbacks(execute=True):
        done = reconcile_once()
    assert done["jobs_requeued"] == [job.pk]
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.PENDING and job.worker == ""
    assert broker.sent[-1] == ("training.run_job", [job.pk])


def test_a_dataset_whose_parse_was_never_sent_is_parsed_after_the_broker_returns(
    broker, user, upload, settings, django_capture_on_commit_callbacks
):
    from webapp.datasets.services import dataset_create

    broker.up = False
    with django_capture_on_commit_callbacks(execute=True):
        dataset = dataset_create(owner=user, upload=upload())
    broker.up = True
    _age(Dataset, dataset.pk, settings.STUDIO_DISPATCH_RESEND_S + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile_once()["datasets"] == [dataset.pk]
    assert broker.sent == [("datasets.parse", [dataset.pk])]


def test_unexpected_api_errors_are_json_with_a_reference_and_no_server_details(api, monkeypatch, caplog):
    from django.db import OperationalError as DatabaseOperationalError

    from webapp.training import apis

    def broken(**kwargs):
        raise RuntimeError("boom in /srv/studio/webapp/training/selectors.py")

    monkeypatch.setattr(apis, "training_job_list", broken)
    answer = api.get("/api/v1/jobs")
    assert answer.status_code == 500 and answer["Content-Type"] == "application/json"
    body = answer.json()
    assert body["message"] == f"internal error, reference {body['extra']['reference']}"
    assert "/srv" not in answer.content.decode() and "boom" not in answer.content.decode()
    assert body["extra"]["reference"] in caplog.text and "boom in /srv" in caplog.text  # the details: the log

    def database_gone(**kwargs):
        raise DatabaseOperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(apis, "training_job_list", database_gone)
    answer = api.get("/api/v1/jobs")
    assert answer.status_code == 503 and "out of reach; try again shortly" in answer.json()["message"]


def test_readiness_reports_the_database_the_broker_and_the_workers_separately(client, db, monkeypatch):
    from webapp.core import health
    from webapp.core.models import WorkerBeat

    WorkerBeat.objects.create(name="gpu@host", queues="gpu", seen_at=timezone.now())
    WorkerBeat.objects.create(
        name="default@gone", queues="default", seen_at=timezone.now() - timedelta(hours=1)
    )
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["database"] == {"ok": True} and body["broker"]["ok"]
    assert [(w["name"], w["alive"]) for w in body["workers"]] == [("default@gone", False), ("gpu@host", True)]

    def refused(self, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("kombu.Connection.ensure_connection", refused)
    down = client.get("/readyz")
    assert down.status_code == 503
    assert (
        down.json()["broker"] == {"ok": False, "error": "OperationalError"} and down.json()["database"]["ok"]
    )
    assert client.get("/healthz").status_code == 200  # alive all the same: liveness asks no dependency
    assert health.readiness_report()[0] is False
