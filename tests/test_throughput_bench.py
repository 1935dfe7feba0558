"""bench/throughput.py's quick mode runs end to end, so the benchmark cannot rot between full runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_mode_measures_every_phase_and_writes_results(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "throughput.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["threads"] == 1 and next(iter(doc["matmul_gflops"].values())) > 0
    assert {(c["model"], c["loss"]) for c in doc["cases"]} == {
        (m, loss) for m in ("nextitnet", "sasrec") for loss in ("full", "sampled")
    }
    for case in doc["cases"]:
        assert case["positions_per_s"] > 0 and case["gflops"] > 0 and case["limit"]
        assert sum(case["phase_share"].values()) == pytest.approx(1.0)
        assert case["blocks_ops"].get("matmul", 0) > 0  # the profile saw the blocks' products
    assert all(r["same_ranks"] for r in doc["ranking"])
    assert all(r["max_grad_difference"] < 1e-5 for r in doc["loss"])
    assert "| positions/s |" in out.stdout and "plain against chunked" in out.stdout
