"""Public data sets the product can obtain by itself, and name-or-path resolution.

ml-100k ships inside the PyPI wheel of RecBole (``recbole/dataset_example/ml-100k/``), so any
machine that can ``pip install`` can get real data for a demo without a separate download site:
``pip download`` the wheel, read the files out of the zip, cache them. The download is its own small
function so tests can replace it and exercise everything else offline.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from trainer.data.types import DataError

log = logging.getLogger(__name__)

RECBOLE_REQUIREMENT = "recbole==1.2.1"  # the version whose wheel is known to hold ml-100k
ML100K_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
ML100K_FILES = ("ml-100k.item", "ml-100k.user", "ml-100k.inter")  # .inter last: its presence = complete
ML100K_ROWS = 100_000
PIP_TIMEOUT_S = 600


def default_cache_dir() -> Path:
    """``$TRAINER_DATA_DIR``, else ``~/.cache/stackrec-studio/datasets``; one sub-folder per data set."""
    root = os.environ.get("TRAINER_DATA_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "stackrec-studio" / "datasets"


def fetch_ml100k(cache_dir: Path | None = None) -> Path:
    """Path of ``ml-100k.inter`` under ``<cache_dir>/ml-100k/``, downloading it once if absent."""
    target_dir = Path(cache_dir or default_cache_dir()) / "ml-100k"
    inter = target_dir / "ml-100k.inter"
    if inter.is_file():
        return inter
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recbole-wheel-") as tmp:
        wheel = download_recbole_wheel(Path(tmp))
        extract_ml100k(wheel, target_dir)
    return inter


def download_recbole_wheel(dest: Path) -> Path:
    """``pip download`` the RecBole wheel (no dependencies, binary only) into ``dest``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        RECBOLE_REQUIREMENT,
        "-d",
        str(dest),
    ]
    log.info("ml-100k: downloading the %s wheel from PyPI (about 2 MB)", RECBOLE_REQUIREMENT)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(
            f"ml-100k: pip download of {RECBOLE_REQUIREMENT} took over {PIP_TIMEOUT_S} s"
        ) from None
    except OSError as exc:
        raise DataError(f"ml-100k: could not run pip ({exc})") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise DataError(
            f"ml-100k: pip download of {RECBOLE_REQUIREMENT} failed (exit {done.returncode}); "
            f"is PyPI reachable from this machine? pip said:\n{tail}"
        )
    wheels = sorted(dest.glob("recbole-*.whl"))
    if not wheels:
        raise DataError("ml-100k: pip reported success but left no recbole wheel")
    return wheels[0]


def extract_ml100k(wheel: Path, target_dir: Path) -> Path:
    """Copy the ml-100k files out of the wheel into ``target_dir``, each under a temporary name first.

    The ``.inter`` file is checked (100,000 rows) before anything is renamed into place, and renamed
    last, so an interrupted or corrupt extraction never leaves a file that looks like a good cache.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"ml-100k: {wheel.name} is not a readable wheel ({type(exc).__name__})") from None
    staged: list[tuple[Path, Path]] = []
    try:
        with archive:
            members = set(archive.namelist())
            if ML100K_MEMBER_DIR + "ml-100k.inter" not in members:
                raise DataError(f"ml-100k: {wheel.name} has no {ML100K_MEMBER_DIR}ml-100k.inter")
            for name in ML100K_FILES:
                if ML100K_MEMBER_DIR + name not in members:
                    continue  # the .item/.user side files are optional
                data = archive.read(ML100K_MEMBER_DIR + name)
                if name.endswith(".inter"):
                    rows = len(data.splitlines()) - 1  # minus the typed header
                    if rows != ML100K_ROWS:
                        raise DataError(
                            f"ml-100k: {name} in {wheel.name} has {rows} rows, expected {ML100K_ROWS}"
                        )
                part = target_dir / f".{name}.{os.getpid()}.partial"
                part.write_bytes(data)
                staged.append((part, target_dir / name))
        for part, final in staged:
            os.replace(part, final)
    finally:
        for part, _ in staged:
            part.unlink(missing_ok=True)
    log.info("ml-100k: cached %s in %s", ", ".join(final.name for _, final in staged), target_dir)
    return target_dir / "ml-100k.inter"


DATASETS: dict[str, Callable[[Path | None], Path]] = {"ml-100k": fetch_ml100k}


def resolve_dataset(name_or_path: str | Path, cache_dir: Path | None = None) -> Path:
    """A registered data set name (fetched into the cache if needed) or an existing file path."""
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        return DATASETS[name_or_path](cache_dir)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(
            f"{path.name}: no such file, and not a known data set name (known: {', '.join(sorted(DATASETS))})"
        )
    return path
