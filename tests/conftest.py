"""Shared fixtures: where the real data lives, and small deterministic logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    return Path(os.environ.get("STACKREC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public logs beside the checkout (../shared/data)."""
    path = _shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data folder {path} is missing under CI")
        pytest.skip(f"real data folder {path} not found (set STACKREC_SHARED_DATA)")
    return path


# ./studio test runs the suite in two halves: on the embedded defaults (SQLite, the embedded
# broker) and on the production services (PostgreSQL, Redis). An end-to-end test of one set-up runs
# in its half only; where everything runs once on SQLite (no PostgreSQL here), every test runs.
PHASE_MARKERS = {"embedded": "services", "services": "embedded"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    phase = os.environ.get("STUDIO_TEST_PHASE")
    other = PHASE_MARKERS.get(phase or "")
    if other and item.get_closest_marker(other) is not None:
        where = "PostgreSQL and Redis" if other == "services" else "SQLite and the embedded broker"
        pytest.skip(f"runs in the half of ./studio test on {where}")
