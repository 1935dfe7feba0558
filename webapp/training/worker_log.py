"""A job attempt's own log: what the trainer and the training app log while the attempt runs, in a
file beside the attempt's checkpoints, so the job's owner can read what the worker did (the job page
shows its tail) without access to the worker's console.

The file holds plain ``time level logger message`` lines, one per record, without tracebacks: those
stay in the worker's own log, where an error's reference points. The tail shown drops the media
folder's path from every line and the credentials of any URL (a broker's, a database's).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from webapp.training.models import TrainingJob

LOG_FILE = "worker.log"
LOGGERS = ("trainer", "webapp.training")
TAIL_LINES = 200
TAIL_BYTES = 256 * 1024  # read from the end: a long run's log is not read whole for its last lines
LINE_CHARS = 500  # a longer line is cut (a record with a huge message must not swamp the page)
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@", re.IGNORECASE)


def attempt_log_path(job: TrainingJob, attempt: int) -> Path:
    """Where attempt ``attempt`` of ``job`` logs: in its own folder, beside its stage checkpoints."""
    return job.checkpoint_path / f"attempt-{attempt}" / LOG_FILE


class _OneLine(logging.Formatter):
    """A record as one line: newlines folded, no traceback (that goes to the worker's log)."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        return self.formatMessage(record).replace("\n", " ")


class _AttemptThreads(logging.Filter):
    """Only the attempt's own records: those of the thread running it and of its heartbeat thread
    (a worker with a thread pool may run two jobs in one process)."""

    def __init__(self, thread: int, heartbeat_name: str) -> None:
        super().__init__()
        self.thread, self.heartbeat_name = thread, heartbeat_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or record.threadName == self.heartbeat_name


@contextmanager
def attempt_log(job: TrainingJob, attempt: int) -> Iterator[Path]:
    """Log the trainer's and the training app's INFO records to the attempt's file while inside.

    Loggers set above INFO are lowered to INFO meanwhile (and set back after), or the file would
    miss the stage lines the owner reads it for.
    """
    path = attempt_log_path(job, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(_OneLine("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_AttemptThreads(threading.get_ident(), f"heartbeat-{job.pk}"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()


def training_job_log_tail(*, job: TrainingJob, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of the newest attempt's log that has one, as the job page shows them
    (see the module docstring); empty before the first attempt logged anything."""
    path = next(
        (p for n in range(job.attempts, 0, -1) if (p := attempt_log_path(job, n)).is_file()),
        None,
    )
    if path is None:
        return []
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - TAIL_BYTES))
        data = file.read()
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        text = text[1:]  # the first line read is likely a part of one
    media = str(settings.MEDIA_ROOT).rstrip("/") + "/"
    return [_URL_CREDENTIALS.sub(r"\1", line.replace(media, ""))[:LINE_CHARS] for line in text[-lines:]]
