"""View decorators of the dashboard."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from webapp.core.exceptions import NotFoundError, PermissionDeniedError


def not_found_as_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render the selectors' refusals as pages: :class:`NotFoundError` (another user's object, a
    wrong id) as the 404 page, :class:`PermissionDeniedError` (an object the account may read but
    not act on) as the 403 page, each with the selector's words."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFoundError as exc:
            raise Http404(exc.message) from None
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from None

    return wrapped
