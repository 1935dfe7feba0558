"""Celery tasks: routing to the right queues, thin bodies, and the training worker's start-up requeue."""

from __future__ import annotations

from types import SimpleNamespace

from kombu import Queue

from webapp.config.celery_app import app
from webapp.datasets.tasks import parse_dataset
from webapp.training import tasks
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_claim, training_job_create


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, args=(1,), kwargs={})["queue"].name


def test_training_runs_on_the_gpu_queue_and_parsing_on_default():
    assert _queue("training.run_job") == "gpu"
    assert _queue("datasets.parse") == "default"


def test_training_limits_keep_a_long_run_from_being_delivered_twice(settings):
    assert app.conf.task_time_limit == settings.STUDIO_TRAINING_TIME_LIMIT_S
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.worker_prefetch_multiplier == 1
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


def test_parse_task_calls_the_service(user, upload, django_capture_on_commit_callbacks):
    from webapp.datasets.services import dataset_create

    with django_capture_on_commit_callbacks():
        dataset = dataset_create(owner=user, upload=upload())
    parse_dataset.run(dataset.pk)
    dataset.refresh_from_db()
    assert dataset.status == "READY"
    parse_dataset.run(dataset.pk)  # a redelivery: nothing happens, nothing fails


def test_worker_start_requeues_only_on_the_gpu_queue(
    ready_dataset, tiny_config, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    training_job_claim(job_id=job.pk, worker="gpu@box")

    def consumer(queue: str) -> SimpleNamespace:
        return SimpleNamespace(hostname="gpu@box", task_consumer=SimpleNamespace(queues=[Queue(queue)]))

    tasks.requeue_orphaned_jobs(consumer("default"))
    assert TrainingJob.objects.get(pk=job.pk).status == "RUNNING"
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.requeue_orphaned_jobs(consumer("gpu"))
    assert TrainingJob.objects.get(pk=job.pk).status == "PENDING" and len(callbacks) == 1
