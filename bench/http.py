"""POST /api/v1/recommend through gunicorn, under load from wrk: p50, p99 and requests per second,
the baseline and the configured server side by side in one run.

    python bench/http.py                         # 16-block NextItNet on ml-100k, 2 gunicorn workers
    python bench/http.py --connections 2 --duration 5 --repeats 1 --no-baseline

What it does:

1. sets up a private web app state in ``bench/results/http/var`` (SQLite, media folder): a user and
   token, ml-100k parsed by the web app's own service, and a 16-block NextItNet exported to ONNX and
   activated as the dataset's version. Latency does not depend on accuracy, so the model trains for
   ``--train-steps`` steps only (0: untrained weights);
2. times the model call alone in this process (``Recommender.recommend``, one thread): the floor;
3. starts two gunicorn servers exactly as docker-compose's ``web`` service does (``-c
   webapp/config/gunicorn.py``, ``WEB_CONCURRENCY`` workers, the production settings), and warms
   every worker up: the **baseline** with ``SERVING_CACHE_S=0`` (the token and the dataset's active
   version read from the database on every request, as before that setting existed) and **ours**
   with the configured value (1 s by default);
4. runs wrk (``apt-get install wrk``) with a Lua script that cycles through real ml-100k histories
   (the last 1–50 items of each user), at each ``--connections`` count, ``--repeats`` times,
   alternating the two servers so a passing load falls on both alike; prints each run with the
   machine's load average, then the median of each figure and the ratios.

Errors are non-2xx answers plus wrk's socket errors (connect, read, write, timeout); the exit status
is 1 when the configured server had any. Everything printed is also written to
``bench/results/http/results.json``. Run it on an idle machine: wrk and the servers share the cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/http.py`` this folder comes first on sys.path, and this file would shadow the
# standard library's ``http`` package (which urllib imports): take the folder off before importing.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "http"
VAR = OUT / "var"
sys.path.insert(0, str(REPO))
os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.config.settings.local"
os.environ["DJANGO_VAR_DIR"] = str(VAR)
for name in ("DATABASE_URL", "DJANGO_MEDIA_ROOT", "DJANGO_STATIC_ROOT"):
    os.environ.pop(name, None)


def setup_state(blocks: int, train_steps: int) -> tuple[str, int, list[list[str]]]:
    """User, token, parsed ml-100k and an active exported model; returns (token, dataset id, histories)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from trainer.data import fetch_ml100k
    from trainer.export import ExportConfig, count_items, export_model
    from trainer.models import build_model, model_config
    from trainer.runs import DataSpec, prepare_split
    from trainer.training import TrainConfig, fit
    from webapp.datasets.events import normalised_read_options
    from webapp.datasets.services import dataset_create, dataset_parse
    from webapp.registry.models import ModelVersion
    from webapp.registry.services import model_version_activate

    call_command("migrate", interactive=False, verbosity=0)
    user = get_user_model().objects.get_or_create(username="bench")[0]
    token = Token.objects.get_or_create(user=user)[0].key
    dataset = user.datasets.filter(status="READY").first()
    if dataset is None:
        with open(fetch_ml100k(), "rb") as f:
            dataset = dataset_create(owner=user, upload=File(f, name="ml-100k.inter"))
        dataset = dataset_parse(dataset_id=dataset.pk)
    spec = DataSpec(path=str(dataset.events_path), read=normalised_read_options(True))
    split = prepare_split(spec)
    histories = [
        split.vocab.to_raw(split.test.histories.get(i)[-random.Random(i).randint(1, 50) :])
        for i in range(len(split.test))
    ]
    version = ModelVersion.objects.filter(dataset=dataset, depth=blocks, is_active=True).first()
    if version is None:
        print(f"exporting NextItNet, {blocks} blocks ({train_steps} training steps)", flush=True)
        model = build_model("nextitnet", model_config("nextitnet", {"blocks": blocks}), split.n_items)
        train = TrainConfig(epochs=1, max_steps=max(train_steps, 1), patience=0)
        if train_steps:
            fit(model, split, train)
        relative = f"artifacts/bench/nextitnet-{blocks}"
        export_model(
            model.cpu().eval(),
            split.vocab,
            Path(os.environ["DJANGO_VAR_DIR"]) / "media" / relative,
            item_counts=count_items(split.train, split.n_items),
            config=ExportConfig(),
            train_config=train.to_dict(),
            overwrite=True,
        )
        number = ModelVersion.objects.filter(dataset=dataset).count() + 1
        version = ModelVersion.objects.create(
            owner=user, dataset=dataset, number=number, model_name="nextitnet", depth=blocks,
            method="none", artifact_dir=relative,
        )  # fmt: skip
        model_version_activate(version=version)
    return token, dataset.pk, histories


