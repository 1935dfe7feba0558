"""One rule for the API, the dashboard and the admin, swept over every route and every kind of account.

Users read and act on their own objects. Another user's object needs the model's Django permission:
view (or change) to read it, change to act on it. Superusers have all; staff status alone grants
nothing. An object the account may not read is "not found"; one it may read but not act on is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.webapp.conftest import client_for, synthetic_log
from webapp.registry.models import ModelVersion
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_create

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "owner", "other", "staff", "staff_view", "superuser")
# Who may use a route, by what the route does to alice's objects.
ALLOWED = {
    "mine": set(ROLES) - {"anonymous"},  # a list (each sees what they may) or a new object of one's own
    "read": {"owner", "staff_view", "superuser"},
    "act": {"owner", "superuser"},
}
VIEW_PERMISSIONS = ("view_dataset", "view_trainingjob", "view_modelversion")


@dataclass(frozen=True)
class Route:
    kind: str  # mine | read | act
    method: str
    url: str
    body: dict | None = None
    multipart: bool = False


@pytest.fixture
def accounts(user, other_user):
    users = get_user_model().objects
    staff = users.create_user("staff-none", password="x", is_staff=True)
    staff_view = users.create_user("staff-view", password="x", is_staff=True)
    staff_view.user_permissions.set(Permission.objects.filter(codename__in=VIEW_PERMISSIONS))
    root = users.create_superuser("root", password="x")
    return {
        "anonymous": None,
        "owner": user,
        "other": other_user,
        "staff": staff,
        "staff_view": staff_view,
        "superuser": root,
    }


@pytest.fixture
def alices(ready_dataset, tiny_config, make_version, django_capture_on_commit_callbacks):
    """Alice's dataset with a job and two versions (the second serving, so a rollback has a target)."""
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    older = make_version(ready_dataset, active=True)
    newer = make_version(ready_dataset, active=True)
    return {"dataset": ready_dataset, "job": job, "older": older, "newer": newer}


def api_routes(o: dict, config: dict) -> list[Route]:
    d, j, v, older = o["dataset"].pk, o["job"].pk, o["newer"].pk, o["older"].pk
    return [
        Route("mine", "get", "/api/v1/datasets"),
        Route("mine", "post", "/api/v1/datasets", {"file": "log"}, multipart=True),
        Route("read", "get", f"/api/v1/datasets/{d}"),
        Route("act", "post", f"/api/v1/datasets/{d}/parse", {}),
        Route("act", "post", f"/api/v1/datasets/{d}/increments", {"file": "log"}, multipart=True),
        Route("act", "post", f"/api/v1/datasets/{d}/items", {"file": "log"}, multipart=True),
        Route("mine", "get", "/api/v1/jobs"),
        Route("read", "get", f"/api/v1/jobs/{j}"),
        Route("read", "get", f"/api/v1/jobs/{j}/curve"),
        Route("read", "get", f"/api/v1/jobs/compare?first={j}&second={j}"),
        Route("act", "post", "/api/v1/jobs", {"dataset": d, "config": config}),
        Route("act", "post", "/api/v1/jobs/retrain", {"dataset": d}),
        Route("act", "post", "/api/v1/jobs/retrain", {"version": v}),
        Route("mine", "get", "/api/v1/versions"),
        Route("read", "get", f"/api/v1/versions/{v}"),
        Route("act", "get", f"/api/v1/versions/{v}/files/model.onnx"),
        Route("read", "post", "/api/v1/recommend", {"dataset": d, "history": ["i1", "i2"]}),
        Route("act", "post", f"/api/v1/versions/{older}/activate", {}),
        Route("act", "post", f"/api/v1/datasets/{d}/rollback", {}),
        Route("act", "post", f"/api/v1/jobs/{j}/cancel", {}),
        Route("act", "post", f"/api/v1/jobs/{j}/resume", {}),
    ]


