"""The README's demo command, end to end on a slice of ml-100k with a tiny configuration, run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.webapp.conftest import TINY_CONFIG
from tests.webapp.integration.test_workers import SLICE_LINES, _free_port
from webapp.core.management.commands.studio_demo import _alive

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "studio_demo", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_demo_runs_end_to_end_and_a_second_run_reuses_everything(shared_data, tmp_path):
    data, more = tmp_path / "ml-100k-slice.inter", tmp_path / "ml-100k-more.inter"
    lines = (shared_data / "ml-100k" / "ml-100k.inter").read_bytes().splitlines(keepends=True)
    data.write_bytes(b"".join(lines[: SLICE_LINES + 1]))
    more.write_bytes(b"".join([lines[0], *lines[SLICE_LINES + 1 : SLICE_LINES + 1 + SLICE_LINES // 3]]))
    # The films' titles beside the slice, as the demo finds ml-100k.item beside ml-100k.inter.
    (tmp_path / "ml-100k-slice.item").write_bytes((shared_data / "ml-100k" / "ml-100k.item").read_bytes())
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_"))
    }
    env |= {"DJANGO_SETTINGS_MODULE": "webapp.config.settings.local", "DJANGO_VAR_DIR": str(tmp_path / "var")}
    args = ("--port", str(port), "--data", str(data), "--increment", str(more),
            "--config", json.dumps(TINY_CONFIG), "--timeout", "180")  # fmt: skip
    try:
        first = _demo(env, *args)
        assert first.returncode == 0, first.stdout + first.stderr
        out = first.stdout
        assert "demo user: demo / " in out and f"running at http://127.0.0.1:{port}/" in out
        for started in (
            "training job #1: nextitnet with StackRec (adjacent), 1 → 2 blocks",
            "as an increment of #1",
            "training job #2: nextitnet retrain with StackRec (preserving), starting from version #1, "
            "2 blocks, growing while it pays, at most 4",
        ):
            assert started in out, out
        assert f"live: http://127.0.0.1:{port}/jobs/1/" in out
        assert "item titles: " in out and " items named from ml-100k-slice.item" in out
        assert "job #1 kept 2 blocks (stage 2)" in out and "for recommending the most popular items" in out
        assert "promotion gate: activated: validation NDCG@10 " in out
        # The first curl comes as soon as the first version serves, before the retrain starts.
        first_curl = out.index("curl -s -X POST")
        assert (
            out.index("serving dataset-1-v1: nextitnet, 2 blocks") < first_curl < out.index("training job #2")
        )
        assert "the retrain beside the version it started from: " in out and "/compare/?a=1&b=2" in out
        assert "bench/depth_search.py" in out
        assert "serving dataset-2-v1" in out or "dataset-1-v1 keeps serving dataset #1" in out
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        answer = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=30)
        assert len(json.loads(answer.stdout)["items"]) == 10, answer.stdout + answer.stderr

        second = _demo(env, *args)
        assert second.returncode == 0, second.stdout + second.stderr
        for reused in ("web: running", "worker-gpu: running", "dataset ml-100k-slice.inter: reusing #1",
                       "reusing finished job #1", "retrain: reusing finished job #2",
                       "item titles: reusing "):  # fmt: skip
            assert reused in second.stdout, second.stdout
        assert out.split("demo user: ")[1].split()[2] == second.stdout.split("demo user: ")[1].split()[2]
    finally:
        pids = [int(p.read_text().split()[0]) for p in (tmp_path / "var" / "run").glob("*.pid")]
        stopped = _demo(env, "--stop")
    assert "stopped web" in stopped.stdout and "stopped worker-gpu" in stopped.stdout
    left = [pid for pid in pids if _alive(pid)]
    assert len(pids) == 3 and not left, stopped.stdout
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
