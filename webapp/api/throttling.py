"""API rate limits, read from settings on every request (so ``DJANGO_API_RATE_*`` and test overrides
apply; DRF's own classes copy the rates once, at import).

Scopes: ``user`` for every authenticated endpoint, ``recommend`` for the serving endpoint (its own,
higher budget, since applications call it per page view), ``anon`` for the token endpoint per address.
A rate is ``"<n>/<second|minute|hour|day>"``; ``off`` (or an empty value in settings) switches it off.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class _SettingsRate:
    scope: str

    def get_rate(self) -> str | None:
        rate = settings.STUDIO_API_RATES.get(self.scope) or None
        return None if rate in (None, "off") else rate


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    scope = "user"


class RecommendRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    scope = "recommend"


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    scope = "anon"
