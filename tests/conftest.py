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
