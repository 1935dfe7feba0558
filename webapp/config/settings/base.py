"""Settings shared by every environment, read from the environment with safe local defaults.

``local`` (manage.py's default), ``production`` (gunicorn in docker-compose) and ``test`` (pytest)
import everything from here and change only what differs. Every variable is listed in
``.env.example``.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ

from webapp.core.storage import storages_setting

BASE_DIR = Path(__file__).resolve().parents[3]  # the repository root
env = environ.Env()

# An empty variable (``NAME=`` in .env) means "use the default", exactly as if it were unset.
for _name in [
    name
    for name, value in os.environ.items()
    if value == ""
    and name.startswith(("DJANGO_", "CELERY_", "TRAINER_", "SERVING_", "DATABASE_URL", "REDIS_URL", "AWS_"))
]:
    del os.environ[_name]

logger = logging.getLogger(__name__)

# -- core -------------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A fixed key is acceptable for local runs only; production.py requires the variable.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-development-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
VAR_DIR = Path(env.str("DJANGO_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "webapp.core",
    "webapp.datasets",
    "webapp.training",
    "webapp.registry",
    "webapp.dashboard",
    "webapp.api",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files from gunicorn itself
    "webapp.datasets.uploads.UploadCleanupMiddleware",  # outside everything that may read the body
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the 429 page (core.login_throttle)
]
ROOT_URLCONF = "webapp.config.urls"
WSGI_APPLICATION = "webapp.config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'studio.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web processes and workers write to the same file: wait for locks instead of failing at once,
    # take the write lock when a transaction starts (no upgrade deadlocks), and let readers run
    # beside a writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A worker frozen inside a transaction (a paused VM, SIGSTOP) would hold its row locks for ever
    # and block the worker taking its job over; PostgreSQL ends a session idle in a transaction this
    # long (the thawed worker reconnects, finds its lease gone and stops). 0 disables it.
    IDLE_IN_TRANSACTION_S = env.int("DJANGO_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", default=30)
    if IDLE_IN_TRANSACTION_S:
        options = DATABASES["default"].setdefault("OPTIONS", {})
        timeout = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_S * 1000}"
        options["options"] = f"{options.get('options', '')} {timeout}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# A stale form's CSRF refusal as the dashboard's styled 403 page (JSON under /api/).
CSRF_FAILURE_VIEW = "webapp.core.error_pages.csrf_failure"

LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "dashboard:login"

# -- authentication -----------------------------------------------------------------------------

# django-axes counts failed logins (dashboard, admin, token endpoint) and refuses further attempts
# once an account OR a client address reaches the limit, until the cool-off has passed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("DJANGO_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("DJANGO_LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: per account, per address
AXES_RESET_ON_SUCCESS = True  # a right password clears that account's failures
AXES_LOCKOUT_CALLABLE = "webapp.core.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "webapp.core.login_throttle.client_address"
# How many reverse proxies in front of gunicorn append to X-Forwarded-For (0: use the peer address).
STUDIO_TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("DJANGO_PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# -- files ------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
# Uploaded logs, parsed events, checkpoints and exported models go through one storage
# (webapp.core.storage, docs/scaling-out.md): by default the folder MEDIA_ROOT, shared by the
# processes of one machine; with DJANGO_STORAGE_URL=s3://bucket/prefix an S3-compatible object
# store (AWS S3, MinIO, Ceph), and nothing is shared on disk: workers fetch inputs into a scratch
# folder and push what they write, serving processes pull artifacts into a cache of their own.
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STUDIO_STORAGE_URL = env.str("DJANGO_STORAGE_URL", default="")
STORAGES = {
    "default": storages_setting(
        STUDIO_STORAGE_URL,
        endpoint_url=env.str("DJANGO_STORAGE_ENDPOINT_URL", default=None),  # MinIO, Ceph: http://host:9000
        region=env.str("DJANGO_STORAGE_REGION", default=None),
        # Unset: boto3's own chain (~/.aws, an instance or pod role).
        access_key=env.str("AWS_ACCESS_KEY_ID", default=None),
        secret_key=env.str("AWS_SECRET_ACCESS_KEY", default=None),
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# With an object store: where a worker (or a web process reading one file) keeps the files of one
# piece of work while it runs (removed after), and where each serving host keeps pulled artifacts.
STUDIO_STORAGE_SCRATCH_DIR = Path(env.str("DJANGO_STORAGE_SCRATCH_DIR", default=str(VAR_DIR / "scratch")))
SERVING_ARTIFACT_CACHE_DIR = Path(
    env.str("SERVING_ARTIFACT_CACHE_DIR", default=str(VAR_DIR / "artifact-cache"))
)
# Pulled versions kept per dataset in that cache (the newest; older ones are removed).
SERVING_ARTIFACT_CACHE_KEEP = env.int("SERVING_ARTIFACT_CACHE_KEEP", default=3)

# Uploads always go to a temporary file (never memory) through a handler that stops at the limit.
FILE_UPLOAD_HANDLERS = ["webapp.datasets.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
STUDIO_UPLOAD_MAX_BYTES = env.int("DJANGO_UPLOAD_MAX_BYTES", default=2 * 1024**3)  # 2 GB
FILE_UPLOAD_TEMP_DIR = env.str("DJANGO_FILE_UPLOAD_TEMP_DIR", default=None)

# -- training ---------------------------------------------------------------------------------

# A RUNNING job whose heartbeat is older than this is considered orphaned (its worker died).
STUDIO_HEARTBEAT_INTERVAL_S = env.float("DJANGO_JOB_HEARTBEAT_INTERVAL_S", default=10.0)
STUDIO_HEARTBEAT_STALE_S = env.float("DJANGO_JOB_HEARTBEAT_STALE_S", default=120.0)
STUDIO_TRAINING_TIME_LIMIT_S = env.int("CELERY_TRAINING_TIME_LIMIT_S", default=48 * 3600)
# The reconciler (a thread in every worker) re-sends work left PENDING longer than this (a send
# that failed while the broker was down, a message lost with it) and requeues stale RUNNING jobs.
STUDIO_DISPATCH_RESEND_S = env.float("CELERY_DISPATCH_RESEND_S", default=120.0)
STUDIO_RECONCILE_INTERVAL_S = env.float("CELERY_RECONCILE_INTERVAL_S", default=30.0)
# A training attempt rides out lost database connections: this many tries, waits doubling from this.
STUDIO_DB_RETRIES = env.int("DJANGO_DB_RETRIES", default=8)
STUDIO_DB_RETRY_WAIT_S = env.float("DJANGO_DB_RETRY_WAIT_S", default=0.5)
# Torch intra-op threads for training on the CPU; 0 leaves PyTorch's default (one per core).
STUDIO_TRAINING_THREADS = env.int("TRAINER_THREADS", default=0)

# Bounded jobs (docs/limits.md). A job is refused (400) when its estimated peak memory or time is
# above these; the estimate assumes this throughput (FLOP/s): 2e10 is a few CPU cores in fp32, so
# set it for GPU workers (an H100 in bf16 does about 100 times more). 0 turns a limit off.
STUDIO_JOB_MAX_MEMORY_BYTES = env.int("DJANGO_JOB_MAX_MEMORY_BYTES", default=16_000_000_000)
STUDIO_JOB_MAX_ESTIMATED_S = env.float("DJANGO_JOB_MAX_ESTIMATED_S", default=24 * 3600.0)
STUDIO_JOB_ASSUMED_FLOPS = env.float("DJANGO_JOB_ASSUMED_FLOPS", default=2e10)
# A run ends cleanly at this wall time, keeping its best model (a config's schedule.time_limit_s may
# ask for less); well under the Celery hard limit, which kills without exporting anything.
STUDIO_JOB_MAX_WALL_S = env.float("DJANGO_JOB_MAX_WALL_S", default=12 * 3600.0)
# Per owner: creating or resuming beyond this many queued jobs is refused (429); beyond this many
# running, a worker leaves the job queued with the reason and the reconciler sends it again later.
STUDIO_JOBS_MAX_QUEUED_PER_USER = env.int("DJANGO_JOBS_MAX_QUEUED_PER_USER", default=10)
STUDIO_JOBS_MAX_RUNNING_PER_USER = env.int("DJANGO_JOBS_MAX_RUNNING_PER_USER", default=2)

# The promotion gate: a new version goes live by itself only when its validation figure beats both
# popularity and the version serving the dataset, on the same cases, by this relative margin.
STUDIO_PROMOTION_METRIC = env.str("DJANGO_PROMOTION_METRIC", default="ndcg@10")
STUDIO_PROMOTION_MARGIN = env.float("DJANGO_PROMOTION_MARGIN", default=0.0)

# -- serving ----------------------------------------------------------------------------------

SERVING_INTRA_OP_THREADS = env.int("SERVING_INTRA_OP_THREADS", default=1)
# Where ONNX Runtime serves: cpu, cuda (the onnxruntime-gpu build) or auto (see serving.providers).
SERVING_DEVICE = env.str("SERVING_DEVICE", default="cpu").strip().lower() or "cpu"
# POST /api/v1/recommend answers from what its process read at most this many seconds ago: the
# caller's token and the dataset's active version (an activation elsewhere reaches every process
# within this bound; made in the process, at once). 0: read both on every request (two queries).
SERVING_CACHE_S = env.float("SERVING_CACHE_S", default=1.0)

# -- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["webapp.api.throttling.UserRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "webapp.core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
# Requests per user (per address for the token endpoint); "off" switches a limit off. See api.throttling.
STUDIO_API_RATES = {
    "user": env.str("DJANGO_API_RATE_USER", default="600/minute"),
    # Off by default: applications call it per page view within a few ms, and every throttled call
    # costs a cache read and write; set a rate to cap one token (a proxy can cap addresses too).
    "recommend": env.str("DJANGO_API_RATE_RECOMMEND", default="off"),
    "anon": env.str("DJANGO_API_RATE_ANON", default="30/minute"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "StackRec Studio API",
    "DESCRIPTION": "Upload interaction logs, train deep sequential recommenders with StackRec, serve them.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's Swagger UI comes from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Datasets and jobs both have a "status" choice set; name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "DatasetStatusEnum": "webapp.datasets.models.Dataset.Status",
        "TrainingJobStatusEnum": "webapp.training.models.TrainingJob.Status",
    },
}

# -- Celery -----------------------------------------------------------------------------------


def redis_reachable(url: str, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to the broker URL's host and port opens (no Redis command sent)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout):
            return True
    except OSError:
        return False


def choose_broker(configured: str | None, embedded_path: Path) -> str:
    """The configured broker when it answers; otherwise kombu's SQLAlchemy transport on a SQLite file.

    The embedded broker needs no server process, so a laptop or a CI run works with only this
    repository; a real worker process consumes from it all the same.
    """
    if configured and not configured.startswith("redis"):
        return configured  # e.g. an explicit sqla+ URL: no probe
    if configured and redis_reachable(configured):
        return configured
    if configured:
        logger.warning("broker %s is not reachable; using the embedded broker %s", configured, embedded_path)
    embedded_path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqla+sqlite:///{embedded_path}"


CELERY_BROKER_URL = choose_broker(
    env.str("CELERY_BROKER_URL", default=None) or env.str("REDIS_URL", default=None),
    Path(env.str("CELERY_EMBEDDED_BROKER_PATH", default=str(VAR_DIR / "celery-broker.sqlite3"))),
)


def cache_settings(broker_url: str) -> dict[str, Any]:
    """The API's rate limits count requests in the cache: Redis when the broker is Redis (shared by
    every web process on every host), otherwise a folder (shared by the processes of this machine)."""
    if broker_url.startswith("redis"):
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": broker_url,
                # an unreachable Redis costs a request half a second at most (api.throttling fails open)
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        }
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }


CACHES = cache_settings(CELERY_BROKER_URL)
# Progress and results live in the database (TrainingJob, Dataset), never in Celery results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"training.run_job": {"queue": "gpu"}}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a training worker must not hoard jobs another worker could run
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The training task's hard limit; Redis redelivers an unacknowledged message after the visibility
# timeout, so that timeout sits above the longest possible run (plus margin), and the job claim in
# the database makes any redelivery a no-op anyway.
CELERY_TASK_TIME_LIMIT = STUDIO_TRAINING_TIME_LIMIT_S
CELERY_TASK_SOFT_TIME_LIMIT = STUDIO_TRAINING_TIME_LIMIT_S - 300
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": STUDIO_TRAINING_TIME_LIMIT_S + 3600}
    if CELERY_BROKER_URL.startswith("redis")
    else {}  # the SQLAlchemy transport hands these to create_engine: nothing to set there
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
