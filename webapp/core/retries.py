"""Riding out a database that drops its connections (a restart, a failover, an administrator's kill).

A long training run touches the database every second or so. A connection that was terminated
under it is not the job's error: the write is tried again on a fresh connection with growing
waits (``STUDIO_DB_RETRY_WAIT_S``, doubling, ``STUDIO_DB_RETRIES`` tries in all), and only when
the database stays away that long does the error surface. Inside a transaction nothing can be
retried piecemeal, so callers wrap whole transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError)


def db_retry(fn: Callable[[], T], *, what: str) -> T:
    """``fn()``, tried again on a fresh connection when the database connection fails under it."""
    wait = settings.STUDIO_DB_RETRY_WAIT_S
    tries = max(1, settings.STUDIO_DB_RETRIES)
    for attempt in range(1, tries + 1):
        try:
            return fn()
        except TRANSIENT:
            if connection.in_atomic_block or attempt == tries:
                raise  # a caller's transaction is broken as a whole; or the database stayed away
            logger.warning("%s: database connection failed (try %d of %d); retrying in %.1f s",
                           what, attempt, tries, wait, exc_info=True)  # fmt: skip
            connection.close()  # the next query opens a new connection
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")
