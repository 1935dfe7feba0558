"""Worker start-up shared by every queue: the reconciler thread (see :mod:`webapp.core.reconciler`)."""

from celery.signals import worker_ready

from webapp.core.reconciler import reconciler_start


@worker_ready.connect
def start_reconciler(sender, **kwargs) -> None:
    """Each worker re-sends lost work and requeues stale jobs periodically; no beat service needed."""
    reconciler_start()
