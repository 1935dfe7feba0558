"""``./studio demo``: the whole product on this machine, from an empty checkout to a working curl.

Migrates, creates (or reuses) a demo user, starts a parsing worker, a training worker and gunicorn
in the background (or reuses running ones), uploads ml-100k over the REST API, launches a StackRec
job, follows it with a progress bar, activates the version, and prints the URL and a curl call.
A second run reuses the user, the servers, the dataset and the trained version. ``--stop`` ends
the background processes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token
from tqdm import tqdm

DEMO_USER = "demo"
DEMO_DATASET = "ml-100k"
# NextItNet with StackRec, 2 → 4 → 8 blocks, adjacent-block stacking (the paper's default method).
DEMO_CONFIG: dict[str, Any] = {
    "model": "nextitnet",
    "model_options": {"embedding_dim": 64},
    "schedule": {"start_blocks": 2, "final_blocks": 8, "method": "adjacent", "stage_patience": 2},
    "train": {"epochs": 40, "patience": 4, "batch_size": 64, "lr": 0.001, "device": "auto"},
}
REPO = Path(__file__).resolve().parents[4]


def _processes(port: int) -> dict[str, list[str]]:
    """The background services, started as docker-compose starts them (one machine, fewer processes)."""
    celery = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "webapp.config.celery_app",
        "worker",
        "--loglevel",
        "INFO",
    ]
    return {
        "worker": [*celery, "-Q", "default", "--concurrency", "1", "-n", "default@%h"],
        "worker-gpu": [*celery, "-Q", "gpu", "--pool", "solo", "--concurrency", "1", "-n", "gpu@%h"],
        "web": [sys.executable, "-m", "gunicorn", "-c", "webapp/config/gunicorn.py", "webapp.config.wsgi",
                "--bind", f"127.0.0.1:{port}"],
    }  # fmt: skip


def _alive(pid: int) -> bool:
    """Whether ``pid`` is running (and not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Command(BaseCommand):
    help = "Run the StackRec Studio demo: servers, ml-100k upload, StackRec training, recommendations."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("STUDIO_PORT", "8000")))
        parser.add_argument("--data", help="log file to upload instead of ml-100k (fetched by the project)")
        parser.add_argument("--config", help="training job configuration as JSON (default: 2 → 4 → 8 blocks)")
        parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait for training")
        parser.add_argument("--stop", action="store_true", help="stop the demo's background processes")

    # -- entry point ------------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_dir = Path(settings.VAR_DIR) / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if options["stop"]:
            self.stop()
            return
        port = options["port"]
        self.base = f"http://127.0.0.1:{port}"
        self.step("preparing the database and static files")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        username, password, token = self.demo_user()
        self.token = token
        self.step("starting the workers and gunicorn (reused when already running)")
        for name, command in _processes(port).items():
            self.ensure_running(name, command)
        self.wait_for_health()

        dataset = self.dataset(options["data"])
        config = json.loads(options["config"]) if options["config"] else DEMO_CONFIG
        version = self.version(dataset, config, options["timeout"])
        self.api("POST", f"/api/v1/versions/{version['id']}/activate")

        history = [e["item"] for e in dataset["preview"]["events"][:5]]
        body = json.dumps({"dataset": dataset["id"], "history": history, "k": 10})
        answer = self.api("POST", "/api/v1/recommend", json.loads(body))
        test = version["metrics"].get("test", {})
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"StackRec Studio is running at {self.base}/"))
        self.stdout.write(f"  log in as {username} / {password}   (API docs: {self.base}/api/v1/docs)")
        self.stdout.write(
            f"  active model: {version['label']}: {version['model_name']}, {version['depth']} blocks "
            f"({version['method']} stacking), test ndcg@10 {test.get('ndcg@10', float('nan')):.4f}, "
            f"hr@10 {test.get('hr@10', float('nan')):.4f}, trained in {version['training_time_s']:.0f} s"
        )
        self.stdout.write("  recommendations for a user who watched " + ", ".join(history) + ":")
        self.stdout.write(
            f"    curl -s -X POST {self.base}/api/v1/recommend -H 'Authorization: Token {token}' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )
        self.stdout.write("    → " + json.dumps({k: answer[k] for k in ("version", "items")}))
        self.stdout.write(f"  stop the servers with: ./studio stop   (logs in {self.run_dir}/)")

    def step(self, text: str) -> None:
        self.stdout.write(f"== {text}")

    # -- user, processes --------------------------------------------------------------------------

    def demo_user(self) -> tuple[str, str, str]:
        """The demo user; its password is made once and kept in var/run/demo-credentials.json."""
        credentials = self.run_dir / "demo-credentials.json"
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        if user is not None and credentials.is_file():
            password = json.loads(credentials.read_text())["password"]
            if not user.check_password(password):
                user.set_password(password)
                user.save()
        else:
            password = secrets.token_urlsafe(12)
            user = user or user_model(username=DEMO_USER)
            user.set_password(password)
            user.save()
            credentials.write_text(json.dumps({"username": DEMO_USER, "password": password}))
            credentials.chmod(0o600)
        token = Token.objects.get_or_create(user=user)[0].key
        self.step(f"demo user: {DEMO_USER} / {password}")
        return DEMO_USER, password, token

    def _pid(self, name: str) -> int | None:
        """The pid in ``name``'s pidfile if that process is alive and still ours (not a reused pid)."""
        pidfile = self.run_dir / f"{name}.pid"
        if not pidfile.is_file():
            return None
        pid, marker = pidfile.read_text().split()[:2]
        if not _alive(int(pid)):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            return None
        return int(pid) if marker in cmdline or not cmdline.strip() else None

    def ensure_running(self, name: str, command: list[str]) -> None:
        if self._pid(name) is not None:
            self.stdout.write(f"   {name}: running (pid {self._pid(name)})")
            return
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 (handed to the detached process)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        marker = command[command.index("-Q") + 1] if "-Q" in command else "gunicorn"
        (self.run_dir / f"{name}.pid").write_text(f"{process.pid} {marker}")
        self.stdout.write(f"   {name}: started (pid {process.pid}, log {self.run_dir / (name + '.log')})")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM each process group (warm shutdown), wait for it, SIGKILL what is left."""
        groups = {}
        for name in ("web", "worker-gpu", "worker"):
            pid = self._pid(name)
            if pid is not None:
                os.killpg(pid, signal.SIGTERM)
                groups[name] = pid
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        for name, pid in groups.items():
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.killpg(pid, signal.SIGKILL)
            self.stdout.write(f"stopped {name} (pid {pid})")

    def wait_for_health(self, timeout: float = 120) -> None:
        pid = int((self.run_dir / "web.pid").read_text().split()[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):  # e.g. the port is taken by another program
                break
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise CommandError(f"gunicorn did not answer on {self.base}/healthz; see {self.run_dir}/web.log")

    # -- REST calls -------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
            content_type: str = "application/json") -> Any:  # fmt: skip
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def upload(self, path: Path, name: str) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        data = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self.api(
            "POST", "/api/v1/datasets", data=data, content_type=f"multipart/form-data; boundary={boundary}"
        )

    def wait(self, path: str, done: tuple[str, ...], timeout: float, bar: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        progress = None
        try:
            while True:
                item = self.api("GET", path)
                if bar:
                    progress = self.show(item, progress)
                if item["status"] in done:
                    return item
                if time.monotonic() > deadline:
                    raise CommandError(f"{path} is still {item['status']} after {timeout:.0f} s")
                time.sleep(1.0)
        finally:
            if progress is not None:
                progress.close()

    def show(self, job: dict[str, Any], bar: tqdm | None) -> tqdm | None:
        p = job.get("progress") or {}
        if not p.get("stage"):
            return bar
        if bar is None or bar.desc_stage != p["stage"]:
            if bar is not None:
                bar.close()
            desc = f"stage {p['stage']}/{p['stages']} ({p['blocks']} blocks)"
            bar = tqdm(total=p["planned_steps"], desc=desc, unit="step", file=sys.stdout)
            bar.desc_stage = p["stage"]
        bar.total = p["planned_steps"]
        bar.n = p["step"]
        postfix = {"epoch": p.get("epoch")}
        if p.get("loss") is not None:
            postfix["loss"] = f"{p['loss']:.3f}"
        if p.get("metrics"):
            postfix["valid mrr@5"] = f"{p['metrics'].get('mrr@5', 0):.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()
        return bar

    # -- dataset and model ------------------------------------------------------------------------

    def dataset(self, data: str | None) -> dict[str, Any]:
        name = Path(data).name if data else DEMO_DATASET
        existing = [
            d for d in self.api("GET", "/api/v1/datasets?page_size=200")["results"] if d["name"] == name
        ]
        ready = [d for d in existing if d["status"] in ("READY", "PENDING", "PARSING")]
        if ready:
            self.step(f"dataset {name}: reusing #{ready[0]['id']}")
            dataset = ready[0]
        else:
            if data:
                path = Path(data)
            else:
                from trainer.data import fetch_ml100k

                self.step("fetching ml-100k (the RecBole wheel from PyPI, cached)")
                path = fetch_ml100k()
            self.step(f"uploading {path} over the REST API")
            dataset = self.upload(path, name)
        dataset = self.wait(f"/api/v1/datasets/{dataset['id']}", ("READY", "FAILED"), 600)
        if dataset["status"] != "READY":
            raise CommandError(f"dataset #{dataset['id']} failed to parse: {dataset['error']}")
        stats = dataset["stats"]
        self.step(
            f"dataset #{dataset['id']}: {stats['n_sequences']:,} users, {stats['n_items']:,} items, "
            f"{stats['n_events']:,} events"
        )
        return dataset

    def version(self, dataset: dict[str, Any], config: dict[str, Any], timeout: float) -> dict[str, Any]:
        versions = self.api("GET", f"/api/v1/versions?dataset={dataset['id']}")["results"]
        if versions:
            chosen = next((v for v in versions if v["is_active"]), versions[0])
            self.step(f"model: reusing version {chosen['label']}")
            return chosen
        jobs = self.api("GET", f"/api/v1/jobs?dataset={dataset['id']}")["results"]
        running = [j for j in jobs if j["status"] in ("PENDING", "RUNNING")]
        if running:
            job = running[0]
            self.step(f"training: following job #{job['id']} that is already running")
        else:
            job = self.api("POST", "/api/v1/jobs", {"dataset": dataset["id"], "config": config})
            schedule = job["config"]["schedule"]
            self.step(
                f"training job #{job['id']}: {job['config']['model']} with StackRec, "
                f"{schedule['start_blocks']} → {schedule['final_blocks']} blocks ({schedule['method']})"
            )
        job = self.wait(f"/api/v1/jobs/{job['id']}", ("SUCCEEDED", "FAILED", "CANCELLED"), timeout, bar=True)
        if job["status"] != "SUCCEEDED":
            raise CommandError(f"job #{job['id']} ended {job['status']}: {job['error']}")
        for stage in job["stages"]:
            self.stdout.write(
                f"   stage {stage['stage'] + 1}: {stage['blocks']} blocks, {stage['steps']} steps, "
                f"{stage['wall_s']:.1f} s ({stage['stopped_by']})"
            )
        return self.api("GET", f"/api/v1/versions/{job['version']}")
