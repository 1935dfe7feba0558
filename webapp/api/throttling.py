"""API rate limits, read from settings on every request (so ``DJANGO_API_RATE_*`` and test overrides
apply; DRF's own classes copy the rates once, at import).

Scopes: ``user`` for every authenticated endpoint, ``recommend`` for the serving endpoint (its own,
higher budget, since applications call it per page view), ``anon`` for the token endpoint per address.
A rate is ``"<n>/<second|minute|hour|day>"``; ``off`` (or an empty value in settings) switches it off.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework import throttling

logger = logging.getLogger(__name__)


class _SettingsRate:
    """Rates from settings, and a limit that fails open: when the cache (Redis) is out of reach the
    request goes through, since a rate limit must not turn a broker outage into refused uploads."""

    scope: str

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache backend's own connection errors have no common base class
            logger.warning("rate limit %r not applied: the cache is out of reach", self.scope, exc_info=True)
            return True

    def get_rate(self) -> str | None:
        rate = settings.STUDIO_API_RATES.get(self.scope) or None
        return None if rate in (None, "off") else rate


class UserRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    scope = "user"


class RecommendRateThrottle(_SettingsRate, throttling.UserRateThrottle):
    scope = "recommend"


class AnonRateThrottle(_SettingsRate, throttling.AnonRateThrottle):
    scope = "anon"