def model_floor(dataset_id: int, histories: list[list[str]], n: int = 2000) -> dict[str, float]:
    """The model call alone: what the web stack adds is measured against this."""
    from serving import Recommender
    from webapp.registry.models import ModelVersion

    version = ModelVersion.objects.get(dataset_id=dataset_id, is_active=True)
    recommender = Recommender.load(version.artifact_path)
    times = []
    for i in range(n):
        started = time.perf_counter()
        recommender.recommend(histories[i % len(histories)], 10)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": times[n // 2], "p99_ms": times[int(n * 0.99)]}


LUA = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def run_wrk(
    url: str,
    token: str,
    dataset_id: int,
    histories: list[list[str]],
    connections: int,
    args: argparse.Namespace,
) -> dict:
    bodies = [json.dumps({"dataset": dataset_id, "history": h, "k": 10}) for h in histories[:2000]]
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % (",".join("[[" + b + "]]" for b in bodies), token))
    command = ["wrk", f"-t{min(args.threads, connections)}", f"-c{connections}", f"-d{args.duration}s",
               "--latency", "-s", str(script), url]  # fmt: skip
    load_before = os.getloadavg()[0]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    script.unlink()

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50_ms": ms("50%"),
        "p90_ms": ms("90%"),
        "p99_ms": ms("99%"),
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "wrk_output": out,
    }


# The two servers compared in one run: the baseline reads the caller's token and the dataset's active
# version from the database on every request (SERVING_CACHE_S=0, as before the setting existed); the
# other runs with the configured value (1 s by default; see webapp.registry.serving).
VARIANTS = {"baseline": {"SERVING_CACHE_S": "0"}, "ours": {}}


# The production settings the benchmarked server runs with (bench/http_profile.py uses them too).
SERVER_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "webapp.config.settings.production",
    "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_STATIC_ROOT": str(VAR / "static"),
    # production needs a broker named; the recommend path sends no task, so the embedded one
    "CELERY_BROKER_URL": f"sqla+sqlite:///{VAR / 'celery-broker.sqlite3'}",
}


