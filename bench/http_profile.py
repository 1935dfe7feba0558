"""Where the time of one POST /api/v1/recommend goes inside Django, stage by stage, in this process.

    python bench/http_profile.py                 # 3,000 requests per variant through Django's WSGI handler
    python bench/http_profile.py --requests 600

Uses the state ``bench/http.py`` sets up (a user and token, ml-100k, an active 16-block NextItNet)
and the production settings gunicorn runs with, then calls Django's WSGI handler directly (no socket,
no gunicorn) with real ml-100k histories. Every stage is timed by a wrapper around the function that
does it; a middleware's figure is its own time (what it adds around the next one). Also counted per
request: SQL queries (listed once) and log records. The baseline (``SERVING_CACHE_S=0``: the token
and the active version read on every request) and the configured value alternate in rounds; prints
both columns in ms per request and writes them to ``bench/results/http/profile.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/http.py: this folder must not shadow the standard library's ``http`` package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http import OUT, SERVER_SETTINGS, setup_state  # noqa: E402

os.environ.update(SERVER_SETTINGS)  # the settings gunicorn runs with in bench/http.py

totals: dict[str, float] = defaultdict(float)


def timed(name: str, function):
    """``function`` with its wall time added to ``totals[name]`` on every call."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started

    return wrapper


def instrument() -> list[str]:
    """Wrap every stage of the recommend path; returns the middleware names, outermost first."""
    from django.conf import settings
    from django.core.handlers.base import BaseHandler
    from django.utils.module_loading import import_string
    from rest_framework import authentication, parsers, renderers
    from rest_framework.views import APIView

    from serving import Recommender
    from webapp.registry import apis

    names = []
    for path in settings.MIDDLEWARE:
        cls = import_string(path)
        cls.__call__ = timed(f"mw:{cls.__name__}", cls.__call__)
        names.append(cls.__name__)
    BaseHandler._get_response = timed("inner", BaseHandler._get_response)
    APIView.dispatch = timed("dispatch", APIView.dispatch)
    APIView.perform_authentication = timed("authentication", APIView.perform_authentication)
    authentication.TokenAuthentication.authenticate_credentials = timed(
        "token lookup", authentication.TokenAuthentication.authenticate_credentials
    )
    APIView.check_permissions = timed("permissions", APIView.check_permissions)
    APIView.check_throttles = timed("throttles", APIView.check_throttles)
    parsers.JSONParser.parse = timed("parse", parsers.JSONParser.parse)
    renderers.JSONRenderer.render = timed("render", renderers.JSONRenderer.render)
    for name in ("model_version_active", "serving_version", "serving_recommend"):
        if hasattr(apis, name):
            setattr(apis, name, timed(name, getattr(apis, name)))
    Recommender.recommend = timed("model call", Recommender.recommend)
    return names


