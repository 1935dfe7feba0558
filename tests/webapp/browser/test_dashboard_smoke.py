"""The dashboard in a real browser: log in through the form, upload a slice of ml-100k, see it parsed.

Screenshots land in var/screenshots/ (or $STUDIO_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pytest

from tests.webapp.browser.conftest import expect
from webapp.datasets.models import Dataset

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # kombu's SQLAlchemy transport (the embedded broker) on SQLAlchemy 2.1
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

READY = re.compile(r"\bready\b", re.IGNORECASE)


def _reload_until(page: Page, locator: Locator, pattern: re.Pattern, timeout: float = 60) -> None:
    """Reload until ``locator`` shows ``pattern`` (the list page need not refresh itself)."""
    deadline = time.monotonic() + timeout
    while not (locator.count() and pattern.search(locator.first.inner_text())):
        if time.monotonic() > deadline:
            expect(locator.first).to_contain_text(pattern, timeout=1)  # fails with what the page shows
        time.sleep(0.5)
        page.reload()


def test_anonymous_visit_redirects_to_login(page, screenshot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.locator("input[name=password]")).to_be_visible()
    screenshot("login")


def test_login_upload_slice_until_ready(studio_server, user_page, user, real_slice, screenshot):
    page = user_page
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("body")).to_contain_text(user.get_username())
    screenshot("overview")

    page.goto("/datasets/")
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(real_slice.first)
    form.get_by_role("button", name="upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    dataset = Dataset.objects.get(owner=user, name=real_slice.first.name)

    page.goto("/datasets/")
    row = page.locator("tr", has_text=real_slice.first.name)
    _reload_until(page, row, READY)
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.stats["n_events"] == real_slice.events == 3000
    assert dataset.stats["n_sequences"] == real_slice.users == 150
    expect(row).to_contain_text("3,000")  # the events column, with its thousands separator
    screenshot("datasets")
