"""A private virtualenv for RecBole 1.2.1, the peer implementation our benchmark compares against.

RecBole needs ``numpy<2`` (it uses aliases numpy 2 removed) and declares dependencies we do not
want in the product environment (``ray<=2.6.3``, ``thop``, ``plotly``, ...), so it lives in its own
venv. RecBole is installed with ``--no-deps`` and only the packages that the modules we import
(``recbole.config``, ``recbole.data``, ``recbole.model.sequential_recommender``, ``recbole.trainer``,
``recbole.utils``) really load are added: ``ray``/``thop``/``psutil``/``plotly``/``tabulate`` are
only touched by ``recbole.quick_start``, FLOP counting and hyper-parameter tuning, which the peer
script does not use. ``tensorboard`` is needed because ``recbole.utils`` imports
``torch.utils.tensorboard`` at module level.

Creating the venv takes a while (torch alone is a large wheel), so a marker file records the spec
that was installed; a later call with the same spec returns at once.

Usage as a script: ``python bench/recbole_env.py [--path DIR]`` prints the venv's python.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

LOG = logging.getLogger("recbole_env")

DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-recbole"
MARKER_NAME = "recbole-spec.json"

# Installed together so the resolver honours the numpy/pandas caps for every package.
RUNTIME_REQUIREMENTS: tuple[str, ...] = (
    "torch==2.13.0",
    "numpy<2",
    "pandas<3",
    "scipy>=1.6",
    "scikit-learn>=0.23.2",
    "pyyaml>=5.1",
    "tqdm>=4.48.2",
    "colorlog==4.7.2",
    "colorama==0.4.4",
    "texttable>=0.9",
    "tensorboard>=2.5",
)
# Installed without its declared dependencies: see the module docstring.
RECBOLE_REQUIREMENT = "recbole==1.2.1"

# Imported after installation to prove the venv can run bench/recbole_peer.py.
SMOKE_IMPORTS = (
    "import numpy, torch, recbole, recbole.config, recbole.data, "
    "recbole.model.sequential_recommender, recbole.trainer, recbole.utils; "
    "print(recbole.__version__, torch.__version__, numpy.__version__)"
)


def _spec() -> dict[str, object]:
    """What the marker must match for an existing venv to be reused."""
    return {
        "runtime": list(RUNTIME_REQUIREMENTS),
        "recbole": RECBOLE_REQUIREMENT,
        "base_python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _is_current(path: Path) -> bool:
    """True when the venv exists and its marker records exactly today's spec."""
    marker = path / MARKER_NAME
    if not (marker.is_file() and _venv_python(path).exists()):
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return recorded.get("spec") == _spec()


def _run(cmd: list[str]) -> str:
    """Run a command, logging it; on failure raise with its output so the cause is visible."""
    LOG.info("running: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def ensure_recbole_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) the RecBole venv at ``path`` and return its python executable.

    A venv whose marker does not match the current spec, or that an interrupted install left
    without a marker, is deleted and rebuilt: partial installs are not worth repairing in place.
    A lock file beside the venv keeps two benchmark processes from building it at once.
    """
    path = Path(path).resolve()
    if _is_current(path):
        LOG.debug("RecBole venv at %s is up to date", path)
        return _venv_python(path)

    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_current(path):  # another process finished while we waited for the lock
            return _venv_python(path)
        started = time.perf_counter()
        if path.exists():
            LOG.info("removing stale or partial venv at %s", path)
            shutil.rmtree(path)
        LOG.info("creating RecBole venv at %s", path)
        _run([sys.executable, "-m", "venv", str(path)])
        python = str(_venv_python(path))
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        _run([*pip, *RUNTIME_REQUIREMENTS])
        _run([*pip, "--no-deps", RECBOLE_REQUIREMENT])
        versions = _run([python, "-c", SMOKE_IMPORTS]).strip()
        freeze = _run([python, "-m", "pip", "freeze"]).split()
        (path / MARKER_NAME).write_text(
            json.dumps({"spec": _spec(), "versions": versions, "freeze": freeze}, indent=2) + "\n"
        )
        LOG.info(
            "RecBole venv ready in %.1f s (recbole, torch, numpy = %s)",
            time.perf_counter() - started,
            versions,
        )
    return _venv_python(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_VENV, help="venv folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(ensure_recbole_venv(args.path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
