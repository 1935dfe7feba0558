"""The pieces every dashboard page and action shares: the page context, job/version table rows,
and running a service behind a form with its outcome as a message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from webapp.core.exceptions import ApplicationError
from webapp.dashboard.offers import (
    version_offers,
)
from webapp.dashboard.runs_table import RunsQuery, runs_table_context

RECENT = 8  # rows in the overview's tables
LIST_LIMIT = 200  # rows in the list pages


def page_context(context: dict[str, Any], name: str) -> dict[str, Any]:
    """Every page's ``<main data-page>`` and the nav's highlighted entry."""
    return {**context, "page": name}


def positive_int(text: Any, default: int) -> int:
    try:
        return max(1, int(text))
    except (TypeError, ValueError):
        return default


def jobs_table_context(rows: Any, url: str) -> dict[str, Any]:
    """A runs table of ``rows`` and, while one of its jobs is active, the URL its fragment is re-fetched
    from; its sort and page links take the filters of that URL to the runs page."""
    return runs_table_context(rows, query=RunsQuery.from_url(url), url=url)


def version_rows(user: Any, versions: list[Any]) -> list[tuple[Any, Any]]:
    """A versions table's rows: each version with the actions its row offers ``user``."""
    return [(v, version_offers(user=user, version=v)) for v in versions]


def back_url(request: HttpRequest, fallback: str) -> str:
    """Where an action returns to: the page it was posted from (``next`` or the referrer), if ours."""
    for target in (request.POST.get("next"), request.META.get("HTTP_REFERER")):
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
    return resolve_url(fallback)


def run_action(
    request: HttpRequest, run: Callable[[], str | None], success: str, fallback: str = "dashboard:home"
) -> HttpResponse:
    """Run a service; say how it went. ``run`` may name the page to show next (e.g. the new job's)."""
    try:
        target = run()
        messages.success(request, success)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        target = None
    return redirect(target or back_url(request, fallback))


def json_field(request: HttpRequest, name: str) -> dict | None:
    text = (request.POST.get(name) or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApplicationError(f"{name} is not valid JSON: {exc}") from None
