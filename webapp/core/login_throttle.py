"""What a locked-out login sees, and which address a login attempt is counted against.

django-axes counts failed logins on every path that authenticates with a password (the dashboard's
/login/, the admin login, the API's token endpoint) and refuses the next attempts of an account or
a client address that reached ``AXES_FAILURE_LIMIT``, until ``AXES_COOLOFF_TIME`` has passed. This
module answers such a request in the project's own words: a JSON ``{"message", "extra"}`` body for
the API, the dashboard's page for a browser, both with status 429 and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str | None:
    """The client's address: the peer, or with ``DJANGO_TRUSTED_PROXY_COUNT`` proxies in front, the
    address the outermost of them saw (X-Forwarded-For is only trusted as far as our own proxies)."""
    proxies = settings.STUDIO_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_wait_s() -> int:
    """Seconds a locked-out account or address waits before its next attempt counts."""
    cool_off = get_cool_off()
    return int(cool_off.total_seconds()) if cool_off else 0


def lockout_message() -> str:
    """The sentence every locked-out login reads."""
    wait = lockout_wait_s()
    minutes = max(1, round(wait / 60))
    return (
        f"too many failed logins for this account or from this address: try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''} (an administrator can unlock it sooner with "
        "`manage.py axes_reset_username`)"
    )


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """axes' ``AXES_LOCKOUT_CALLABLE``: 429 with the wait, as JSON under /api/, as a page elsewhere."""
    wait = lockout_wait_s()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"message": lockout_message(), "extra": {"retry_after_s": wait}}, status=429
        )
    else:
        response = render(
            request, "dashboard/locked_out.html", {"message": lockout_message(), "wait_s": wait}, status=429
        )
    response["Retry-After"] = str(wait)
    return response
