"""Training jobs: database rows with named status transitions, run by a Celery task on queue ``gpu``."""
