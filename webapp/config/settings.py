"""Settings read from the environment, with safe local defaults (SQLite, DEBUG off unless asked).

Only the project's skeleton lives here so far: a health endpoint that reports which trainer
models are available. Datasets, jobs, the registry and the dashboard arrive as apps.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A fixed key is only acceptable for local runs; production settings will require the variable.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-development-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "webapp.config.urls"
WSGI_APPLICATION = "webapp.config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'studio.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
