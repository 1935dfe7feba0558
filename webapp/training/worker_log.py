"""A job attempt's own log: what the trainer and the training app log while the attempt runs, in a
file beside the attempt's checkpoints, so the job's owner can read what the worker did (the job page
shows its tail) without access to the worker's console.

The file holds plain ``time level logger message`` lines, one per record, without tracebacks: those
stay in the worker's own log, where an error's reference points. The tail shown drops the media
folder's path from every line and the credentials of any URL (a broker's, a database's). The file is
read through storage: with an object store the worker writes it in its scratch folder (whose path
each line leaves out), stores it while the attempt runs, and the page reads only its last bytes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from webapp.core.storage import StorageError, Workspace, storage_exists, storage_read_tail
from webapp.training.models import TrainingJob

LOG_FILE = "worker.log"
LOGGERS = ("trainer", "webapp.training")
TAIL_LINES = 200
TAIL_BYTES = 256 * 1024  # read from the end: a long run's log is not read whole for its last lines
LINE_CHARS = 500  # a longer line is cut (a record with a huge message must not swamp the page)
PUSH_S = 10.0  # with an object store, the log of a running attempt is stored this often
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@", re.IGNORECASE)


def attempt_log_name(job: TrainingJob, attempt: int) -> str:
    """The storage name of attempt ``attempt``'s log: in its own folder, beside its stage checkpoints."""
    return f"{job.checkpoint_dir}/attempt-{attempt}/{LOG_FILE}"


def attempt_log_path(job: TrainingJob, attempt: int) -> Path:
    """Where attempt ``attempt`` of ``job`` logs in the media folder (local storage)."""
    return job.checkpoint_path / f"attempt-{attempt}" / LOG_FILE


class _OneLine(logging.Formatter):
    """A record as one line: newlines folded, no traceback (that goes to the worker's log), and
    without the ``strip`` folder (a worker's scratch folder: its files by their storage names)."""

    def __init__(self, fmt: str, strip: str = "") -> None:
        super().__init__(fmt)
        self.strip = strip

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record).replace("\n", " ")
        return line.replace(self.strip, "") if self.strip else line


class _AttemptThreads(logging.Filter):
    """Only the attempt's own records: those of the thread running it and of its heartbeat thread
    (a worker with a thread pool may run two jobs in one process)."""

    def __init__(self, thread: int, heartbeat_name: str) -> None:
        super().__init__()
        self.thread, self.heartbeat_name = thread, heartbeat_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or record.threadName == self.heartbeat_name


class _LogPush:
    """With an object store: a thread that stores the attempt's log every ``PUSH_S`` while it grows,
    so the job page (served by another host) shows the tail of a run that is still going."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace, self.name = workspace, name
        self.stop = threading.Event()
        self.size = -1
        self.thread = threading.Thread(target=self._run, name=f"log-push-{name}", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(PUSH_S):
            self.push()

    def push(self) -> None:
        try:
            size = self.workspace.path(self.name).stat().st_size
            if size != self.size:
                self.workspace.push(self.name)
                self.size = size
        except (OSError, StorageError):  # the next push tries again; the run goes on
            pass


@contextmanager
def attempt_log(job: TrainingJob, attempt: int, workspace: Workspace | None = None) -> Iterator[Path]:
    """Log the trainer's and the training app's INFO records to the attempt's file while inside.

    Loggers set above INFO are lowered to INFO meanwhile (and set back after), or the file would
    miss the stage lines the owner reads it for. With an object store the file is written in
    ``workspace`` and stored while the attempt runs and once more when it ends.
    """
    name = attempt_log_name(job, attempt)
    remote = workspace is not None and not workspace.local
    path = workspace.path(name) if remote else attempt_log_path(job, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    strip = str(workspace.root).rstrip("/") + "/" if remote else ""
    handler.setFormatter(_OneLine("%(asctime)s %(levelname)s %(name)s %(message)s", strip))
    handler.addFilter(_AttemptThreads(threading.get_ident(), f"heartbeat-{job.pk}"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    pusher = _LogPush(workspace, name) if remote else None
    if pusher is not None:
        pusher.thread.start()
    try:
        yield path
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
        if pusher is not None:
            pusher.stop.set()
            pusher.thread.join(timeout=30)
            pusher.push()


def training_job_log_tail(*, job: TrainingJob, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of the newest attempt's log that has one, as the job page shows them
    (see the module docstring); empty before the first attempt logged anything."""
    if not job.checkpoint_dir:
        return []
    name = next(
        (n for a in range(job.attempts, 0, -1) if storage_exists(n := attempt_log_name(job, a))), None
    )
    if name is None:
        return []
    try:  # from the end: a ranged read in an object store
        data, size = storage_read_tail(name, TAIL_BYTES)
    except StorageError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        text = text[1:]  # the first line read is likely a part of one
    media = str(settings.MEDIA_ROOT).rstrip("/") + "/"
    return [_URL_CREDENTIALS.sub(r"\1", line.replace(media, ""))[:LINE_CHARS] for line in text[-lines:]]
