"""upload → parse → train → export → activate → recommend with every role using the object store alone.

The web app, the parsing worker, the training worker and the serving process each run here with a
media folder, a scratch folder and an artifact cache of their own (``S3Storage.use``), against a
real S3 API over HTTP (moto's server). None of the media folders is ever created: everything one
role hands another goes through the bucket. test_object_store_workers.py runs the same with real
Celery worker processes.
"""

from __future__ import annotations

import io
import re

import pytest

from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_parse
from webapp.registry.models import ModelVersion
from webapp.registry.serving import serving_reset
from webapp.training.attempts import training_job_run
from webapp.training.models import TrainingJob
from webapp.training.worker_log import training_job_log_tail

pytestmark = pytest.mark.django_db

HOSTS = ("web", "worker", "gpu-worker", "serving")


def _upload(api, text: str, name: str = "clicks.csv") -> dict:
    body = {"file": io.BytesIO(text.encode())}
    body["file"].name = name
    response = api.post("/api/v1/datasets", body, format="multipart")
    assert response.status_code == 202, response.json()
    return response.json()


def _recommend(api, dataset_id: int):
    return api.post(
        "/api/v1/recommend", {"dataset": dataset_id, "history": ["i1", "i2"], "k": 5}, format="json"
    )


@pytest.fixture
def stored_version(s3_storage, settings, api, user, log_text, artifact_dir):
    """The session's exported model stored as the active version 1 of a dataset parsed from the
    bucket (no training: for the tests about what serving does with what it finds there)."""
    dataset = _upload(api, log_text)
    s3_storage.use(settings, "worker")
    parsed = dataset_parse(dataset_id=dataset["id"])
    s3_storage.use(settings, "web")
    folder = f"artifacts/dataset-{parsed.pk}/v1"
    for path in artifact_dir.iterdir():
        s3_storage.put(f"{folder}/{path.name}", path.read_bytes())
    version = ModelVersion.objects.create(
        owner=user,
        dataset=parsed,
        number=1,
        model_name="nextitnet",
        depth=1,
        method="none",
        artifact_dir=folder,
    )
    assert api.post(f"/api/v1/versions/{version.pk}/activate", {}, format="json").status_code == 200
    return version


@pytest.fixture
def served(s3_storage, settings, api, log_text, tiny_config):
    """A dataset uploaded, parsed, trained and activated, each by another role; the version."""
    dataset = _upload(api, log_text)
    s3_storage.use(settings, "worker")
    assert dataset_parse(dataset_id=dataset["id"]).status == Dataset.Status.READY
    s3_storage.use(settings, "web")
    created = api.post("/api/v1/jobs", {"dataset": dataset["id"], "config": tiny_config}, format="json")
    assert created.status_code == 202, created.json()
    s3_storage.use(settings, "gpu-worker")
    job = training_job_run(job_id=created.json()["id"], worker="gpu@elsewhere")
    assert job.status == TrainingJob.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(job=job)
    assert version.is_active
    return version


def _second_version(first: ModelVersion, artifact_dir: str) -> ModelVersion:
    """Version 2 of ``first``'s dataset, registered over the files at ``artifact_dir`` in the store."""
    return ModelVersion.objects.create(
        owner=first.owner,
        dataset=first.dataset,
        number=2,
        model_name=first.model_name,
        depth=first.depth,
        method=first.method,
        artifact_dir=artifact_dir,
    )


def test_every_role_works_through_the_bucket_alone(served, s3_storage, settings, api):
    version = served
    dataset, job = version.dataset, version.job
    s3_storage.use(settings, "serving")
    answer = _recommend(api, dataset.pk)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["version"] == version.label and len(answer.json()["items"]) == 5

    folder = dataset.file.name.rsplit("/", 1)[0]
    attempt = f"jobs/{job.pk}/attempt-1"
    artifact = f"artifacts/dataset-{dataset.pk}/job-{job.pk}-attempt-1"
    assert s3_storage.keys() == sorted(
        [
            f"{folder}/clicks.csv",
            f"{folder}/events.tsv",
            f"{attempt}/final.pt",
            f"{attempt}/stages/stage-0.pt",
            f"{attempt}/stages/stage-1.pt",
            f"{attempt}/worker.log",
            f"{artifact}/metadata.json",
            f"{artifact}/model.onnx",
        ]
    )
    assert (version.artifact_dir, version.checkpoint_file) == (artifact, f"{attempt}/final.pt")
    root = s3_storage.root
    for host in HOSTS:  # nothing on any role's disk but what it pulled into its own cache
        assert not (root / host / "media").exists(), host
        scratch = root / host / "scratch"
        assert not scratch.exists() or not any(scratch.iterdir()), host
    cached = list((root / "serving" / "artifact-cache" / f"dataset-{dataset.pk}").iterdir())
    assert [p.name.split("-")[0] for p in cached] == ["v1"]
    assert sorted(p.name for p in cached[0].iterdir()) == ["metadata.json", "model.onnx"]

    # The web app reads the worker's log and the version's files from the bucket as well.
    s3_storage.use(settings, "web")
    tail = training_job_log_tail(job=job)
    assert any("succeeded as" in line for line in tail)
    assert not any(re.search(r"/scratch/|/media/", line) for line in tail)
    card = api.get(f"/api/v1/versions/{version.pk}").json()
    assert card["label"] == version.label
    download = api.get(f"/api/v1/versions/{version.pk}/files/model.onnx")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == s3_storage.get(f"{artifact}/model.onnx")["Body"].read()
    assert not (root / "web" / "media").exists()


