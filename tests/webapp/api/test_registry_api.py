"""Versions, activation and rollback, and POST /api/v1/recommend through serving."""

from __future__ import annotations

import shutil

import pytest

from tests.webapp.conftest import client_for
from webapp.registry.models import ModelVersion

pytestmark = pytest.mark.django_db


def _recommend(api, **body):
    return api.post("/api/v1/recommend", body, format="json")


def test_recommend_from_the_active_version(api, ready_dataset, make_version):
    version = make_version(ready_dataset, active=True)
    response = _recommend(api, dataset=ready_dataset.pk, history=["i1", "i2", "nope"], k=5)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == version.label == f"dataset-{ready_dataset.pk}-v1"
    assert len(body["items"]) == 5 and len(body["scores"]) == 5
    assert body["scores"] == sorted(body["scores"], reverse=True)
    assert body["dropped"] == ["nope"] and body["fallback"] is False
    assert not {"i1", "i2"} & set(body["items"])  # exclude_seen by default
    seen = _recommend(api, dataset=ready_dataset.pk, history=["i1"], k=10, exclude_seen=False).json()
    assert len(seen["items"]) == 10


def test_unknown_history_gets_the_popularity_fallback(api, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    body = _recommend(api, dataset=ready_dataset.pk, history=["x", "y"]).json()
    assert body["fallback"] is True and body["dropped"] == ["x", "y"] and len(body["items"]) == 10


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"history": ["i1"]}, "dataset is required"),
        ({"dataset": "one", "history": ["i1"]}, "dataset must be a dataset id"),
        ({"dataset": 1}, "history is required"),
        ({"dataset": 1, "history": "i1"}, "history must be a list"),
        ({"dataset": 1, "history": [["i1"]]}, "history[0] must be an item id"),
        ({"dataset": 1, "history": ["i1"], "k": 0}, "k must be between 1 and 10"),
        ({"dataset": 1, "history": ["i1"], "k": "ten"}, "k must be a whole number"),
        ({"dataset": 1, "history": ["i1"], "exclude_seen": "yes"}, "exclude_seen must be true or false"),
        ({"dataset": 1, "history": ["i1"], "kk": 3}, "unknown key(s) kk"),
    ],
)
def test_bad_requests_are_400_with_the_reason(api, ready_dataset, make_version, body, words):
    make_version(ready_dataset, active=True)
    body = {k: (ready_dataset.pk if k == "dataset" and v == 1 else v) for k, v in body.items()}
    response = _recommend(api, **body)
    assert response.status_code == 400, response.json()
    assert words in response.json()["message"]


def test_body_must_be_a_json_object(api):
    response = api.post("/api/v1/recommend", [1, 2], format="json")
    assert response.status_code == 400 and "JSON object" in response.json()["message"]
    broken = api.post("/api/v1/recommend", "{not json", content_type="application/json")
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["message"]


def test_no_active_version_is_503_with_a_reason(api, ready_dataset, make_version):
    response = _recommend(api, dataset=ready_dataset.pk, history=["i1"])
    assert response.status_code == 503
    assert "no active model version" in response.json()["message"]
    make_version(ready_dataset)  # registered, not active
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).status_code == 503
    assert _recommend(api, dataset=ready_dataset.pk + 100, history=["i1"]).status_code == 404


def test_activation_hot_swaps_and_rollback_returns(api, ready_dataset, make_version):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).json()["version"] == first.label
    response = api.post(f"/api/v1/versions/{second.pk}/activate")
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).json()["version"] == second.label
    assert ModelVersion.objects.filter(dataset=ready_dataset, is_active=True).count() == 1
    rollback = api.post(f"/api/v1/datasets/{ready_dataset.pk}/rollback")
    assert rollback.status_code == 200 and rollback.json()["id"] == first.pk
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).json()["version"] == first.label


def test_a_damaged_artifact_cannot_be_activated(api, ready_dataset, make_version):
    active = make_version(ready_dataset, active=True)
    broken = make_version(ready_dataset)
    (broken.artifact_path / "metadata.json").write_text("{")
    response = api.post(f"/api/v1/versions/{broken.pk}/activate")
    assert response.status_code == 409 and "cannot be served" in response.json()["message"]
    active.refresh_from_db()
    assert active.is_active


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(api, ready_dataset, make_version):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).json()["version"] == first.label
    api.post(f"/api/v1/versions/{second.pk}/activate")
    (second.artifact_path / "model.onnx").write_bytes(b"not onnx")  # damaged after activation
    assert _recommend(api, dataset=ready_dataset.pk, history=["i1"]).json()["version"] == first.label


def test_rollback_without_history_is_a_conflict(api, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    response = api.post(f"/api/v1/datasets/{ready_dataset.pk}/rollback")
    assert response.status_code == 409 and "no previously active version" in response.json()["message"]


def test_versions_list_and_filter(api, ready_dataset, make_version, other_user):
    make_version(ready_dataset, active=True)
    make_version(ready_dataset)
    listing = api.get(f"/api/v1/versions?dataset={ready_dataset.pk}").json()
    assert listing["count"] == 2 and listing["results"][0]["number"] == 2
    assert client_for(other_user).get("/api/v1/versions").json()["count"] == 0


def test_missing_artifact_answers_503(api, ready_dataset, make_version):
    version = make_version(ready_dataset, active=True)
    shutil.rmtree(version.artifact_path)
    response = _recommend(api, dataset=ready_dataset.pk, history=["i1"])
    assert response.status_code == 503 and "cannot be loaded" in response.json()["message"]
