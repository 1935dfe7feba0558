"""Real Celery worker processes for tests, started with the commands docker-compose.yml runs.

``worker_group("redis" | "embedded", root)`` points this process's Celery app (which sends the
tasks) at the chosen broker and yields a ``Workers`` group whose ``start("worker")`` and
``start("worker-gpu")`` launch the compose services' commands with this interpreter. The workers
share the test database (by URL) and the test's media folder; their logs go to ``root``. On
Redis, each group takes a database of its own (``redis_broker``), so test runs beside each other
on one machine never take each other's tasks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.db import connection

from webapp.config.celery_app import app as celery_app
from webapp.config.settings.base import redis_reachable

REPO = Path(__file__).resolve().parents[2]
REDIS_BASE = "redis://127.0.0.1:6379"
REDIS_TEST_DBS = (15, 14, 13, 12, 11, 10, 9, 8)  # the application's own default is database 0


def database_url() -> str:
    """The test database as a URL the worker processes can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class Workers:
    """Celery worker subprocesses for one broker; logs go to files shown when a test fails."""

    def __init__(self, broker: str, root: Path) -> None:
        self.broker, self.root = broker, root
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.config.settings.local",
            "DATABASE_URL": database_url(),
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_VAR_DIR": str(root / "var"),
            "CELERY_BROKER_URL": broker,
            "DJANGO_JOB_HEARTBEAT_INTERVAL_S": "0.5",
            "TRAINER_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }

    def start(self, service: str, *, name: str = "") -> subprocess.Popen:
        """Start the worker as docker-compose's ``service`` does, with this interpreter's celery.

        ``name`` replaces the node name's prefix (``gpu@%h`` → ``NAME@%h``): a recreated container
        comes back under another name, and the process is known by that name here.
        """
        command = compose_command(service)
        assert command[0] == "celery"
        if name:
            command[command.index("-n") + 1] = f"{name}@%h"
        key = name or service
        log = open(self.root / f"{service}{'-' + name if name else ''}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", *command], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[key] = process
        return process

    def kill(self, service: str) -> None:
        process = self.processes.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)  # a test may have frozen one
            process.send_signal(signal.SIGQUIT)  # cold shutdown: nothing of value is running any more
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.root.glob("worker*.log"))
        )


def wait_for(check: Callable[[], object], what: str, workers: Workers, timeout: float = 120) -> object:
    """``check()``'s first truthy value, polled every 0.25 s; a failure with the workers' logs after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}\n{workers.logs()}")


def job_trained(api: Any, dataset_id: int, config: dict, workers: Workers) -> dict:
    """Queue a job over the API and wait until the workers end it; its final JSON, succeeded."""
    response = api.post("/api/v1/jobs", {"dataset": dataset_id, "config": config}, format="json")
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    job = wait_for(
        lambda: (j := api.get(f"/api/v1/jobs/{job_id}").json())["status"] in ("SUCCEEDED", "FAILED") and j,
        "the training job",
        workers,
    )
    assert job["status"] == "SUCCEEDED", job["error"]
    return job


def compose_command(service: str) -> list[str]:
    """The command docker-compose.yml runs for ``service``, as an argument list."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return shlex.split(compose["services"][service]["command"])


def use_broker(url: str) -> None:
    """Point this process's Celery app (which sends the tasks) at ``url``."""
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = {}
    celery_app._after_fork()  # drop pooled connections to the previous broker


def embedded_broker_url(root: Path) -> str:
    """kombu's SQLAlchemy transport on a SQLite file: a broker that needs no server."""
    return f"sqla+sqlite:///{root / 'broker.sqlite3'}"


def redis_available() -> bool:
    """Whether the test Redis (``STUDIO_TEST_REDIS_URL``, else 127.0.0.1:6379) answers."""
    return redis_reachable(os.environ.get("STUDIO_TEST_REDIS_URL") or f"{REDIS_BASE}/{REDIS_TEST_DBS[0]}")


@contextlib.contextmanager
def redis_broker() -> Iterator[str]:
    """A Redis database of this test's own, emptied; skips (fails under ``CI=true``) without Redis.

    Test runs beside each other on one machine (several checkouts, a developer and CI) must not
    consume each other's tasks nor empty each other's queues: each holds a lock on one of the
    databases ``REDIS_TEST_DBS`` while it uses it. ``STUDIO_TEST_REDIS_URL`` names a database
    to use as it is, without a lock.
    """
    url = os.environ.get("STUDIO_TEST_REDIS_URL")
    if not redis_available():
        where = url or REDIS_BASE
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {where} is not reachable under CI")
        pytest.skip(f"Redis at {where} is not reachable")
    import redis

    with contextlib.ExitStack() as stack:
        if url is None:
            db = stack.enter_context(_leased_redis_db())
            url = f"{REDIS_BASE}/{db}"
        redis.Redis.from_url(url).flushdb()  # no messages of earlier runs
        yield url


@contextlib.contextmanager
def _leased_redis_db(wait_s: float = 300) -> Iterator[int]:
    deadline = time.monotonic() + wait_s
    host = urlsplit(REDIS_BASE).netloc.replace(":", "-")
    locks = Path(tempfile.gettempdir())
    while True:
        for db in REDIS_TEST_DBS:
            lock = open(locks / f"stackrec-studio-test-redis-{host}-{db}.lock", "w")  # noqa: SIM115
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            try:
                yield db
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"all test databases {REDIS_TEST_DBS} of {REDIS_BASE} stayed in use for {wait_s:.0f} s"
            )
        time.sleep(1)


@contextlib.contextmanager
def worker_group(kind: str, root: Path) -> Iterator[Workers]:
    """A worker group on the real Redis ("redis") or on the embedded SQLite broker ("embedded").

    Nothing is started yet: call ``start(service)``. On exit the workers stop, the Celery app goes
    back to its previous broker, and the workers' logs are printed.
    """
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(redis_broker()) if kind == "redis" else embedded_broker_url(root)
        previous = celery_app.conf.broker_url
        use_broker(broker)
        group = Workers(broker, root)
        try:
            yield group
        finally:
            group.stop()
            use_broker(previous)
            print(group.logs())  # pytest shows it when the test failed
