"""Local runs (manage.py, the demo): base settings, SQLite and the embedded broker unless told otherwise."""

from webapp.config.settings.base import *  # noqa: F403
