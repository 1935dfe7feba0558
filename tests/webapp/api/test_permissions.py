"""Every endpoint refuses anonymous requests, and another user's objects are "not found"; staff see all."""

from __future__ import annotations

import pytest

from tests.webapp.conftest import client_for
from webapp.training.services import training_job_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(ready_dataset, tiny_config, make_version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    version = make_version(ready_dataset, active=True)
    return {"dataset": ready_dataset, "job": job, "version": version}


def endpoints(o) -> list[tuple[str, str, dict]]:
    d, j, v = o["dataset"].pk, o["job"].pk, o["version"].pk
    return [
        ("get", "/api/v1/datasets", {}),
        ("post", "/api/v1/datasets", {}),
        ("get", f"/api/v1/datasets/{d}", {}),
        ("post", f"/api/v1/datasets/{d}/parse", {}),
        ("post", f"/api/v1/datasets/{d}/increments", {}),
        ("post", f"/api/v1/datasets/{d}/rollback", {}),
        ("get", "/api/v1/jobs", {}),
        ("post", "/api/v1/jobs", {"dataset": d}),
        ("get", f"/api/v1/jobs/{j}", {}),
        ("post", f"/api/v1/jobs/{j}/cancel", {}),
        ("post", f"/api/v1/jobs/{j}/resume", {}),
        ("get", "/api/v1/versions", {}),
        ("get", f"/api/v1/versions/{v}", {}),
        ("post", f"/api/v1/versions/{v}/activate", {}),
        ("post", "/api/v1/recommend", {"dataset": d, "history": ["i1"]}),
    ]


def test_anonymous_requests_are_refused_everywhere(objects):
    client = client_for(None)
    for method, url, body in endpoints(objects):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 401, (method, url, response.status_code)
        assert set(response.json()) == {"message", "extra"}
        assert "credentials" in response.json()["message"]


def test_a_bad_token_is_refused(objects):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/v1/datasets").status_code == 401


def test_another_users_objects_are_not_found(objects, other_user):
    client = client_for(other_user)
    for method, url, body in endpoints(objects):
        response = getattr(client, method)(url, body, format="json")
        if url in ("/api/v1/datasets", "/api/v1/jobs", "/api/v1/versions") and method == "get":
            assert response.status_code == 200 and response.json()["results"] == [], url
        elif url == "/api/v1/datasets" and method == "post":
            assert response.status_code == 415  # JSON where an upload belongs: nothing of alice's is touched
        else:
            assert response.status_code == 404, (method, url, response.status_code, response.json())
            assert "not found" in response.json()["message"]
    objects["job"].refresh_from_db()
    assert objects["job"].status == "PENDING"  # bob's cancel did nothing


def test_staff_see_everyones_objects(objects, staff_user):
    client = client_for(staff_user)
    for url in ("/api/v1/datasets", "/api/v1/jobs", "/api/v1/versions"):
        assert client.get(url).json()["count"] == 1, url
    assert client.get(f"/api/v1/datasets/{objects['dataset'].pk}").status_code == 200


def test_session_login_works_for_the_dashboard_and_the_api(objects, client, user):
    assert client.get("/").status_code == 302  # to the login page
    assert client.login(username="alice", password="alice-password")
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/datasets").json()["count"] == 1


def test_token_endpoint_returns_a_token(user):
    client = client_for(None)
    response = client.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password"})
    assert response.status_code == 200 and response.json()["token"]
    bad = client.post("/api/v1/auth/token", {"username": "alice", "password": "wrong"})
    assert bad.status_code == 400 and set(bad.json()) == {"message", "extra"}
