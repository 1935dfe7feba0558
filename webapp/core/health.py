"""Liveness and readiness: what a load balancer or compose asks before sending traffic.

``/healthz`` (liveness) answers as long as the process serves requests. ``/readyz`` (readiness)
checks each dependency separately — the database, the broker — and lists the workers' last
heartbeats, answering 503 when a dependency the web process needs is out of reach. Workers being
gone does not make the web process unready (serving needs none), but the report shows it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        logger.warning("readiness: database check failed", exc_info=True)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _broker() -> dict[str, Any]:
    from webapp.config.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)
    except Exception as exc:
        logger.warning("readiness: broker check failed", exc_info=True)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "transport": app.conf.broker_url.split(":", 1)[0]}


def _workers() -> list[dict[str, Any]]:
    from webapp.core.models import WorkerBeat

    now = timezone.now()
    stale_s = max(3 * settings.STUDIO_RECONCILE_INTERVAL_S, 60.0)
    try:
        beats = list(WorkerBeat.objects.order_by("name"))
    except Exception:
        return []
    return [
        {
            "name": beat.name,
            "queues": beat.queues.split(",") if beat.queues else [],
            "seen_s_ago": round((now - beat.seen_at).total_seconds(), 1),
            "alive": (now - beat.seen_at).total_seconds() < stale_s,
        }
        for beat in beats
    ]


def readiness_report() -> tuple[bool, dict[str, Any]]:
    """(ready, report): ready when the database and the broker both answer."""
    database, broker = _database(), _broker()
    ready = database["ok"] and broker["ok"]
    workers = _workers() if database["ok"] else []
    return ready, {
        "status": "ready" if ready else "unavailable",
        "database": database,
        "broker": broker,
        "workers": workers,
    }
