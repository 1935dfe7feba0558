"""pytest: a file-backed SQLite test database (worker subprocesses must see it), fast hashing.

Celery stays on a real broker: unit tests run tasks by calling them, and the integration tests
start real worker processes. Eager mode is never switched on here.
"""

import os

from webapp.config.settings.base import *  # noqa: F403
from webapp.config.settings.base import DATABASES, VAR_DIR

SECRET_KEY = "test-only-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per pytest process, so parallel runs do not share it; a real worker opens it by path.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
# Unit tests hold one transaction per test, which a heartbeat thread on SQLite would wait for;
# the integration tests run real workers with the thread on.
STUDIO_HEARTBEAT_INTERVAL_S = 0.0
LOGGING = {"version": 1, "disable_existing_loggers": False}
# collectstatic does not run for tests; whitenoise warns on every request when the folder is missing.
STATIC_ROOT = VAR_DIR / "test-static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Tasks sent by the test process go nowhere unless a test points Celery at a real broker (the
# integration tests do, and start real workers): never into the local embedded broker's file.
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
# One cache per test process; the throttling tests lower the API rates and switch django-axes on
# (Django's test client logs in without a request, which axes refuses).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
AXES_ENABLED = False
STUDIO_API_RATES = {"user": "", "recommend": "", "anon": ""}
