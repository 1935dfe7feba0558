"""End to end with real Celery worker processes: upload → parse → StackRec training → ONNX → recommend.

The workers are started with the commands docker-compose runs (``-Q default`` and ``-Q gpu --pool
solo --concurrency 1``), against the real Redis on this machine and against the embedded broker
(kombu's SQLAlchemy transport on a SQLite file). They share the test database and media folder
(tests/webapp/workers.py, which the browser tests use too).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.webapp.conftest import TINY_CONFIG
from tests.webapp.workers import (
    REPO,
    Workers,
    compose_command,
    database_url,
    job_trained,
    wait_for,
    worker_group,
)
from webapp.registry.models import ModelVersion
from webapp.training.models import TrainingJob

SLICE_LINES = 3000  # ml-100k events used here: ~900 items, trains in seconds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated"
    ),  # kombu on SQLAlchemy 2.1
]


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.services),
        pytest.param("embedded", marks=pytest.mark.embedded),
    ]
)
def workers(request, tmp_path) -> Iterator[Workers]:
    with worker_group(request.param, tmp_path) as group:
        yield group


@pytest.fixture
def embedded_workers(tmp_path) -> Iterator[Workers]:
    with worker_group("embedded", tmp_path) as group:
        yield group


@pytest.fixture
def ml100k_slice(shared_data, tmp_path) -> bytes:
    lines = (shared_data / "ml-100k" / "ml-100k.inter").read_bytes().splitlines(keepends=True)
    return b"".join(lines[: SLICE_LINES + 1])


def _upload(api, data: bytes, name: str) -> dict:
    body = {"file": io.BytesIO(data)}
    body["file"].name = name
    response = api.post("/api/v1/datasets", body, format="multipart")
    assert response.status_code == 202, response.json()
    return response.json()


def test_upload_train_activate_recommend(workers, api, ml100k_slice):
    workers.start("worker")
    workers.start("worker-gpu")
    dataset = _upload(api, ml100k_slice, "ml-100k-slice.inter")
    ready = wait_for(
        lambda: (
            (d := api.get(f"/api/v1/datasets/{dataset['id']}").json())["status"] in ("READY", "FAILED") and d
        ),
        "the parse",
        workers,
    )
    assert ready["status"] == "READY", ready["error"]
    assert ready["stats"]["n_events"] == SLICE_LINES

    job = job_trained(api, dataset["id"], TINY_CONFIG, workers)
    assert [s["blocks"] for s in job["stages"]] == [1, 2] and job["attempts"] == 1
    assert job["progress"]["stage"] == 2 and job["heartbeat_at"]

    version = api.get(f"/api/v1/versions/{job['version']}").json()
    assert version["is_active"] and version["depth"] == 2 and version["method"] == "adjacent"
    answer = api.post(
        "/api/v1/recommend", {"dataset": dataset["id"], "history": ["242", "302"], "k": 5}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert len(answer.json()["items"]) == 5 and answer.json()["version"] == version["label"]


@pytest.mark.embedded  # on the production services, test_faults.py kills workers
def test_killed_training_worker_resumes_after_restart_and_cancel_ends_cancelled(
    embedded_workers, ready_dataset, api
):
    workers = embedded_workers
    config = {
        **TINY_CONFIG,
        # Stage 1 is short; stage 2 trains long enough to be killed in the middle.
        # 1000 epochs (the most a config may ask for) of this log take about 20 s a stage.
        "train": {**TINY_CONFIG["train"], "epochs": 1000, "eval_every": 5, "time_budget_s": 300},
    }
    response = api.post("/api/v1/jobs", {"dataset": ready_dataset.pk, "config": config}, format="json")
    job_id = response.json()["id"]
    folder = TrainingJob.objects.get(pk=job_id).checkpoint_path
    stage_one = folder / "attempt-1" / "stages" / "stage-0.pt"

    workers.start("worker-gpu")
    wait_for(
        lambda: (TrainingJob.objects.get(pk=job_id).progress or {}).get("stage") == 2, "stage 2", workers
    )
    first_checkpoint = stage_one.stat().st_mtime_ns
    workers.kill("worker-gpu")
    job = TrainingJob.objects.get(pk=job_id)
    assert job.status == "RUNNING" and job.attempts == 1  # orphaned: nobody is running it

    workers.start("worker-gpu")  # same worker name: it requeues what it left behind and resumes
    wait_for(lambda: TrainingJob.objects.get(pk=job_id).attempts == 2, "the resumed run", workers)
    wait_for(
        lambda: (
            (p := TrainingJob.objects.get(pk=job_id).progress or {}).get("attempt") == 2
            and p.get("stage") == 2
        ),
        "stage 2 of the resumed run",
        workers,
    )
    # Had stage 1 been trained again, its checkpoint would have been rewritten before any stage-2 event;
    # the second attempt writes into a folder of its own, starting from the first one's stage.
    assert (folder / "attempt-2" / "stages" / "stage-0.pt").stat().st_mtime_ns == first_checkpoint

    assert api.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait_for(
        lambda: (j := TrainingJob.objects.get(pk=job_id)).status == "CANCELLED" and j,
        "the cancel",
        workers,
        60,
    )
    assert stage_one.is_file() and not ModelVersion.objects.filter(job_id=job_id).exists()
    assert job.attempts == 2  # never more than one run at a time, never a third delivery


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.services
def test_gunicorn_with_production_settings_serves_the_api_and_static_files(
    ready_dataset, make_version, tmp_path, user
):
    """The compose ``web`` command (gunicorn + whitenoise, production settings) against the test database."""
    from rest_framework.authtoken.models import Token

    make_version(ready_dataset, active=True)
    token = Token.objects.create(user=user).key
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.config.settings.production",
        "DJANGO_SECRET_KEY": "integration-test-" + "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url(),
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_VAR_DIR": str(tmp_path / "var"),
        # an explicit embedded broker: this test sends no task, and production needs one named
        "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": str(REPO),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    command = compose_command("web")[-1].split("&&")[-1].split()  # "... && exec gunicorn -c … wsgi"
    assert command[:2] == ["exec", "gunicorn"]
    log = open(tmp_path / "gunicorn.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", *command[1:]], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    assert json.load(response)["status"] == "ok"
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail((tmp_path / "gunicorn.log").read_text())
                time.sleep(0.25)
        request = urllib.request.Request(
            f"{base}/api/v1/recommend",
            data=json.dumps({"dataset": ready_dataset.pk, "history": ["i1", "i2"], "k": 3}).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert len(body["items"]) == 3 and body["version"] == f"dataset-{ready_dataset.pk}-v1"
        with urllib.request.urlopen(
            f"{base}/static/rest_framework/css/bootstrap.min.css", timeout=5
        ) as response:
            assert response.status == 200 and response.headers["Cache-Control"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/v1/datasets", timeout=5)
        assert refused.value.code == 401
        assert json.load(refused.value) == {
            "message": "Authentication credentials were not provided.",
            "extra": {},
        }
    finally:
        server.terminate()
        server.wait(timeout=20)
