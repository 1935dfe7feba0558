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
            "--stack", "adjacent", "--grow", "fixed", "--keep", "final", "--start-blocks", "1",
            "--epochs", "2", "--stage-epochs", "1", "--threads", "1", "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 → 2 → 4 blocks (adjacent), every stage" in printed
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
    fixed = ["--stack", "adjacent", "--grow", "fixed", "--start-blocks", "3", "--blocks", "8"]
    assert main(["train", "--data", "x.csv", *fixed]) == 2
    assert "power of two" in capsys.readouterr().err
    one_item = tmp_path / "one-item.csv"
    one_item.write_text("user,item\n" + "".join(f"u{u},i0\n" for u in range(30) for _ in range(5)))
    assert main(["train", "--data", str(one_item)]) == 2
    assert "1 item, 30 sequences, 150 events): training and evaluation need at least 2 distinct items" in (
        capsys.readouterr().err
    )
    same = tmp_path / "identical.csv"
    same.write_text("user,item\n" + "".join(f"u{u},i{i}\n" for u in range(30) for i in range(6)))
    assert main(["train", "--data", str(same)]) == 2
    assert "all 30 sequences are identical" in capsys.readouterr().err


def test_python_m_trainer_refuses_a_document_fast_with_a_short_message(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(b"<!doctype html><html><body>u1,i1</body></html>")
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "train", "--data", str(page)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: page.html: this looks like an HTML page, not an interaction log; upload a CSV/TSV, .inter, "
        "one-sequence-per-line text or Parquet file"
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"user,item,timestamp\nu1,a,-5\nu1,b,1600000000\nu1,c,1600000001\n", "implausible (before 1970"),
        (b"user,item\nu1,a\nu1,b\nu2,b\nu2,c\n", "too small to train and evaluate"),
        (b"user,item\nu1," + b"x" * 100_000 + b"\nu1,b\n", "100,000 characters long"),
    ],
    ids=["timestamps", "too-small", "long-field"],
)
def test_bad_logs_are_refused_before_training_in_one_short_line(tmp_path, capsys, content, words):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    assert main(["train", "--data", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: log.csv") and words in error, error
    assert len(error) < 520 and "\n" not in error and str(tmp_path) not in error


def test_train_grows_automatically_by_default_and_says_what_it_kept(lastfm_slice, tmp_path, capsys):
    out = tmp_path / "auto"
    args = ["train", "--data", str(lastfm_slice), "--blocks", "4", "--start-blocks", "1", "--epochs", "3",
            "--stage-epochs", "1", "--min-gain", "0.5", "--threads", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    # A 50 % margin: the 2-block stage cannot pay on this slice, so growth stops there.
    assert (
        "nextitnet, 1 → 2 → 4 blocks at most (preserving), growing while a stage gains more than 50.0%"
        in printed
    )
    assert "depth stopped paying at 1 block: 2 blocks gained" in printed
    assert "kept: stage 1, 1 block (depth stopped paying at 1 block" in printed
    assert "nextitnet-1 test" in printed and "recommending the most popular items" in printed
    results = json.loads((out / "results.json").read_text())
    assert (results["kept_stage"], results["kept_blocks"]) == (0, 1)
    assert [s["blocks"] for s in results["stages"]] == [1, 2] and results["growth"].startswith(
        "depth stopped"
    )


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "scenario" in proc.stdout


def test_bad_timestamps_drop_reaches_the_reader(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user,item,timestamp\nu1,a,-5\nu1,b,1600000000\nu1,c,1600000001\n")
    # Dropped, the bad event leaves a log of two events: refused as too small, not for its time.
    assert main(["train", "--data", str(path), "--bad-timestamps", "drop"]) == 2
    assert "too small to train and evaluate (2 items, 1 sequence, 2 events)" in capsys.readouterr().err
