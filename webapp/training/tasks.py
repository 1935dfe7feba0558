"""Celery tasks of the training app: the run goes to queue ``gpu``; take an id, call one service."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from webapp.training.attempts import training_job_run
from webapp.training.services import training_jobs_requeue_orphaned

logger = logging.getLogger(__name__)


@shared_task(name="training.run_job", bind=True)
def run_job(self, job_id: int) -> None:
    """Run a training job; a redelivered message finds the job claimed and does nothing."""
    training_job_run(job_id=job_id, worker=self.request.hostname or "")


@worker_ready.connect
def requeue_orphaned_jobs(sender, **kwargs) -> None:
    """When a training worker starts, jobs it (or any dead worker) left RUNNING are requeued to resume."""
    queues = {q.name for q in getattr(sender.task_consumer, "queues", [])} if sender.task_consumer else set()
    if "gpu" not in queues:
        return
    requeued = training_jobs_requeue_orphaned(worker=sender.hostname)
    if requeued:
        logger.info("requeued orphaned training jobs %s", requeued)
