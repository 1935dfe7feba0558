"""Project configuration: settings, URL routes, the Celery app and the WSGI entry point."""

from webapp.config.celery_app import app as celery_app

__all__ = ["celery_app"]
