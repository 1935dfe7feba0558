"""Real Celery workers on the object store alone: each process has a media folder of its own.

The parsing worker (``-Q default``) and the training worker (``-Q gpu``) are started with the
commands docker-compose runs, on the embedded broker, with the S3 settings a worker on another host
would have (docs/scaling-out.md) and media, scratch and cache folders nobody else uses. This
process is the web app (uploads, the job API) and then a serving process with its own cache.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.webapp.conftest import TINY_CONFIG
from tests.webapp.workers import Workers, job_trained, wait_for, worker_group

pytestmark = [
    pytest.mark.slow,
    pytest.mark.embedded,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


@pytest.fixture
def workers(tmp_path) -> Iterator[Workers]:
    with worker_group("embedded", tmp_path) as group:
        yield group


def _start_on_own_host(workers: Workers, service: str, s3_storage) -> None:
    host = s3_storage.root / service
    workers.env.update(
        s3_storage.server.env(s3_storage.bucket, s3_storage.prefix),
        DJANGO_MEDIA_ROOT=str(host / "media"),
        DJANGO_STORAGE_SCRATCH_DIR=str(host / "scratch"),
        SERVING_ARTIFACT_CACHE_DIR=str(host / "artifact-cache"),
    )
    workers.start(service)


def test_workers_on_other_hosts_train_what_the_web_app_stored(workers, s3_storage, settings, api, log_text):
    _start_on_own_host(workers, "worker", s3_storage)
    _start_on_own_host(workers, "worker-gpu", s3_storage)
    body = {"file": io.BytesIO(log_text.encode())}
    body["file"].name = "clicks.csv"
    created = api.post("/api/v1/datasets", body, format="multipart")
    assert created.status_code == 202, created.json()
    dataset_id = created.json()["id"]
    url = f"/api/v1/datasets/{dataset_id}"
    ready = wait_for(
        lambda: (d := api.get(url).json())["status"] in ("READY", "FAILED") and d, "the parse", workers
    )
    assert ready["status"] == "READY", ready["error"]

    job = job_trained(api, dataset_id, TINY_CONFIG, workers)
    job_id = job["id"]

    s3_storage.use(settings, "serving")
    answer = api.post(
        "/api/v1/recommend", {"dataset": dataset_id, "history": ["i1", "i2"], "k": 5}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    version = api.get(f"/api/v1/versions/{job['version']}").json()
    assert answer.json()["version"] == version["label"] and version["is_active"]

    keys = s3_storage.keys()
    assert any(k.endswith("/clicks.csv") for k in keys) and any(k.endswith("/events.tsv") for k in keys)
    assert f"jobs/{job_id}/attempt-1/worker.log" in keys
    assert any(k.startswith(f"artifacts/dataset-{dataset_id}/") and k.endswith("model.onnx") for k in keys)
    for host in ("web", "worker", "worker-gpu", "serving"):
        assert not (s3_storage.root / host / "media").exists(), host
    assert not any((s3_storage.root / "worker-gpu" / "scratch").iterdir())  # the attempt's files are gone
