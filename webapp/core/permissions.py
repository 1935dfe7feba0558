"""Who may read or act on an object: one rule for the API, the dashboard and the admin.

Users read and act on their own objects (a dataset, and the jobs and versions made from it).
Another user's object needs the model's Django permission, the same one the admin checks:
``<app>.view_<model>`` (or ``change_<model>``) to read it, ``<app>.change_<model>`` to act on it —
train on a dataset, cancel a job, activate a version. Superusers hold every permission. Staff status
alone grants nothing: it only opens the admin site, which then shows what the permissions allow.

An object the user may not read does not exist for them (404: its existence is not revealed); one
they may read but not change answers 403 with the permission that is missing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from webapp.core.exceptions import PermissionDeniedError

VIEW = "view"
CHANGE = "change"


def permission_name(model: type[Model], action: str) -> str:
    """``"datasets.change_dataset"``: the Django permission for ``action`` on ``model``."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def may_act_on_all(user: Any, model: type[Model], action: str) -> bool:
    """Whether ``user`` may ``action`` every object of ``model``, not only their own.

    Reading is allowed by the view or the change permission, as in the admin (who may change may see).
    """
    if not user.is_active:
        return False
    if action == VIEW and user.has_perm(permission_name(model, CHANGE)):
        return True
    return user.has_perm(permission_name(model, action))


def visible_to(queryset: QuerySet, *, user: Any, owner: str = "owner") -> QuerySet:
    """The objects of ``queryset`` that ``user`` may read: all of them with the permission, else their own."""
    if may_act_on_all(user, queryset.model, VIEW):
        return queryset
    return queryset.filter(**{owner: user})


def may_change(model: type[Model], *, user: Any, owner_id: Any) -> bool:
    """Whether ``user`` may act on an object of ``model`` owned by ``owner_id`` (pages offer only these)."""
    return owner_id == user.pk or may_act_on_all(user, model, CHANGE)


def ensure_may_change(model: type[Model], *, user: Any, owner_id: Any, label: str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``user`` is the owner or may change any ``model``."""
    if may_change(model, user=user, owner_id=owner_id):
        return
    permission = permission_name(model, CHANGE)
    raise PermissionDeniedError(
        f"you may view {label} but not act on it: that needs the {permission!r} permission",
        {"permission": permission},
    )
