"""ml-100k from the RecBole wheel, tested offline with a fake wheel in place of ``pip download``."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from trainer.data import DataError, load_dataset, resolve_dataset, sources

MEMBER = "recbole/dataset_example/ml-100k/"


def fake_inter(rows: int) -> str:
    lines = [f"{1 + r % 943}\t{1 + r % 1682}\t3\t{880000000 + r}" for r in range(rows)]
    return "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(lines) + "\n"


def fake_wheel(folder: Path, rows: int = 100_000) -> Path:
    wheel = folder / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        zf.writestr(MEMBER + "ml-100k.inter", fake_inter(rows))
        zf.writestr(MEMBER + "ml-100k.item", "item_id:token\tmovie_title:token_seq\n1\tToy Story\n")
    return wheel


@pytest.fixture
def offline_pip(tmp_path, monkeypatch):
    """Replace the download step; records how often it ran."""
    calls = []
    source = tmp_path / "wheels"
    source.mkdir()

    def download(dest: Path) -> Path:
        calls.append(dest)
        wheel = fake_wheel(source, rows=offline_pip.rows)
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    offline_pip.rows = 100_000
    offline_pip.calls = calls
    monkeypatch.setattr(sources, "download_recbole_wheel", download)
    return offline_pip


def test_fetch_extracts_into_the_cache_once(tmp_path, offline_pip):
    cache = tmp_path / "cache"
    path = sources.fetch_ml100k(cache)
    assert path == cache / "ml-100k" / "ml-100k.inter"
    assert sorted(p.name for p in path.parent.iterdir()) == ["ml-100k.inter", "ml-100k.item"]  # no temp files
    ds = load_dataset(path)
    assert len(ds.sequences.items) == 100_000 and len(ds.sequences) == 943
    assert sources.fetch_ml100k(cache) == path
    assert len(offline_pip.calls) == 1  # second call served from the cache


def test_wrong_row_count_leaves_no_cache_file(tmp_path, offline_pip):
    offline_pip.rows = 99_999
    with pytest.raises(DataError, match="99999 rows, expected 100000"):
        sources.fetch_ml100k(tmp_path)
    assert list((tmp_path / "ml-100k").iterdir()) == []


def test_pip_failure_shows_what_pip_said(tmp_path, monkeypatch):
    def failing_run(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "recbole==1.2.1" in command
        return subprocess.CompletedProcess(
            command, 1, "", "Looking in indexes\nERROR: No matching distribution\n"
        )

    monkeypatch.setattr(sources.subprocess, "run", failing_run)
    with pytest.raises(DataError) as err:
        sources.download_recbole_wheel(tmp_path)
    assert "pip download of recbole==1.2.1 failed" in str(err.value)
    assert "ERROR: No matching distribution" in str(err.value)


def test_resolve_dataset(tmp_path, offline_pip, monkeypatch):
    monkeypatch.setenv("TRAINER_DATA_DIR", str(tmp_path / "env-cache"))
    assert sources.default_cache_dir() == tmp_path / "env-cache"
    assert resolve_dataset("ml-100k") == tmp_path / "env-cache" / "ml-100k" / "ml-100k.inter"
    log = tmp_path / "log.csv"
    log.write_text("user,item\n1,2\n")
    assert resolve_dataset(str(log)) == log
    with pytest.raises(DataError, match=r"not a known data set name.*ml-100k"):
        resolve_dataset("ml-1m")
