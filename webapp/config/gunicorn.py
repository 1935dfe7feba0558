"""gunicorn settings (``gunicorn -c webapp/config/gunicorn.py webapp.config.wsgi``), from the environment.

Each worker loads the app itself (no ``preload_app``): the app imports torch (job configs are
validated by the trainer's dataclasses), and a worker forked from a master that imported torch hangs
on exit. Serving sessions are opened lazily per worker (see webapp.registry.serving).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # one per core: a request is ~1 ms of model work
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "600"))  # multi-GB uploads stream through a worker
preload_app = False
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None  # "-" for stdout; off by default (latency)
errorlog = "-"
