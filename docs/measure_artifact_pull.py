"""The cost of a serving host's first request for a version: pull + verify + load (docs/scaling-out.md).

Exports an untrained 16-block NextItNet (d=64, the default width) for a few catalogue sizes, stores
it in an S3 API started here (moto's server, over loopback HTTP), and times, from an empty cache,
what :func:`webapp.registry.artifacts.artifact_local` does (list, stream every file down, compare
the checksums, rename into the cache) and then :meth:`serving.Recommender.load` (the checks of
``read_artifact``, the ONNX Runtime session, the warm-up). Medians of ``--rounds``.

    .venv/bin/python docs/measure_artifact_pull.py [--items 1682 50000 500000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings.local")
KEY, SECRET = "measure", "measure-secret"


def _moto(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto's server did not start")


def _export(n_items: int, out: Path) -> None:
    import numpy as np

    from trainer.data.types import Vocabulary
    from trainer.export import ExportConfig, export_model
    from trainer.models import build_model, model_config

    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 16}), n_items + 1).eval()
    vocab = Vocabulary(tuple(f"item-{i}" for i in range(n_items)))
    counts = np.arange(n_items + 1, dtype=np.int64)[::-1].copy()
    counts[0] = 0
    export_model(
        model, vocab, out, item_counts=counts, config=ExportConfig(max_k=100), train_config={"max_len": 50}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1682, 50_000, 500_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    work = Path(tempfile.mkdtemp(prefix="measure-pull-"))
    os.environ.update(
        DJANGO_VAR_DIR=str(work / "var"),
        DJANGO_STORAGE_URL="s3://measure/studio",
        DJANGO_STORAGE_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        DJANGO_STORAGE_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        SERVING_ARTIFACT_CACHE_DIR=str(work / "cache"),
        DJANGO_LOG_LEVEL="WARNING",
    )
    server = _moto(port)
    try:
        import django

        django.setup()
        from django.core.files.storage import storages

        from serving import Recommender
        from webapp.core.storage import storage_upload
        from webapp.registry.artifacts import artifact_local
        from webapp.registry.models import ModelVersion

        storages["default"].connection.meta.client.create_bucket(Bucket="measure")
        print("| catalogue | artifact | pull + verify | load (session + warm-up) | first request total |")
        print("|---:|---:|---:|---:|---:|")
        for number, n_items in enumerate(args.items, start=1):
            local = work / f"export-{n_items}"
            _export(n_items, local)
            folder = f"artifacts/dataset-1/v{number}"
            for path in local.iterdir():
                storage_upload(path, f"{folder}/{path.name}")
            size = sum(p.stat().st_size for p in local.iterdir())
            version = ModelVersion(pk=number, dataset_id=1, number=number, artifact_dir=folder)
            pulls, loads = [], []
            for _ in range(args.rounds):
                shutil.rmtree(work / "cache", ignore_errors=True)
                started = time.perf_counter()
                cached = artifact_local(version)
                pulled = time.perf_counter()
                Recommender.load(cached, version=version.label)
                pulls.append(pulled - started)
                loads.append(time.perf_counter() - pulled)
            pull, load = statistics.median(pulls), statistics.median(loads)
            print(
                f"| {n_items:,} items | {size / 1e6:.1f} MB | {pull * 1000:.0f} ms | {load * 1000:.0f} ms "
                f"| {(pull + load) * 1000:.0f} ms |"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
