"""Handing work to the broker once the database has it: the row is the truth, the broker a doorbell.

A service writes its row (a dataset to parse, a job to train) and asks for the task to be sent
after the transaction commits. If the broker cannot be reached at that moment (Redis restarting,
a network blip), that is not the caller's error: the row stays queued, the request answers as
usual, and the reconciler (:mod:`webapp.core.reconciler`) sends the task again later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def task_send(task: Any, *args: Any, what: str) -> bool:
    """Send ``task(*args)`` now; False (logged) when the broker is out of reach."""
    try:
        # No publish retries: a request must not hang on a broker that is down, and nothing is lost.
        task.apply_async(args=args, retry=False)
    except Exception:  # kombu/redis/SQLAlchemy connection errors differ by transport
        logger.warning(
            "%s: the broker is out of reach; the reconciler will send it again", what, exc_info=True
        )
        return False
    return True


def task_send_on_commit(task: Any, *args: Any, what: str) -> None:
    """Send ``task(*args)`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: task_send(task, *args, what=what))