class _Counter(logging.Handler):
    """Counts the records the configured levels let through (each one was formatted into a record)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


def breakdown(ms: dict[str, float], middleware: list[str]) -> list[tuple[str, float]]:
    """Table rows (label, ms per request) from the per-stage totals."""
    rows: list[tuple[str, float]] = [("whole request (Django WSGI handler)", ms["whole request"])]
    inclusive = [ms.get(f"mw:{name}", 0.0) for name in middleware] + [ms["inner"]]
    rows.append(("  WSGI handler itself (request object, signals)", ms["whole request"] - inclusive[0]))
    for i, name in enumerate(middleware):
        rows.append((f"  middleware {name}", inclusive[i] - inclusive[i + 1]))
    rendering = ms.get("render", 0.0)
    rows.append(("  URL resolution, view wrapper", ms["inner"] - ms["dispatch"] - rendering))
    rows.append(("  DRF view (dispatch), of which:", ms["dispatch"]))
    named = 0.0
    for keys, label in (
        (("authentication",), "authentication (token header, user)"),
        (("token lookup",), "  of which the token -> user lookup"),
        (("permissions",), "permission classes"),
        (("throttles",), "throttles"),
        (("parse",), "JSON parse"),
        (("serving_version", "model_version_active"), "active-version lookup"),
        (("serving_recommend",), "serving call"),
        (("model call",), "  of which the model call"),
    ):
        value = next((ms[key] for key in keys if key in ms), 0.0)
        rows.append((f"    {label}", value))
        named += value if not label.startswith("  ") else 0.0
    rows.append(("    the rest of the view", ms["dispatch"] - named))
    rows.append(("  JSON rendering", rendering))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per server variant")
    parser.add_argument("--rounds", type=int, default=3, help="the variants alternate this many times")
    parser.add_argument("--blocks", type=int, default=16)
    args = parser.parse_args()

    token, dataset_id, histories = setup_state(args.blocks, 0)
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import RequestFactory

    from webapp.registry.serving import serving_reset

    # As in bench/http.py: the baseline reads the token and the active version on every request.
    variants = {"baseline": 0.0, "ours": settings.SERVING_CACHE_S}
    middleware = instrument()
    handler = WSGIHandler()
    factory = RequestFactory()
    bodies = [json.dumps({"dataset": dataset_id, "history": h, "k": 10}).encode() for h in histories[:2000]]

    def environ(body: bytes) -> dict:
        return factory.post(
            "/api/v1/recommend",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
            SERVER_NAME="127.0.0.1",
        ).environ

    statuses: list[str] = []

    def call(body: bytes) -> bytes:
        response = handler(environ(body), lambda status, headers, exc_info=None: statuses.append(status))
        return b"".join(response)

    for body in bodies[:200]:  # sessions open
        call(body)
    queries: dict[str, list[str]] = {name: [] for name in variants}
    for name, cache_s in variants.items():
        settings.SERVING_CACHE_S = cache_s
        call(bodies[0])  # what the variant remembers is filled

        def record(execute, sql, params, many, context, name=name):
            queries[name].append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            call(bodies[0])
    counter = _Counter()
    logging.getLogger().addHandler(counter)
    stage_ms: dict[str, dict[str, float]] = {name: defaultdict(float) for name in variants}
    statuses.clear()
    chunk = args.requests // args.rounds
    for round_ in range(args.rounds):
        for name, cache_s in variants.items():
            settings.SERVING_CACHE_S = cache_s
            serving_reset()  # nothing remembered from the other variant; the session reloads
            call(bodies[0])
            totals.clear()
            for i in range(chunk):
                totals["whole request"] -= time.perf_counter()
                call(bodies[(round_ * chunk + i) % len(bodies)])
                totals["whole request"] += time.perf_counter()
            for key, value in totals.items():
                stage_ms[name][key] += 1000 * value / (chunk * args.rounds)
    logging.getLogger().removeHandler(counter)
    errors = sum(not s.startswith("200") for s in statuses)

    tables = {name: breakdown(stage_ms[name], middleware) for name in variants}
    load = os.getloadavg()
    print(
        f"{chunk * args.rounds} requests per variant in {args.rounds} alternating rounds, one thread, "
        f"{errors} not 200; baseline: SERVING_CACHE_S=0, ours: {variants['ours']:g}; load average "
        + " ".join(f"{x:.2f}" for x in load)
    )
    print(f"{'stage (ms per request)':<52} {'baseline':>9} {'ours':>9}")
    for (label, base), (_, ours) in zip(tables["baseline"], tables["ours"], strict=True):
        print(f"{label:<52} {base:>9.3f} {ours:>9.3f}")
    for name in variants:
        print(f"SQL queries per request, {name}: {len(queries[name])}")
        for query in queries[name]:
            print(f"  {query[:150]}")
    print(f"log records per request: {counter.records / (2 * chunk * args.rounds):.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "profile.json").write_text(
        json.dumps(
            {
                "requests_per_variant": chunk * args.rounds,
                "load": load,
                "variants": variants,
                "stages_ms": {name: dict(rows) for name, rows in tables.items()},
                "queries": queries,
                "log_records_per_request": counter.records / (2 * chunk * args.rounds),
            },
            indent=2,
        )
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
