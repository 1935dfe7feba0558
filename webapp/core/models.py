"""Abstract base models shared by the domain apps, and the workers' heartbeats."""

from django.db import models


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class WorkerBeat(models.Model):
    """A Celery worker's last sign of life, stamped by its reconciler thread; readiness reports it."""

    name = models.CharField(max_length=200, unique=True, help_text="the worker's node name, e.g. gpu@host")
    queues = models.CharField(max_length=200, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.queues}) at {self.seen_at:%H:%M:%S}"
