"""Uploaded interaction logs: streamed to disk, parsed by the trainer's readers in a Celery task."""