def dashboard_routes(o: dict) -> list[Route]:
    d, j, v, older = o["dataset"].pk, o["job"].pk, o["newer"].pk, o["older"].pk
    return [
        Route("mine", "get", "/"),
        Route("mine", "get", "/datasets/"),
        Route("mine", "get", "/jobs/"),
        Route("mine", "get", "/versions/"),
        Route("read", "get", f"/datasets/{d}/"),
        Route("read", "get", f"/jobs/table?dataset={d}"),
        Route("read", "get", f"/jobs/{j}/"),
        Route("read", "get", f"/jobs/{j}/summary"),
        Route("act", "get", f"/jobs/{j}/log"),  # the worker's log is the owner's: others who read get 403
        Route("read", "get", f"/compare/?a={j}&b={j}"),
        Route("read", "get", f"/versions/{older}/activate/confirm"),
        Route("read", "get", f"/try/?dataset={d}"),
        Route("read", "get", f"/versions/{v}/"),
        Route("act", "get", f"/versions/{v}/files/model.onnx"),
        Route("act", "post", f"/datasets/{d}/items", {"file": "log"}, multipart=True),
        Route("act", "post", f"/datasets/{d}/parse", {}),
        Route("act", "post", "/datasets/upload", {"file": "log", "parent": d}, multipart=True),
        Route("act", "post", "/jobs/create", {"dataset": d}),
        Route("act", "post", f"/datasets/{d}/retrain", {}),
        Route("act", "post", f"/versions/{v}/retrain", {}),
        Route("act", "post", f"/versions/{older}/activate", {}),
        Route("act", "post", f"/datasets/{d}/rollback", {}),
        Route("act", "post", f"/jobs/{j}/cancel", {}),
    ]


def _body(route: Route) -> dict | None:
    if not route.multipart:
        return route.body
    return {**route.body, "file": SimpleUploadedFile("more.csv", synthetic_log(users=10, seed=3).encode())}


def api_outcome(client, route: Route) -> str:
    """allowed | hidden (404) | forbidden (403) | anonymous (401), from the API's answer."""
    if route.multipart:
        response = getattr(client, route.method)(route.url, _body(route), format="multipart")
    else:
        response = getattr(client, route.method)(route.url, route.body, format="json")
    code = response.status_code
    if code in (401, 403, 404):
        body = response.json()
        assert set(body) == {"message", "extra"}, (route.url, body)
        if code == 403:
            assert "permission" in body["message"], body  # it names what is missing
    return {401: "anonymous", 403: "forbidden", 404: "hidden"}.get(code, "allowed")


def dashboard_outcome(client: Client, route: Route) -> str:
    """The same classes from the dashboard: a 404 page, the login redirect, or an action's message."""
    response = getattr(client, route.method)(route.url, _body(route) or {})
    if response.status_code == 404:
        return "hidden"
    if response.status_code == 302 and response.url.startswith("/login/"):
        return "anonymous"
    if response.status_code == 403:  # a page or file the account may see exists but is not theirs to take
        return "forbidden"
    errors = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    if any("not found" in e for e in errors):
        return "hidden"
    if any("permission" in e for e in errors):
        return "forbidden"
    assert response.status_code in (200, 302), (route.url, response.status_code)
    return "allowed"


def expected_outcome(role: str, kind: str) -> str:
    if role in ALLOWED[kind]:
        return "allowed"
    if role == "anonymous":
        return "anonymous"
    return "forbidden" if role in ALLOWED["read"] else "hidden"  # sees it, may not act


@pytest.mark.parametrize("role", ROLES)
def test_every_api_route_allows_exactly_what_the_rule_says(role, accounts, alices, tiny_config):
    client = client_for(accounts[role])
    seen = {(r.method, r.url, str(r.body)): api_outcome(client, r) for r in api_routes(alices, tiny_config)}
    wanted = {
        (r.method, r.url, str(r.body)): expected_outcome(role, r.kind)
        for r in api_routes(alices, tiny_config)
    }
    assert seen == wanted


@pytest.mark.parametrize("role", ROLES)
def test_every_dashboard_route_allows_exactly_what_the_rule_says(role, accounts, alices, tiny_config):
    client = Client()
    if accounts[role] is not None:
        client.force_login(accounts[role])
    routes = dashboard_routes(alices)
    seen = {(r.method, r.url): dashboard_outcome(client, r) for r in routes}
    assert seen == {(r.method, r.url): expected_outcome(role, r.kind) for r in routes}


