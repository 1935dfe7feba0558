"""``./studio demo``: the whole product on this machine, from an empty checkout to a working curl.

Migrates, creates (or reuses) a demo user, starts a parsing worker, a training worker and gunicorn
in the background (or reuses running ones), then over the REST API:

1. uploads the first 80 % of ml-100k's events (by time) as a dataset, and the titles of its films
   (``ml-100k.item``; with ``--data``, a ``.item`` file of the same name beside the log, if there is
   one) so try-it shows titles;
2. trains NextItNet with the default StackRec schedule: 2 blocks first, stacked (function-
   preserving) while a stage pays, at most 16 blocks; the best stage is exported and passes the
   promotion gate (it must beat recommending the most popular items on the same cases), and the
   moment it serves the command prints the dashboard URL and a working curl;
3. appends the last 20 % as an increment and retrains the serving model on all the events
   (continual learning: stacked deeper while it pays), following it live; the retrained version
   replaces the serving one only if the gate finds it better on the new data's cases.

A second run reuses the user, the servers, the datasets and the finished jobs. ``--stop`` ends
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
DEMO_INCREMENT = "ml-100k, last 20 %"
FIRST_SHARE = 0.8  # the dataset holds the first 80 % of the events by time; the increment the rest
# NextItNet with the default schedule: 2 blocks, stacked while a stage gains > 1 %, at most 16.
DEMO_CONFIG: dict[str, Any] = {
    "model": "nextitnet",
    "model_options": {"embedding_dim": 64},
    "schedule": {"start_blocks": 2, "final_blocks": 16, "method": "preserving", "grow": "auto"},
    "train": {"epochs": 40, "patience": 4, "batch_size": 64, "lr": 0.001, "device": "auto"},
}
# Where the question "which depth pays?" is answered for real logs, and the command behind it.
DEPTH_SEARCH = (
    "docs/benchmarks.md, 'Finding the right depth' (every line in docs/bench/depth_search.md); reproduce "
    "with .venv/bin/python bench/depth_search.py --data ml-100k:time --models nextitnet"
)
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


def stage_line(stage: dict[str, Any]) -> str:
    """One stage of a finished job in words, as the API reports it (``stages[]``).

    A retrain whose schedule stacks at once (``grow: fixed``) starts with a stage that trained
    nothing: the serving model as it was, only validated on the grown data. Its "0 steps, 0.0 s"
    would read as a stage that failed, so it is named for what it is (its decision says the same).
    """
    head = f"stage {stage['stage'] + 1}: {stage['blocks']} blocks, "
    if stage["stopped_by"] == "initial":
        return head + (
            "the serving model as it was (not trained here: the starting point), "
            f"validated on the grown data in {stage['wall_s']:.1f} s"
        )
    decision = f"; {stage['decision']}" if stage.get("decision") else ""
    ended = f"(ended by {stage['stopped_by']})"
    return head + f"{stage['steps']} steps, {stage['wall_s']:.1f} s {ended}{decision}"


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
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("STUDIO_PORT", "8000")),
            help="port gunicorn listens on, on 127.0.0.1 only (default: STUDIO_PORT, else 8000)",
        )
        parser.add_argument("--data", help="log file to upload instead of ml-100k (fetched by the project)")
        parser.add_argument("--increment", help="with --data: a later log appended to it before the retrain")
        parser.add_argument(
            "--config",
            help="training job configuration as JSON (default: 2 blocks, grown while it pays, ≤ 16)",
        )
        parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait for each job")
        parser.add_argument(
            "--skip-retrain", action="store_true", help="no increment and retrain (continual learning) step"
        )
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

        config = json.loads(options["config"]) if options["config"] else DEMO_CONFIG
        if options["data"]:
            data = Path(options["data"])
            dataset = self.dataset(data.name, lambda: data)
            increment = Path(options["increment"]) if options["increment"] else None
            increment_name = f"{data.name} + {increment.name}" if increment else ""
            titles = data.with_suffix(".item")
        else:
            first, increment = self.ml100k_parts()
            dataset = self.dataset(DEMO_DATASET, lambda: first)
            increment_name = DEMO_INCREMENT
            titles = self.ml100k_titles()
        self.item_titles(dataset, titles)
        timeout = options["timeout"]

        trained = self.job(dataset, config, timeout)
        version = self.outcome(trained)
        if version["is_active"]:
            self.serving(dataset, version, username, password)
        else:
            self.stdout.write(
                f"   nothing serves dataset #{dataset['id']} yet; to serve it anyway, confirm at "
                f"{self.base}/versions/{version['id']}/activate/confirm"
            )

        retrain = None
        if increment is not None and not options["skip_retrain"]:
            grown = self.dataset(increment_name, lambda: increment, parent=dataset)
            retrain = self.retrain(dataset, grown, timeout)
            retrained = self.outcome(retrain)
            if retrained["is_active"]:
                self.serving(grown, retrained, username, password)
            elif version["is_active"]:
                self.stdout.write(f"   {version['label']} keeps serving dataset #{dataset['id']}")

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"StackRec Studio is running at {self.base}/"))
        self.stdout.write(f"  log in as {username} / {password}   (API docs: {self.base}/api/v1/docs)")
        self.stdout.write(f"  the first run, its stages and curves: {self.base}/jobs/{trained['id']}/")
        if retrain is not None:
            self.stdout.write(
                f"  the retrain beside the version it started from: "
                f"{self.base}/compare/?a={retrain['base_job']}&b={retrain['id']}"
            )
        self.stdout.write(f"  which depth pays, against training every depth from scratch: {DEPTH_SEARCH}")
        self.stdout.write(f"  stop the servers with: ./studio stop   (logs in {self.run_dir}/)")

    def outcome(self, job: dict[str, Any]) -> dict[str, Any]:
        """Say which depth the run kept and why, how it compares with popularity, and the gate's word."""
        version = self.api("GET", f"/api/v1/versions/{job['version']}")
        metrics = job["metrics"] or {}
        kept = metrics.get("kept") or {}
        if kept:
            self.step(
                f"job #{job['id']} kept {kept['blocks']} blocks (stage {kept['stage']}): {kept['growth']}"
            )
        test, popular = metrics.get("test", {}), (metrics.get("popularity") or {}).get("test", {})
        if test and popular:
            ours, theirs = test["ndcg@10"], popular["ndcg@10"]
            self.stdout.write(
                f"   on the same test cases: test NDCG@10 {ours:.4f} against {theirs:.4f} for recommending "
                f"the most popular items ({ours / max(theirs, 1e-12):.1f}×)"
            )
        promotion = version.get("promotion") or {}
        if promotion.get("reason"):
            self.stdout.write(f"   promotion gate: {promotion['reason']}")
        return version

    def serving(self, dataset: dict[str, Any], version: dict[str, Any], username: str, password: str) -> None:
        """The moment a version serves: where to look, and a curl that works now."""
        history = [e["item"] for e in dataset["preview"]["events"][:5]]
        body = json.dumps({"dataset": dataset["id"], "history": history, "k": 10})
        answer = self.api("POST", "/api/v1/recommend", json.loads(body))
        test = version["metrics"].get("test", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"   serving {version['label']}: {version['model_name']}, {version['depth']} blocks, "
                f"test NDCG@10 {test.get('ndcg@10', float('nan')):.4f}, trained in "
                f"{version['training_time_s']:.0f} s; dashboard {self.base}/ "
                f"(log in as {username} / {password})"
            )
        )
        self.stdout.write("   recommendations for a user who watched " + ", ".join(history) + ":")
        self.stdout.write(
            f"    curl -s -X POST {self.base}/api/v1/recommend -H 'Authorization: Token {self.token}' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )
        self.stdout.write("    → " + json.dumps({k: answer[k] for k in ("version", "items")}))

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
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                self.stdout.write(f"{name} (pid {pid}) did not stop within {timeout:.0f} s: killing it")
                os.killpg(pid, signal.SIGKILL)
                killed = time.monotonic() + 10  # a kill is delivered at once, but exiting takes a moment
                while _alive(pid) and time.monotonic() < killed:
                    time.sleep(0.1)
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

    def upload(
        self, path: Path, name: str, parent: int | None = None, target: str | None = None
    ) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        data = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        target = target or (f"/api/v1/datasets/{parent}/increments" if parent else "/api/v1/datasets")
        return self.api("POST", target, data=data, content_type=f"multipart/form-data; boundary={boundary}")

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

    def ml100k_parts(self) -> tuple[Path, Path]:
        """ml-100k's events split by time into the first 80 % and the rest (two files, same format)."""
        import polars as pl

        from trainer.data import fetch_ml100k

        folder = self.run_dir / "demo-data"
        first, rest = folder / "ml-100k-first.inter", folder / "ml-100k-last.inter"
        if first.is_file() and rest.is_file():
            return first, rest
        self.step("fetching ml-100k (the RecBole wheel from PyPI, cached)")
        source = fetch_ml100k()
        frame = pl.read_csv(source, separator="\t", infer_schema_length=0)
        time_col = next(c for c in frame.columns if c.startswith("timestamp"))
        frame = frame.with_row_index("_row").sort([pl.col(time_col).cast(pl.Float64), "_row"]).drop("_row")
        cut = int(len(frame) * FIRST_SHARE)
        folder.mkdir(parents=True, exist_ok=True)
        frame.head(cut).write_csv(first, separator="\t")
        frame.slice(cut).write_csv(rest, separator="\t")
        return first, rest

    def dataset(self, name: str, path: Any, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ready dataset called ``name`` (uploaded from ``path()`` unless it is there already)."""
        existing = [
            d for d in self.api("GET", "/api/v1/datasets?page_size=200")["results"] if d["name"] == name
        ]
        ready = [d for d in existing if d["status"] in ("READY", "PENDING", "PARSING")]
        if ready:
            self.step(f"dataset {name}: reusing #{ready[0]['id']}")
            dataset = ready[0]
        else:
            file = path()
            self.step(
                f"uploading {file} over the REST API"
                + (f" as an increment of #{parent['id']}" if parent else "")
            )
            dataset = self.upload(file, name, parent=parent["id"] if parent else None)
        dataset = self.wait(f"/api/v1/datasets/{dataset['id']}", ("READY", "FAILED"), 600)
        if dataset["status"] != "READY":
            raise CommandError(f"dataset #{dataset['id']} failed to parse: {dataset['error']}")
        stats = dataset["stats"]
        self.step(
            f"dataset #{dataset['id']} {name}: {stats['n_sequences']:,} users, {stats['n_items']:,} items, "
            f"{stats['n_events']:,} events"
        )
        return dataset

    def ml100k_titles(self) -> Path:
        """ml-100k's film titles, beside its events in the cache (RecBole's ``.item``: id, title, …)."""
        from trainer.data import fetch_ml100k

        return fetch_ml100k().with_name("ml-100k.item")

    def item_titles(self, dataset: dict[str, Any], path: Path) -> None:
        """Upload ``path``'s item titles to ``dataset`` once (try-it then shows titles); none: nothing."""
        titles = dataset.get("item_titles")
        if titles:
            self.step(f"item titles: reusing {titles['titles']:,} from {titles['source']}")
            return
        if not path.is_file():
            return
        summary = self.upload(path, "", target=f"/api/v1/datasets/{dataset['id']}/items")
        named = f"{summary['titles']:,} of {dataset['stats']['n_items']:,} items named from {path.name}"
        self.step(f"item titles: {named} (try it: {self.base}/try/?dataset={dataset['id']})")

    def job(self, dataset: dict[str, Any], config: dict[str, Any], timeout: float) -> dict[str, Any]:
        """A finished job on ``dataset`` with ``config``'s model and schedule (reused, followed, or new)."""
        wanted = config["schedule"]

        def matches(job: dict[str, Any]) -> bool:
            return (
                job["config"]["model"] == config.get("model", "nextitnet")
                and not job["config"]["warm_start"]
                and all(job["config"]["schedule"].get(k) == v for k, v in wanted.items())
            )

        def start() -> dict[str, Any]:
            return self.api("POST", "/api/v1/jobs", {"dataset": dataset["id"], "config": config})

        return self.finished_job(dataset, matches, start, "training", timeout)

    def retrain(self, base: dict[str, Any], grown: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Continual learning: the active version of ``base`` stacked deeper and trained on ``grown``."""
        job = self.finished_job(
            grown,
            lambda job: job["config"]["warm_start"],
            lambda: self.api("POST", "/api/v1/jobs/retrain", {"dataset": base["id"]}),
            "retrain",
            timeout,
        )
        base_version = self.api("GET", f"/api/v1/versions/{job['base_version']}")
        return {**job, "base_job": base_version["job"]}

    def finished_job(
        self, dataset: dict[str, Any], matches: Any, start: Any, what: str, timeout: float
    ) -> dict[str, Any]:
        """The newest job of ``dataset`` that ``matches``: reused when finished, followed when queued
        or running; without one, ``start()`` makes it and it is followed to its end."""
        jobs = self.api("GET", f"/api/v1/jobs?dataset={dataset['id']}&page_size=200")["results"]
        same = [j for j in jobs if matches(j) and j["status"] in ("SUCCEEDED", "PENDING", "RUNNING")]
        if same and same[0]["status"] == "SUCCEEDED":
            self.step(f"{what}: reusing finished job #{same[0]['id']}")
            return same[0]
        if same:
            self.step(f"{what}: following job #{same[0]['id']} that is already queued or running")
        return self.follow(same[0] if same else start(), timeout)

    def follow(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Show ``job``'s progress until it ends; its stages when it succeeded, an error otherwise."""
        schedule = job["config"]["schedule"]
        how = "from scratch" if schedule["method"] == "none" else f"with StackRec ({schedule['method']})"
        if job["config"]["warm_start"]:
            how = f"retrain {how}, starting from version #{job['base_version']}"
        depths = (
            f"{schedule['final_blocks']} blocks"
            if schedule["start_blocks"] == schedule["final_blocks"]
            else f"{schedule['start_blocks']} → {schedule['final_blocks']} blocks"
        )
        if schedule.get("grow") == "auto" and schedule["method"] != "none":
            ceiling = schedule["final_blocks"]
            depths = f"{schedule['start_blocks']} blocks, growing while it pays, at most {ceiling}"
        self.step(f"training job #{job['id']}: {job['config']['model']} {how}, {depths}")
        self.stdout.write(f"   live: {self.base}/jobs/{job['id']}/")
        job = self.wait(f"/api/v1/jobs/{job['id']}", ("SUCCEEDED", "FAILED", "CANCELLED"), timeout, bar=True)
        if job["status"] != "SUCCEEDED":
            raise CommandError(f"job #{job['id']} ended {job['status']}: {job['error']}")
        for stage in job["stages"]:
            self.stdout.write("   " + stage_line(stage))
        return job
