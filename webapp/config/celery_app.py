"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in each app's tasks.py.

Workers::

    celery -A webapp.config.celery_app worker -Q default                          # parsing
    celery -A webapp.config.celery_app worker -Q gpu --pool solo --concurrency 1  # training

The training queue uses the solo pool: CUDA cannot be initialised in forked children, and one
job per GPU is what fits anyway.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings.local")

app = Celery("stackrec_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
