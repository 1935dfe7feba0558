"""Helpers the per-operation API classes share: paginated lists and validated query parameters."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from webapp.core.exceptions import ApplicationError


class StudioPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated_response(
    *, queryset: QuerySet, serializer_class: type[Serializer], request: Request, view: Any
) -> Response:
    paginator = StudioPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def int_query_param(request: Request, name: str) -> int | None:
    """An optional whole-number query parameter; anything else is a 400 naming it."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ApplicationError(
            f"query parameter {name} must be a whole number, got {value!r}", {"field": name}
        ) from None