def test_a_damaged_object_is_refused_at_the_pull_and_the_old_version_keeps_serving(
    stored_version, s3_storage, settings, api
):
    first = stored_version
    s3_storage.use(settings, "serving")
    assert _recommend(api, first.dataset_id).json()["version"] == first.label

    # A second version whose model object was damaged in the store (same size: activation's size
    # check passes; only the checksum can tell).
    second_dir = f"artifacts/dataset-{first.dataset_id}/damaged"
    model = s3_storage.get(f"{first.artifact_dir}/model.onnx")["Body"].read()
    s3_storage.put(f"{second_dir}/model.onnx", model[:-16] + bytes(16))
    s3_storage.put(
        f"{second_dir}/metadata.json", s3_storage.get(f"{first.artifact_dir}/metadata.json")["Body"].read()
    )
    second = _second_version(first, second_dir)
    s3_storage.use(settings, "web")
    assert api.post(f"/api/v1/versions/{second.pk}/activate", {}, format="json").status_code == 200

    s3_storage.use(settings, "serving")
    kept = _recommend(api, first.dataset_id)  # this process holds the first version: it keeps answering
    assert kept.status_code == 200 and kept.json()["version"] == first.label
    cache = s3_storage.root / "serving" / "artifact-cache" / f"dataset-{first.dataset_id}"
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["v1"]  # nothing damaged kept, no leftovers

    serving_reset()  # a process that starts now has no version to fall back on
    refused = _recommend(api, first.dataset_id)
    assert refused.status_code == 503
    assert "model.onnx of" in refused.json()["message"]
    assert "does not match its metadata.json" in refused.json()["message"]


def test_an_incomplete_artifact_cannot_be_activated(stored_version, s3_storage, settings, api):
    first = stored_version
    s3_storage.put(
        f"artifacts/dataset-{first.dataset_id}/partial/metadata.json",
        s3_storage.get(f"{first.artifact_dir}/metadata.json")["Body"].read(),
    )
    partial = _second_version(first, f"artifacts/dataset-{first.dataset_id}/partial")
    response = api.post(f"/api/v1/versions/{partial.pk}/activate", {}, format="json")
    assert response.status_code == 409
    assert "model.onnx of" in response.json()["message"] and "is not in storage" in response.json()["message"]
    first.refresh_from_db()
    assert first.is_active


def test_a_resumed_attempt_on_another_host_continues_from_the_stored_stages(
    s3_storage, settings, api, log_text, tiny_config
):
    dataset = _upload(api, log_text)
    s3_storage.use(settings, "worker")
    dataset_parse(dataset_id=dataset["id"])
    s3_storage.use(settings, "web")
    job_id = api.post(
        "/api/v1/jobs", {"dataset": dataset["id"], "config": tiny_config}, format="json"
    ).json()["id"]
    # The first attempt ran on a host that is gone now; say it died after its first stage: the
    # bucket holds that stage's checkpoint and nothing after it.
    s3_storage.use(settings, "gpu-a")
    assert training_job_run(job_id=job_id).status == TrainingJob.Status.SUCCEEDED
    stage_0 = s3_storage.get(f"jobs/{job_id}/attempt-1/stages/stage-0.pt")["Body"].read()
    s3_storage.server.client().delete_object(
        Bucket=s3_storage.bucket, Key=f"studio/jobs/{job_id}/attempt-1/stages/stage-1.pt"
    )
    ModelVersion.objects.filter(job_id=job_id).delete()
    TrainingJob.objects.filter(pk=job_id).update(status=TrainingJob.Status.PENDING)

    s3_storage.use(settings, "gpu-b")
    second = training_job_run(job_id=job_id)
    assert second.status == TrainingJob.Status.SUCCEEDED, second.error
    assert second.attempts == 2
    # Stage 0 was carried over (copied inside the store), stage 1 trained again by attempt 2.
    assert s3_storage.get(f"jobs/{job_id}/attempt-2/stages/stage-0.pt")["Body"].read() == stage_0
    assert "attempt-2/stages/stage-1.pt" in " ".join(s3_storage.keys())
    assert [p["blocks"] for p in second.stages] == [1, 2]
