"""What every admin action of the project does with a selection: one service call per object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages

from webapp.core.exceptions import ApplicationError


def run_for_each(
    modeladmin: Any, request: Any, queryset: Any, service: Callable[[Any], Any], done: str
) -> None:
    """Call ``service`` for every selected object; report the successes and each refusal in words."""
    succeeded = 0
    for obj in queryset:
        try:
            service(obj)
            succeeded += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}")
