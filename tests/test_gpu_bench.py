"""bench/gpu.py's tiny mode runs end to end on the CPU, so the GPU benchmark cannot rot between GPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.py"


@pytest.mark.slow
def test_tiny_mode_measures_every_part_and_writes_the_table(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["tiny"] and doc["environment"]["precision"] == "fp32"
    assert [r["blocks"] for r in doc["throughput"]] == [2, 4]
    for row in doc["throughput"]:
        assert row["steps"] > 0 and row["positions_per_s"] > 0 and 0 < row["matmul_share"] < 1
        assert row["mfu"] is None  # no datasheet peak for a CPU
    runs = {r["run"]: r for r in doc["growth"]}
    assert len(runs) == 3
    for row in runs.values():
        assert row["kept_blocks"] in row["stages"] and row["steps"] > 0
        assert 0 <= row["test"]["ndcg@10"] <= 1
    assert runs["8 blocks from scratch"]["stages"] == [8]
    assert runs["preserving 2 → 8, every stage"]["stages"][0] == 2
    serving = {(r["engine"].split(",")[1].strip(), r["batch"]): r for r in doc["serving"]}
    assert {batch for _, batch in serving} == {1, 64}
    assert serving[("CUDA", 1)]["note"].startswith("not available")
    assert serving[("CPU", 64)]["p50_ms"] > 0
    table = (tmp_path / "results.md").read_text()
    assert table == out.stdout
    for heading in ("Training throughput by depth", "Growth against scratch", "ONNX Runtime latency"):
        assert heading in table
    assert doc["total_s"] < 60  # 30 s is the plan; a loaded machine gets some slack


@pytest.mark.skipif(torch.cuda.is_available(), reason="the full mode runs where there is a GPU")
def test_the_full_mode_refuses_a_machine_without_a_gpu(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "needs a CUDA GPU" in out.stderr and "--tiny" in out.stderr
    assert not (tmp_path / "results.json").exists()
