"""Failed logins are limited per account and per address on every login path; the API has rate limits;
passwords must pass Django's validators."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from tests.webapp.conftest import client_for

pytestmark = pytest.mark.django_db

LIMIT = 5  # the failure that reaches it is already answered with the lockout


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def _token(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/api/v1/auth/token", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_the_token_endpoint_locks_an_account_after_the_limit(axes_on, user):
    client = client_for(None)
    for _ in range(LIMIT - 1):
        assert _token(client, "alice", "wrong").status_code == 400
    assert _token(client, "alice", "wrong").status_code == 429  # the failure that reaches the limit
    locked = _token(client, "alice", "alice-password")  # the right password, too late
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.json()["message"]
    assert locked["Retry-After"] == "900"
    # per account: from another address, alice is still locked
    assert _token(client, "alice", "alice-password", address="10.9.9.9").status_code == 429


def test_failures_from_one_address_lock_that_address_for_every_account(axes_on, user, other_user):
    client = client_for(None)
    for name in ("x1", "x2", "x3", "x4", "x5"):
        _token(client, name, "guess", address="10.0.0.7")
    assert _token(client, "bob", "bob-password", address="10.0.0.7").status_code == 429
    assert _token(client, "bob", "bob-password", address="10.0.0.8").status_code == 200


def test_the_lock_ends_after_the_cool_off(axes_on, user):
    axes_on.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = client_for(None)
    for _ in range(LIMIT):
        _token(client, "alice", "wrong")
    assert _token(client, "alice", "alice-password").status_code == 429
    time.sleep(1.2)
    assert _token(client, "alice", "alice-password").status_code == 200


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_the_login_pages_lock_out_with_a_clear_page(axes_on, url, user):
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True)  # the admin logs in staff only
    client = Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(LIMIT - 1):
        response = client.post(url, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(url, {"username": "alice", "password": "wrong"}).status_code == 429
    locked = client.post(url, {"username": "alice", "password": "alice-password"})
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "try again in 15 minutes" in page
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_clears_the_count(axes_on, user):
    client = client_for(None)
    for _ in range(LIMIT - 1):
        _token(client, "alice", "wrong")
    assert _token(client, "alice", "alice-password").status_code == 200
    for _ in range(LIMIT - 1):
        _token(client, "alice", "wrong")
    assert _token(client, "alice", "alice-password").status_code == 200


def test_the_api_rate_limit_answers_429_with_the_wait(settings, user):
    settings.STUDIO_API_RATES = {"user": "3/minute", "recommend": "", "anon": ""}
    cache.clear()
    client = client_for(user)
    assert [client.get("/api/v1/datasets").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = client.get("/api/v1/jobs")
    assert refused.status_code == 429 and set(refused.json()) == {"message", "extra"}
    assert "throttled" in refused.json()["message"] and int(refused["Retry-After"]) > 0


def test_a_cache_out_of_reach_does_not_refuse_requests(settings, user):
    """With Redis down the rate limit cannot count; requests go through (an outage refuses nothing)."""
    settings.STUDIO_API_RATES = {"user": "2/minute", "recommend": "", "anon": ""}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    client = client_for(user)
    assert [client.get("/api/v1/datasets").status_code for _ in range(4)] == [200] * 4


def test_recommend_has_its_own_budget(settings, user):
    settings.STUDIO_API_RATES = {"user": "2/minute", "recommend": "5/minute", "anon": ""}
    cache.clear()
    client = client_for(user)
    body = {"dataset": 999, "history": ["a"]}
    codes = [client.post("/api/v1/recommend", body, format="json").status_code for _ in range(6)]
    assert codes == [404] * 5 + [429]


def test_weak_passwords_are_refused_where_passwords_are_set(db):
    root = get_user_model().objects.create_superuser("root", password="a-long-admin-passphrase")
    client = Client()
    client.force_login(root)
    for weak in ("password123", "12345678901", "short"):
        response = client.post(
            "/admin/auth/user/add/",
            {"username": "newbie", "password1": weak, "password2": weak, "usable_password": "true"},
        )
        assert response.status_code == 200, weak  # the form again, with the validator's reason
        assert not get_user_model().objects.filter(username="newbie").exists()
    ok = "correct-horse-battery-staple"
    client.post(
        "/admin/auth/user/add/",
        {"username": "newbie", "password1": ok, "password2": ok, "usable_password": "true"},
    )
    assert get_user_model().objects.filter(username="newbie").exists()