def start_server(port: int, workers: int, extra_env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """gunicorn as docker-compose's ``web`` service runs it, with the production settings."""
    env = {
        **os.environ,
        **SERVER_SETTINGS,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": str(REPO),
        **extra_env,
    }
    log = open(log_path, "wb")  # noqa: SIM115 (the child holds it; closed when this process ends)
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "webapp/config/gunicorn.py", "webapp.config.wsgi"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_ready(base: str, server: subprocess.Popen, body: bytes, headers: dict, workers: int) -> bool:
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                return False
            time.sleep(0.5)
    for _ in range(50 * workers):  # every worker opens its session before the timed runs
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/recommend", body, headers)).close()
    return True


def median_run(runs: list[dict]) -> dict:
    """Each figure's median over the repeated runs (errors: their sum), with the loads seen."""
    keys = ("p50_ms", "p90_ms", "p99_ms", "requests_per_s")
    summary = {key: statistics.median(run[key] for run in runs) for key in keys}
    summary["errors"] = sum(run["non_2xx"] + run["socket_errors"] for run in runs)
    summary["loads"] = [round(run["load_before"], 2) for run in runs]
    summary["runs"] = [{k: v for k, v in run.items() if k != "wrk_output"} for run in runs]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--connections", default="2,32", help="wrk connections, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (at most one per connection)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server and connection count")
    parser.add_argument("--no-baseline", action="store_true", help="measure only the configured server")
    parser.add_argument("--port", type=int, default=8799, help="the baseline's is the next one")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",")]
    variants = ["ours"] if args.no_baseline else ["baseline", "ours"]

    OUT.mkdir(parents=True, exist_ok=True)
    token, dataset_id, histories = setup_state(args.blocks, args.train_steps)
    floor = model_floor(dataset_id, histories)
    print(f"model call alone: p50 {floor['p50_ms']:.3f} ms, p99 {floor['p99_ms']:.3f} ms", flush=True)

    ports = {"ours": args.port, "baseline": args.port + 1}
    body = json.dumps({"dataset": dataset_id, "history": histories[0], "k": 10}).encode()
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    servers = {
        name: start_server(ports[name], args.workers, VARIANTS[name], OUT / f"gunicorn-{name}.log")
        for name in variants
    }
    runs: dict[tuple[str, int], list[dict]] = {(n, c): [] for n in variants for c in connections}
    try:
        for name, server in servers.items():
            if not wait_ready(f"http://127.0.0.1:{ports[name]}", server, body, headers, args.workers):
                print((OUT / f"gunicorn-{name}.log").read_text(), file=sys.stderr)
                return 1
        # Interleaved (both servers stay up; the one not measured is idle), so a load that comes and
        # goes on a shared machine falls on both alike.
        for repeat in range(args.repeats):
            for c in connections:
                for name in variants:
                    url = f"http://127.0.0.1:{ports[name]}/api/v1/recommend"
                    run = run_wrk(url, token, dataset_id, histories, c, args)
                    runs[(name, c)].append(run)
                    print(
                        f"  run {repeat + 1}/{args.repeats} {name:<8} {c:>3} connections: "
                        f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                        f"{run['requests_per_s']:.0f} requests/s, "
                        f"{run['non_2xx'] + run['socket_errors']} errors, load {run['load_before']:.2f}",
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(timeout=30)

    results = {f"{name}@{c}": median_run(runs[(name, c)]) for name in variants for c in connections}
    summary = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "load_average_at_end": os.getloadavg(),
        "model": {"name": "nextitnet", "blocks": args.blocks, "data": "ml-100k"},
        "gunicorn_workers": args.workers,
        "wrk": {"threads": args.threads, "duration_s": args.duration, "repeats": args.repeats},
        "variants": {name: VARIANTS[name] for name in variants},
        "model_call": floor,
        "http": results,
    }
    (OUT / "results.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\nPOST /api/v1/recommend via gunicorn ({args.workers} workers), median of {args.repeats} "
        f"wrk runs of {args.duration} s; {os.cpu_count()} cores, load average now "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(f"{'server':<10}{'conn':>5}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'req/s':>8}{'errors':>8}  loads")
    for name in variants:
        for c in connections:
            r = results[f"{name}@{c}"]
            print(
                f"{name:<10}{c:>5}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                f"{r['requests_per_s']:>8.0f}{r['errors']:>8}  {' '.join(f'{x:.2f}' for x in r['loads'])}"
            )
    if "baseline" in variants:
        print("baseline -> ours (ratio: baseline/ours for latency, ours/baseline for requests/s)")
        for c in connections:
            ours, base = results[f"ours@{c}"], results[f"baseline@{c}"]
            print(
                f"{c:>3} connections: p50 {base['p50_ms']:.2f} -> {ours['p50_ms']:.2f} ms "
                f"({base['p50_ms'] / ours['p50_ms']:.2f}), "
                f"p99 {base['p99_ms']:.2f} -> {ours['p99_ms']:.2f} ms "
                f"({base['p99_ms'] / ours['p99_ms']:.2f}), requests/s {base['requests_per_s']:.0f} -> "
                f"{ours['requests_per_s']:.0f} ({ours['requests_per_s'] / base['requests_per_s']:.2f})"
            )
    return 0 if all(results[f"ours@{c}"]["errors"] == 0 for c in connections) else 1


if __name__ == "__main__":
    sys.exit(main())
