"""The reconciler: what the database says must run, and the broker may have lost, is sent again.

Every worker runs it in a background thread (no separate beat service is needed): every
``STUDIO_RECONCILE_INTERVAL_S`` it re-sends datasets and training jobs that have been PENDING for
longer than ``STUDIO_DISPATCH_RESEND_S`` (a send that failed, a message lost with a broker restart)
and requeues RUNNING jobs whose heartbeat is older than ``STUDIO_HEARTBEAT_STALE_S``, whatever
worker held them. A message sent twice is harmless: claiming a row is one locked transaction
that only a PENDING row passes. Several workers running it at once is harmless for the same reason.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()


def reconcile_once() -> dict[str, list[int]]:
    """One pass: the ids it re-sent or requeued, by kind (for the log and the tests)."""
    from webapp.datasets.services import datasets_resend_pending
    from webapp.training.services import training_jobs_reconcile

    return {"datasets": datasets_resend_pending(), **training_jobs_reconcile()}


def _beat(worker: str, queues: str) -> None:
    from django.utils import timezone

    from webapp.core.models import WorkerBeat

    WorkerBeat.objects.update_or_create(name=worker, defaults={"queues": queues, "seen_at": timezone.now()})


def _loop(interval_s: float, worker: str, queues: str) -> None:
    while True:
        try:
            if worker:
                _beat(worker, queues)
            done = reconcile_once()
            if any(done.values()):
                logger.info("reconciler: %s", done)
        except Exception:  # a database that is restarting: try again next period
            logger.warning("reconciler: pass failed; retrying in %.0f s", interval_s, exc_info=True)
        finally:
            close_old_connections()
        threading.Event().wait(interval_s)


def reconciler_start(*, worker: str = "", queues: str = "") -> bool:
    """Start the reconciler thread in this process, once; False when disabled (interval 0). With a
    ``worker`` name it also stamps that worker's heartbeat (``WorkerBeat``) every period."""
    interval = settings.STUDIO_RECONCILE_INTERVAL_S
    if interval <= 0 or _started.is_set():
        return False
    _started.set()
    thread = threading.Thread(target=_loop, args=(interval, worker, queues), name="reconciler", daemon=True)
    thread.start()
    logger.info("reconciler: every %.0f s", interval)
    return True
