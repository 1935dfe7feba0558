"""The command line as a user runs it: a table of metrics, stage lines, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from trainer.cli import main


def head(source: Path, target: Path, lines: int) -> Path:
    with source.open() as f:
        target.write_text("".join(f.readline() for _ in range(lines)))
    return target


@pytest.fixture
def lastfm_slice(shared_data, tmp_path) -> Path:
    return head(shared_data / "lastfm" / "LastFM.txt", tmp_path / "lastfm.txt", 200)


def test_train_with_stacking_prints_stages_and_metrics_beside_popularity(lastfm_slice, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train", "--data", str(lastfm_slice), "--model", "nextitnet", "--blocks", "4",
            "--stack", "adjacent", "--start-blocks", "1", "--epochs", "2", "--stage-epochs", "1",
            "--threads", "1", "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 → 2 → 4 blocks (adjacent)" in printed
    assert [line.split()[2] for line in printed.splitlines() if line.startswith("stage ")] == ["1", "2", "4"]
    assert "nextitnet-4 test" in printed and "popularity test" in printed and "ndcg@10" in printed
    results = json.loads((out / "results.json").read_text())
    assert [s["blocks"] for s in results["stages"]] == [1, 2, 4]
    assert (out / "checkpoint.pt").is_file() and (out / "stages" / "stage-2.pt").is_file()

    # The checkpoint evaluates again on the data it records.
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt")]) == 0
    assert "nextitnet test" in capsys.readouterr().out


def test_bad_input_exits_2_with_the_reason(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["train", "--data", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main(["train", "--data", "x.csv", "--model-option", "blokcs=3"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert (
        main(["train", "--data", "x.csv", "--stack", "adjacent", "--start-blocks", "3", "--blocks", "8"]) == 2
    )
    assert "power of two" in capsys.readouterr().err


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "scenario" in proc.stdout
