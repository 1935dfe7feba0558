"""POST /api/v1/auth/token: a token for a username and password, with failed attempts throttled.

DRF's ``ObtainAuthToken`` authenticates through Django, so django-axes counts its failures like the
login pages'. A locked-out account or address is answered 429 with the wait instead of DRF's "unable
to log in", which would hide why the right password stops working.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from webapp.api.throttling import AnonRateThrottle
from webapp.core.exceptions import TooManyRequestsError
from webapp.core.login_throttle import lockout_message, lockout_wait_s


class TokenCreateApi(ObtainAuthToken):
    throttle_classes = (AnonRateThrottle,)

    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        if getattr(request, "axes_locked_out", False):  # set by django-axes inside authenticate()
            raise TooManyRequestsError(lockout_message(), {"retry_after_s": lockout_wait_s()})
        if not valid:
            serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        # A token is a login: the signal clears the account's failed attempts (AXES_RESET_ON_SUCCESS)
        # and stamps last_login, as the login pages do.
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
