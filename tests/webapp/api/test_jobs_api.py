"""Training job endpoints: create (validated config), list, detail, cancel, resume."""

from __future__ import annotations

import pytest

from webapp.training.models import TrainingJob
from webapp.training.services import training_job_claim

pytestmark = pytest.mark.django_db


def _create(api, capture, dataset, config):
    with capture() as callbacks:
        response = api.post("/api/v1/jobs", {"dataset": dataset.pk, "config": config}, format="json")
    return response, callbacks


def test_create_list_detail(api, ready_dataset, tiny_config, django_capture_on_commit_callbacks):
    response, callbacks = _create(api, django_capture_on_commit_callbacks, ready_dataset, tiny_config)
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["status"] == "PENDING" and job["config"]["model"] == "nextitnet" and job["version"] is None
    assert len(callbacks) == 1
    assert api.get("/api/v1/jobs").json()["count"] == 1
    assert api.get(f"/api/v1/jobs?dataset={ready_dataset.pk}").json()["count"] == 1
    assert api.get(f"/api/v1/jobs?dataset={ready_dataset.pk + 1}").json()["count"] == 0
    assert api.get(f"/api/v1/jobs/{job['id']}").json()["stale"] is False
    bad = api.get("/api/v1/jobs?dataset=abc")
    assert bad.status_code == 400 and "whole number" in bad.json()["message"]


def test_unknown_config_keys_are_refused_with_the_valid_ones(
    api, ready_dataset, django_capture_on_commit_callbacks
):
    response, callbacks = _create(
        api, django_capture_on_commit_callbacks, ready_dataset, {"train": {"epoch": 3}}
    )
    assert response.status_code == 400
    body = response.json()
    assert "unknown key(s) epoch" in body["message"] and "epochs" in body["message"]
    assert body["extra"] == {"field": "config"}
    assert callbacks == [] and not TrainingJob.objects.exists()


def test_a_bad_value_names_its_key(api, ready_dataset, django_capture_on_commit_callbacks):
    response, _ = _create(
        api, django_capture_on_commit_callbacks, ready_dataset, {"train": {"epochs": "many"}}
    )
    body = response.json()
    assert response.status_code == 400
    assert body == {
        "message": "train.epochs must be a whole number between 1 and 1000, got 'many'",
        "extra": {"field": "config", "key": "train.epochs"},
    }


def test_missing_dataset_is_a_field_error(api):
    response = api.post("/api/v1/jobs", {"config": {}}, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == "dataset: This field is required."
    assert "dataset" in response.json()["extra"]["fields"]


def test_cancel_and_conflicts(api, ready_dataset, tiny_config, django_capture_on_commit_callbacks):
    job = _create(api, django_capture_on_commit_callbacks, ready_dataset, tiny_config)[0].json()
    training_job_claim(job_id=job["id"], worker="w")
    response = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "CANCEL_REQUESTED"
    resume = api.post(f"/api/v1/jobs/{job['id']}/resume")
    assert resume.status_code == 409 and "cancel it instead" in resume.json()["message"]
    TrainingJob.objects.filter(pk=job["id"]).update(status="CANCELLED")
    again = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already finished" in again.json()["message"]
