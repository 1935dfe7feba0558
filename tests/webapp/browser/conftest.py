"""Browser tests: the dashboard in Debian's headless Chromium, driven by Playwright.

No browser is ever downloaded (``playwright install`` is never run): Playwright launches Debian's
``chromium`` (/usr/bin/chromium, else ``chromium`` on PATH), which ``./studio test`` installs with
apt-get when it is missing and it runs as root. Where the browser (or the playwright package) is
missing, every browser test is skipped with one line::

    browser test skipped: Debian's chromium is not installed (apt-get install chromium)

and under ``CI=true`` the same reason is a failure.

Fixtures (combine them; all are per test except ``browser`` and ``real_slice``):

``browser``
    session: the Chromium browser (a Playwright ``Browser``).
``studio_server``
    the live server (pytest-django's ``live_server``: a threaded WSGI server in this process that
    serves static files too) plus real Celery workers, docker-compose.yml's ``worker`` and
    ``worker-gpu`` commands, on the local Redis (a database of the test's own, emptied first:
    redis://127.0.0.1:6379/15, or /14 ... /8 while other runs hold those;
    ``STUDIO_TEST_REDIS_URL`` picks one) or, when Redis is not reachable, on the embedded SQLite
    broker. The pages enqueue tasks from the live server's threads, i.e. from this process,
    so this process's Celery app is pointed at the same broker for the test. Attributes: ``url``,
    ``broker``, ``workers`` (tests/webapp/workers.Workers: ``kill``/``start`` a service),
    ``logs()``. The workers' logs are added to the report of a failing test.
``page``
    a fresh browser context and page: viewport 1400x900, ``base_url`` the live server (so
    ``page.goto("/datasets/")``), actions time out after 30 s and ``expect(...)`` after 60 s
    (long enough for a tiny training job). When a test fails, every page it opened is
    screenshotted to ``failed-<test>-<n>.png`` in the screenshot folder.
``new_page()``
    another context and page (its own cookies: a second user beside the first).
``screenshot(name, page=None)``
    a full-page PNG of ``page`` (default: the ``page`` fixture's) saved as
    ``var/screenshots/<name>.png`` (the folder is ``STUDIO_SCREENSHOT_DIR`` when set); returns the
    path.
``login(page, user)``
    logs ``user`` in through /login/'s form (its password is set to ``PASSWORD`` first) and
    waits until the browser has left the login page.
``user_page``
    ``page`` logged in as ``user`` (tests/webapp/conftest.py's alice).
``staff_user_page``
    a second page (``new_page()``) logged in as ``staff_superuser``, a staff superuser, for
    /admin/.
``real_slice``
    session: a small real slice of ml-100k as CSV files (``user,item,timestamp``) to upload:
    ``first`` holds the first ``SLICE_EVENTS_PER_USER`` events (by time) of each of the
    ``SLICE_USERS`` users with the lowest ids (3,000 events), ``increment`` the next
    ``INCREMENT_EVENTS_PER_USER`` events of the same users, each later than all of that user's
    events in ``first`` (an append for a retrain). Needs ../shared/data (``shared_data``).

Test modules take Playwright's ``expect`` from here (``from tests.webapp.browser.conftest import
expect``) so that they still import where playwright is missing. A typical test::

    pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

    def test_upload(studio_server, user_page, real_slice, screenshot):
        user_page.goto("/datasets/")
        user_page.locator("#upload-form input[name=file]").set_input_files(real_slice.first)
        ...
        screenshot("datasets")
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from django.contrib.auth import get_user_model

from tests.webapp.workers import REPO, Workers, redis_available, worker_group

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (fails under CI) with one line
    expect = None

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium reaches out to Google's services, which a closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
ACTION_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 60_000
PASSWORD = "browser-test-password"
SLICE_USERS = 150
SLICE_EVENTS_PER_USER = 20
INCREMENT_EVENTS_PER_USER = 10

_PAGES = pytest.StashKey[list]()
_SERVER = pytest.StashKey["StudioServer"]()


def chromium_path() -> str | None:
    """Debian's chromium: /usr/bin/chromium, else ``chromium`` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _unavailable(reason: str) -> None:
    """Skip with ``reason`` on one line; under ``CI=true`` a missing browser is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped: {reason}")


def screenshot_dir() -> Path:
    path = Path(os.environ.get("STUDIO_SCREENSHOT_DIR") or REPO / "var" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if expect is None:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if executable is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # Playwright's sync API keeps an event loop in this thread; Django then refuses ORM calls from
    # the test body unless told that this synchronous use is intended.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclasses.dataclass
class StudioServer:
    url: str
    broker: str
    workers: Workers

    def logs(self) -> str:
        return self.workers.logs()


@pytest.fixture
def studio_server(request, live_server, tmp_path) -> Iterator[StudioServer]:
    root = tmp_path / "workers"
    root.mkdir()
    kind = "redis" if redis_available() else "embedded"
    with worker_group(kind, root) as workers:
        workers.start("worker")
        workers.start("worker-gpu")
        server = StudioServer(url=live_server.url, broker=workers.broker, workers=workers)
        request.node.stash[_SERVER] = server
        yield server


@pytest.fixture
def new_page(request, browser, live_server) -> Iterator[Callable]:
    contexts = []
    pages = request.node.stash.setdefault(_PAGES, [])

    def make():
        context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def screenshot(request) -> Callable[..., Path]:
    def save(name: str, page=None) -> Path:
        page = page or request.getfixturevalue("page")
        path = screenshot_dir() / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def login() -> Callable:
    def log_in(page, user) -> None:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        page.goto("/login/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(lambda url: "/login/" not in url)

    return log_in


@pytest.fixture
def staff_superuser(db):
    return get_user_model().objects.create_superuser("root", password=PASSWORD)


@pytest.fixture
def user_page(page, login, user):
    login(page, user)
    return page


@pytest.fixture
def staff_user_page(new_page, login, staff_superuser):
    page = new_page()
    login(page, staff_superuser)
    return page


@dataclasses.dataclass(frozen=True)
class RealSlice:
    first: Path
    increment: Path
    users: int
    events: int
    increment_events: int


@pytest.fixture(scope="session")
def real_slice(shared_data, tmp_path_factory) -> RealSlice:
    log = pl.read_csv(shared_data / "ml-100k" / "ml-100k.inter", separator="\t")
    log = log.select(
        pl.col(log.columns[0]).cast(pl.Utf8).alias("user"),
        pl.col(log.columns[1]).cast(pl.Utf8).alias("item"),
        pl.col(log.columns[3]).cast(pl.Int64).alias("timestamp"),
    )
    users = log["user"].cast(pl.Int64).unique().sort().head(SLICE_USERS).cast(pl.Utf8)
    ordered = (
        log.filter(pl.col("user").is_in(users.implode()))
        .sort(pl.col("user").cast(pl.Int64), "timestamp", "item")
        .with_columns(pl.int_range(pl.len()).over("user").alias("rank"))
    )
    in_first = pl.col("rank") < SLICE_EVENTS_PER_USER
    first = ordered.filter(in_first)
    cut = pl.col("timestamp").filter(in_first).max().over("user")  # the user's last time in ``first``
    increment = ordered.filter(
        ~in_first
        & (pl.col("rank") < SLICE_EVENTS_PER_USER + INCREMENT_EVENTS_PER_USER)
        & (pl.col("timestamp") > cut)
    )
    folder = tmp_path_factory.mktemp("ml-100k-slice")
    paths = folder / "ml-100k-slice.csv", folder / "ml-100k-increment.csv"
    for frame, path in zip((first, increment), paths, strict=True):
        frame.select("user", "item", "timestamp").write_csv(path)
    return RealSlice(
        first=paths[0],
        increment=paths[1],
        users=first["user"].n_unique(),
        events=len(first),
        increment_events=len(increment),
    )


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test: the workers' logs in the report, a screenshot of every page it opened."""
    report = yield
    if report.when == "call" and report.failed:
        server = item.stash.get(_SERVER, None)
        if server is not None:
            report.sections.append(("Celery worker logs", server.logs()))
        saved = []
        for n, page in enumerate(item.stash.get(_PAGES, []), 1):
            if page.is_closed():
                continue
            path = screenshot_dir() / f"failed-{_safe(item.name)}-{n}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                saved.append(f"{path} ({page.url})")
            except Exception as exc:  # the browser may be what failed
                saved.append(f"{path}: not saved ({exc})")
        if saved:
            report.sections.append(("screenshots", "\n".join(saved)))
    return report