@pytest.mark.parametrize(
    ("role", "visible"),
    [("owner", 1), ("other", 0), ("staff", 0), ("staff_view", 1), ("superuser", 1)],
)
def test_lists_show_only_what_the_account_may_read(role, visible, accounts, alices):
    client = client_for(accounts[role])
    assert client.get("/api/v1/datasets").json()["count"] == visible
    assert client.get("/api/v1/jobs").json()["count"] == visible
    assert client.get("/api/v1/versions").json()["count"] == 2 * visible


def test_staff_without_permissions_change_nothing_of_anothers(accounts, alices):
    """The reported case: a staff account the admin shows "no permission" had re-parsed, trained,
    retrained and activated on alice's dataset. Now every attempt is "not found" and nothing changes."""
    client = client_for(accounts["staff"])
    d, older = alices["dataset"].pk, alices["older"].pk
    for url, body in (
        (f"/api/v1/datasets/{d}/parse", {}),
        ("/api/v1/jobs", {"dataset": d}),
        ("/api/v1/jobs/retrain", {"dataset": d}),
        (f"/api/v1/versions/{older}/activate", {}),
        ("/api/v1/recommend", {"dataset": d, "history": ["i1"]}),
    ):
        assert client.post(url, body, format="json").status_code == 404, url
    assert TrainingJob.objects.count() == 1
    assert ModelVersion.objects.get(is_active=True).pk == alices["newer"].pk


def test_work_queued_for_another_belongs_to_the_dataset_owner(accounts, alices, tiny_config):
    """A superuser who trains on alice's dataset makes alice's job: it shows in her lists, and its
    version will answer her recommend calls and show in her version list."""
    response = client_for(accounts["superuser"]).post(
        "/api/v1/jobs", {"dataset": alices["dataset"].pk, "config": tiny_config}, format="json"
    )
    assert response.status_code == 202
    assert TrainingJob.objects.get(pk=response.json()["id"]).owner == accounts["owner"]
    assert client_for(accounts["owner"]).get("/api/v1/jobs").json()["count"] == 2


def test_anonymous_requests_get_a_json_401(alices):
    response = client_for(None).get(f"/api/v1/datasets/{alices['dataset'].pk}")
    assert response.status_code == 401
    assert "credentials" in response.json()["message"]


def test_a_bad_token_is_refused(alices):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/v1/datasets").status_code == 401


def test_session_login_works_for_the_dashboard_and_the_api(alices, client):
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


# -- the admin -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status", "actions"),
    [("staff", 403, None), ("staff_view", 200, False), ("superuser", 200, True)],
)
def test_the_admin_shows_and_offers_what_the_permissions_allow(role, status, actions, accounts, alices):
    client = Client()
    client.force_login(accounts[role])
    for url, action in (
        ("/admin/datasets/dataset/", "retrain"),
        ("/admin/training/trainingjob/", "cancel"),
        ("/admin/registry/modelversion/", "activate"),
    ):
        response = client.get(url)
        assert response.status_code == status, (role, url)
        if actions is not None:
            assert (f'value="{action}"' in response.content.decode()) is actions, (role, url)


def test_a_view_only_account_cannot_run_an_admin_action(accounts, alices):
    client = Client()
    client.force_login(accounts["staff_view"])
    client.post(
        "/admin/registry/modelversion/",
        {"action": "activate", "_selected_action": [alices["older"].pk]},
    )
    assert ModelVersion.objects.get(is_active=True).pk == alices["newer"].pk


def test_a_registered_version_cannot_be_edited_in_the_admin(accounts, alices):
    client = Client()
    client.force_login(accounts["superuser"])
    version = alices["newer"]
    client.post(
        f"/admin/registry/modelversion/{version.pk}/change/",
        {"artifact_dir": "elsewhere", "metrics": "{}", "number": 99},
    )
    version.refresh_from_db()
    assert version.artifact_dir.endswith(f"v{version.number}") and version.number == 2
