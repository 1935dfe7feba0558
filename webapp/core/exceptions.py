"""One error type for the whole web app, rendered by the API as ``{"message": …, "extra": {…}}``.

Services raise :class:`ApplicationError` (or a subclass naming the HTTP status it maps to) with a
sentence a user can act on; the API's exception handler renders it, and DRF's own errors
(validation, authentication, not found) are rewritten into the same shape.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A request the application refuses, with the reason in words; HTTP 400 unless a subclass says."""

    status_code = 400

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})


class PermissionDeniedError(ApplicationError):
    """The user may see the object but not act on it (that needs the model's Django permission)."""

    status_code = 403


class NotFoundError(ApplicationError):
    status_code = 404


class ConflictError(ApplicationError):
    """The object is not in a state that allows the operation (e.g. cancelling a finished job)."""

    status_code = 409


class PayloadTooLargeError(ApplicationError):
    status_code = 413


class TooManyRequestsError(ApplicationError):
    """A limit on how often or how much a user may ask was reached; the message says when to retry."""

    status_code = 429


class ServiceUnavailableError(ApplicationError):
    """Nothing can answer right now (e.g. no active model version)."""

    status_code = 503


def _first_message(detail: Any) -> str:
    """The first human-readable message inside a DRF error detail (dict/list/str)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            message = _first_message(value)
            return message if key in ("non_field_errors", "detail") else f"{key}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error body is ``{"message", "extra"}``."""
    if isinstance(exc, ApplicationError):
        response = Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
        if "retry_after_s" in exc.extra:
            response["Retry-After"] = str(int(exc.extra["retry_after_s"]))
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return _unexpected(exc, context)
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"message": _first_message(exc.detail), "extra": {"fields": exc.detail}}
    else:
        response.data = {"message": _first_message(exc.detail), "extra": {}}
    return response


def _unexpected(exc: Exception, context: dict[str, Any]) -> Response:
    """An error no code path expected: logged in full under a short reference, answered as JSON.

    A database or broker that is out of reach is a 503 (try again); anything else a 500. The body
    never carries the exception's text, which may name server paths or queries.
    """
    reference = uuid.uuid4().hex[:10]
    view = context.get("view")
    logger.error("unexpected error in %s, reference %s", type(view).__name__, reference, exc_info=exc)
    if isinstance(exc, (DatabaseError, KombuOperationalError, ConnectionError)):
        return Response(
            {"message": f"a service this needs is out of reach; try again shortly (reference {reference})",
             "extra": {"reference": reference}},
            status=503,
        )  # fmt: skip
    return Response(
        {"message": f"internal error, reference {reference}", "extra": {"reference": reference}}, status=500
    )
