"""Worker start-up shared by every queue: the reconciler thread (see :mod:`webapp.core.reconciler`)."""

from celery.signals import worker_ready

from webapp.core.reconciler import reconciler_start


@worker_ready.connect
def start_reconciler(sender, **kwargs) -> None:
    """Each worker re-sends lost work, requeues stale jobs and stamps its own heartbeat periodically."""
    consumer = getattr(sender, "task_consumer", None)
    queues = sorted(q.name for q in getattr(consumer, "queues", [])) if consumer else []
    reconciler_start(worker=sender.hostname or "", queues=",".join(queues))
