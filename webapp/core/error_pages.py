"""What Django answers for a 404, 403, CSRF failure or 500 that no view answered itself.

API paths get the API's error shape (``{"message", "extra"}``): a client of ``/api/v1/`` parses
JSON whatever went wrong, including a URL no API view matches (DRF's exception handler only sees
errors inside its views). Everything else gets the dashboard's pages, in its look and with its
navigation, so a person who followed a stale link can click their way back.

The 500 page is rendered from a plain context, never the request's: whatever failed (the
database behind the session, a context processor) may fail again while the page is drawn.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _reason(exception: Exception | None) -> str:
    """The sentence a view raised with (``Http404("dataset 7 not found")``); "" for the resolver's own."""
    message = exception.args[0] if exception is not None and exception.args else ""
    return message if isinstance(message, str) else ""


def _page(request: HttpRequest, template: str, status: int, reason: str) -> HttpResponse:
    body = loader.render_to_string(
        template, {"page": "error", "reason": reason, "request_path": request.path}, request=request
    )
    return HttpResponse(body, status=status)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: JSON under /api/, else the dashboard's "not found" page."""
    if _is_api(request):
        return JsonResponse(
            {"message": f"no API endpoint at {request.path}", "extra": {"path": request.path}}, status=404
        )
    return _page(request, "404.html", 404, _reason(exception))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler403``: JSON under /api/, else the dashboard's "not allowed" page."""
    reason = _reason(exception)
    if _is_api(request):
        return JsonResponse({"message": reason or "permission denied", "extra": {}}, status=403)
    return _page(request, "403.html", 403, reason)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form posted from a stale page, or with cookies blocked.

    Django's own reason ("CSRF token missing") means nothing to a user; the page says what to do.
    """
    logger.info("CSRF failure on %s: %s", request.path, reason)
    said = (
        "the form was sent from an expired page, or without this site's cookie; reload the page and try again"
    )
    if _is_api(request):
        return JsonResponse({"message": said, "extra": {"csrf": reason}}, status=403)
    return _page(request, "403.html", 403, said)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: JSON under /api/, else ``500.html`` drawn without the request's context."""
    if _is_api(request):
        return JsonResponse({"message": "internal error", "extra": {}}, status=500)
    return defaults.server_error(request)
