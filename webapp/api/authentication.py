"""Token authentication for POST /api/v1/recommend, with the token → user lookup remembered per process.

Applications call the recommend endpoint per page view, and its model call takes about half a
millisecond; looking the token up in the database took twice that (a query, and with SQLite a new
connection per request). So a key that authenticated is remembered in the process for
``SERVING_CACHE_S`` seconds (settings; 1 s by default, 0 looks it up on every request):

- a token deleted, a user saved (deactivated, password changed) or deleted, or a change of
  permissions or groups, in this process is forgotten at once, and again when its transaction
  commits (the user object is remembered with the permissions Django caches on it);
- done in another process (another gunicorn worker, the admin on another host, a shell), it stops
  working within ``SERVING_CACHE_S``.

A key that does not authenticate is never remembered: it is looked up every time, as before. Every
other endpoint keeps DRF's own :class:`~rest_framework.authentication.TokenAuthentication`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from webapp.api.memo import ProcessMemo

_tokens = ProcessMemo(max_age_s=lambda: settings.SERVING_CACHE_S)  # key -> (user, token)


class RecommendTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, answering a key that authenticated recently from memory."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        remembered = _tokens.get(key)
        if remembered is not None:
            return remembered
        mark = _tokens.begin()
        user, token = super().authenticate_credentials(key)  # raises for an unknown key or inactive user
        _tokens.put(key, (user, token), mark=mark)
        return user, token


def recommend_tokens_forget() -> None:
    """Forget every remembered token (tests; serving_reset)."""
    _tokens.clear()


def _forget_now_and_on_commit(forget) -> None:
    forget()  # this process's next request, even inside the transaction that made the change
    transaction.on_commit(forget)  # and a request that read the row before the commit stores nothing


def _token_deleted(sender, instance: Token, **kwargs) -> None:
    key = instance.key  # read now: a deleted row's primary key is set to None afterwards
    _forget_now_and_on_commit(lambda: _tokens.forget(key))


def _user_changed(sender, instance, **kwargs) -> None:
    pk = instance.pk
    _forget_now_and_on_commit(lambda: _tokens.forget_where(lambda entry: entry[0].pk == pk))


post_delete.connect(_token_deleted, sender=Token, dispatch_uid="recommend-token-deleted")
post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="recommend-user-saved")
post_delete.connect(_user_changed, sender=get_user_model(), dispatch_uid="recommend-user-deleted")


def _permissions_changed(sender, action: str, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        _forget_now_and_on_commit(_tokens.clear)  # rare, and may touch many users (a group's)


for _through in (get_user_model().user_permissions.through, get_user_model().groups.through):
    m2m_changed.connect(_permissions_changed, sender=_through, dispatch_uid=f"recommend-{_through.__name__}")
m2m_changed.connect(
    _permissions_changed, sender=Group.permissions.through, dispatch_uid="recommend-group-perms"
)
