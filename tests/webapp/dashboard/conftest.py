"""Fixtures of the dashboard's page tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def browser(client, user):
    """Django's test client logged in as ``user`` (alice), as a person at the dashboard is."""
    client.login(username="alice", password="alice-password")
    return client
