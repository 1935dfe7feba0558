"""POST /api/v1/recommend answers from what its process read at most SERVING_CACHE_S ago: the token's
user and the dataset's active version. What changes in this process counts on the next request; what
changes elsewhere (another gunicorn worker, a training worker, the admin) within the bound.

"Elsewhere" is simulated by writing the database without the ORM's signals (bulk updates, raw SQL),
which is all another process's change looks like from this one.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.authtoken.models import Token

from tests.webapp.conftest import client_for
from webapp.api.memo import ProcessMemo
from webapp.registry.models import ModelVersion
from webapp.registry.services import model_version_activate

pytestmark = pytest.mark.django_db

BOUND_S = 0.3  # a short SERVING_CACHE_S, so waiting it out keeps the tests fast


@pytest.fixture
def bound(settings):
    settings.SERVING_CACHE_S = BOUND_S
    return settings


def _version(api, dataset) -> str:
    response = api.post("/api/v1/recommend", {"dataset": dataset.pk, "history": ["i1"]}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["version"]


def _activate_elsewhere(version: ModelVersion) -> None:
    """What another process's activation leaves in the database (no signal reaches this process)."""
    ModelVersion.objects.filter(dataset_id=version.dataset_id, is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)


def test_a_warm_call_reads_nothing_from_the_database(
    api, ready_dataset, make_version, django_assert_num_queries
):
    version = make_version(ready_dataset, active=True)
    assert _version(api, ready_dataset) == version.label
    with django_assert_num_queries(0):
        assert _version(api, ready_dataset) == version.label


def test_an_activation_in_this_process_answers_on_the_next_request(api, ready_dataset, make_version):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    assert _version(api, ready_dataset) == first.label
    model_version_activate(version=second)  # as a training worker's promotion or the dashboard does
    assert _version(api, ready_dataset) == second.label


def test_an_activation_elsewhere_reaches_this_process_within_the_bound(
    bound, api, ready_dataset, make_version
):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    assert _version(api, ready_dataset) == first.label
    _activate_elsewhere(second)
    deadline = time.monotonic() + BOUND_S  # the memo's entry was read before the change
    answers = []
    while time.monotonic() < deadline + 0.05:
        answers.append(_version(api, ready_dataset))
    switched = answers.index(second.label)
    assert set(answers[:switched]) <= {first.label}
    assert set(answers[switched:]) == {second.label}  # for good: no process memory brings v1 back


def test_with_the_bound_at_zero_every_request_reads_the_database(settings, api, ready_dataset, make_version):
    settings.SERVING_CACHE_S = 0
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    assert _version(api, ready_dataset) == first.label
    _activate_elsewhere(second)
    assert _version(api, ready_dataset) == second.label


def test_a_token_deleted_in_this_process_stops_at_once(api, user, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    _version(api, ready_dataset)
    Token.objects.filter(user=user).delete()
    response = api.post("/api/v1/recommend", {"dataset": ready_dataset.pk, "history": ["i1"]}, format="json")
    assert response.status_code == 401 and "Invalid token" in response.json()["message"]


def test_a_user_deactivated_in_this_process_stops_at_once(api, user, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    _version(api, ready_dataset)
    user.is_active = False
    user.save()
    response = api.post("/api/v1/recommend", {"dataset": ready_dataset.pk, "history": ["i1"]}, format="json")
    assert response.status_code == 401


def test_a_token_deleted_elsewhere_stops_within_the_bound(bound, api, user, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    _version(api, ready_dataset)
    with connection.cursor() as cursor:  # no signal: as the admin on another host deletes it
        cursor.execute("DELETE FROM authtoken_token WHERE user_id = %s", [user.pk])
    time.sleep(BOUND_S)
    response = api.post("/api/v1/recommend", {"dataset": ready_dataset.pk, "history": ["i1"]}, format="json")
    assert response.status_code == 401


def test_a_wrong_token_is_refused_every_time(api, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    _version(api, ready_dataset)
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    for _ in range(2):
        response = client.post(
            "/api/v1/recommend", {"dataset": ready_dataset.pk, "history": ["i1"]}, format="json"
        )
        assert response.status_code == 401


def test_what_the_owner_warmed_answers_nobody_else(api, ready_dataset, make_version, other_user):
    """The owner's call leaves the active version in memory; another user still gets 404, and one
    with the view permission an answer (their permissions read from the database)."""
    version = make_version(ready_dataset, active=True)
    assert _version(api, ready_dataset) == version.label
    body = {"dataset": ready_dataset.pk, "history": ["i1"]}
    assert client_for(other_user).post("/api/v1/recommend", body, format="json").status_code == 404
    other_user.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    other_user.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    assert _version(client_for(other_user), ready_dataset) == version.label


def test_the_memo_keeps_nothing_read_before_a_change():
    """A read that began before a change (it may have seen the old row) is not stored."""
    memo = ProcessMemo(max_age_s=lambda: 10.0, max_entries=2)
    mark = memo.begin()
    memo.forget(1)  # the change lands while the read is in flight
    memo.put(1, "old", mark=mark)
    assert memo.get(1) is None
    memo.put(1, "new", mark=memo.begin())
    assert memo.get(1) == "new"
    memo.put(2, "b", mark=memo.begin())
    memo.put(3, "c", mark=memo.begin())  # full: starts over rather than grow
    assert len(memo) == 1 and memo.get(3) == "c"
