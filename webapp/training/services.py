"""Every write to a training job's life: create, retrain, claim, cancel, resume, requeue, reconcile.

Running a claimed attempt (the trainer with its progress and cancel checks, export, the promotion
gate, the version) is :mod:`webapp.training.attempts`. What a job may ask for (its estimated cost,
its owner's queued and running jobs, its wall time) is decided in :mod:`webapp.training.admission`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trainer.configs import ConfigError
from webapp.core.dispatch import task_send_on_commit
from webapp.core.exceptions import ApplicationError, ConflictError
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.admission import (
    training_job_admit,
    training_job_wait_reason,
    training_jobs_queue_check,
)
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob

logger = logging.getLogger(__name__)

Status = TrainingJob.Status


# -- create, cancel, resume ---------------------------------------------------------------------


def _enqueue(job: TrainingJob) -> None:
    from webapp.training.tasks import run_job

    task_send_on_commit(run_job, job.pk, what=f"job #{job.pk}")


def _lineage(dataset: Dataset) -> list[Dataset]:
    """``dataset``, the dataset it was appended to, that one's parent, … up to the first upload."""
    chain = [dataset]
    while chain[-1].parent_id is not None and len(chain) < 1000:
        chain.append(chain[-1].parent)
    return chain


def _newest_data(dataset: Dataset) -> Dataset:
    """The newest ready dataset among ``dataset`` and everything appended to it since (any generation)."""
    newest, frontier = dataset, [dataset]
    while frontier:
        children = list(Dataset.objects.filter(parent__in=frontier))
        for child in children:
            if child.status == Dataset.Status.READY and (child.created_at, child.pk) > (
                newest.created_at,
                newest.pk,
            ):
                newest = child
        frontier = children
    return newest


def training_job_warm_start_base(dataset: Dataset) -> ModelVersion | None:
    """The active version of ``dataset`` or, failing that, of the nearest dataset it extends."""
    for candidate in _lineage(dataset):
        version = ModelVersion.objects.filter(dataset=candidate, is_active=True).first()
        if version is not None:
            return version
    return None


def _ensure_ready(dataset: Dataset) -> None:
    if not dataset.is_ready:
        raise ConflictError(
            f"dataset #{dataset.pk} is {dataset.get_status_display()}; train on a ready one",
            {"dataset": dataset.pk, "status": dataset.status},
        )


def training_job_create(
    *, owner: Any, dataset: Dataset, config: Any, base_version: ModelVersion | None = None
) -> TrainingJob:
    """Validate ``config`` by building the trainer's configs, store the job, queue it on ``gpu``.

    With ``warm_start`` the run starts from ``base_version`` (default: the active version of the
    dataset or of the one it extends), stacked deeper, instead of from a fresh shallow model.
    A job whose estimated memory or time is above the site's limits is refused (400), one beyond its
    owner's queued jobs too (429); the estimate is stored on the job (see admission).
    """
    try:
        built = job_config_build(config if config is not None else {})
    except ConfigError as exc:
        raise ApplicationError(
            str(exc), {"field": "config", **({"key": exc.key} if exc.key else {})}
        ) from None
    _ensure_ready(dataset)
    base = None
    if built.warm_start:
        base = base_version or training_job_warm_start_base(dataset)
        if base is None or not base.checkpoint_file:
            raise ApplicationError(
                "warm_start needs an active version of this dataset or of the dataset it extends",
                {"field": "config"},
            )
        if base.model_name != built.model or base.depth != built.schedule.start_blocks:
            raise ApplicationError(
                f"warm_start continues from {base.label} ({base.model_name}, {base.depth} blocks): set model "
                f"{base.model_name!r} and schedule.start_blocks {base.depth}",
                {"field": "config", "base_version": base.pk},
            )
    estimate = training_job_admit(config=built, dataset=dataset)
    with transaction.atomic():
        training_jobs_queue_check(owner=owner)
        job = TrainingJob.objects.create(
            owner=owner, dataset=dataset, config=built.to_dict(), base_version=base, estimate=estimate
        )
        job.checkpoint_dir = f"jobs/{job.pk}"
        job.save(update_fields=["checkpoint_dir"])
        _enqueue(job)
    return job


def training_job_retrain(
    *,
    owner: Any = None,
    dataset: Dataset | None = None,
    version: ModelVersion | None = None,
    final_blocks: int | None = None,
    method: str | None = None,
) -> TrainingJob:
    """Continual learning (StackRec's CL scenario): the deployed model, stacked deeper, on all the data.

    Start from ``version``, or from the active version of ``dataset`` (or of the nearest dataset it
    extends). The data is the newest ready increment appended below the base version's dataset
    (which holds every earlier event too), or that dataset itself when nothing was appended. The
    schedule is the default one, grown automatically from the base version's depth: it stacks
    (function-preserving unless ``method`` says otherwise) while a stage pays, up to
    ``final_blocks`` (default: twice the base depth, or the base job's ceiling if that is deeper),
    with the base job's training settings. The job belongs to the dataset's owner; ``owner`` is
    who asked (an admin may retrain a user's dataset), for the log.
    """
    version, target = training_job_retrain_source(dataset=dataset, version=version)
    config = dict(version.job.config) if version.job is not None else {"model": version.model_name}
    schedule = dict(config.get("schedule") or {})
    ceiling = max(2 * version.depth, int(schedule.get("final_blocks") or 0))
    schedule.update(
        start_blocks=version.depth,
        final_blocks=final_blocks or ceiling,
        method=method or "preserving",
        grow="auto",
        keep="best",
    )
    config.update(schedule=schedule, warm_start=True)
    job = training_job_create(owner=target.owner, dataset=target, config=config, base_version=version)
    logger.info(
        "job #%d: retrain of %s on dataset #%d, %d → %d blocks (asked by %s)",
        job.pk,
        version.label,
        target.pk,
        version.depth,
        schedule["final_blocks"],
        owner or "?",
    )
    return job


def training_job_retrain_source(
    *, dataset: Dataset | None = None, version: ModelVersion | None = None
) -> tuple[ModelVersion, Dataset]:
    """The version a retrain would stack and the dataset it would train on (see
    :func:`training_job_retrain`), or the :class:`ConflictError` it would meet: nothing serving yet,
    no checkpoint to stack from, data not ready. Pages offer a retrain only when this passes."""
    if (dataset is None) == (version is None):
        raise ApplicationError("retrain from a dataset or from a version (one of the two)")
    if version is None:
        version = training_job_warm_start_base(dataset)
        if version is None:
            raise ConflictError(
                f"dataset #{dataset.pk} has no active version to retrain from: train one first",
                {"dataset": dataset.pk},
            )
    if not version.checkpoint_file:
        raise ConflictError(
            f"{version.label} has no PyTorch checkpoint to stack from", {"version": version.pk}
        )
    target = _newest_data(dataset if dataset is not None else version.dataset)
    if version.dataset not in _lineage(target):
        raise ApplicationError(
            f"dataset #{target.pk} does not extend {version.label}'s dataset #{version.dataset_id}",
            {"dataset": target.pk, "version": version.pk},
        )
    _ensure_ready(target)
    return version, target


def training_job_transition(job: TrainingJob, status: str, **fields: Any) -> TrainingJob:
    """Apply a named transition to a row locked by the caller."""
    if not job.can_transition(status):
        raise ConflictError(
            f"job #{job.pk} is {job.get_status_display()} and cannot become {Status(status).label}",
            {"status": job.status},
        )
    job.status = status
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["status", "updated_at", *fields])
    return job


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Cancel: a queued job ends at once; a running one is asked to stop after its current step."""
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == Status.PENDING:
            progress = {k: v for k, v in (locked.progress or {}).items() if k != "waiting"}
            return training_job_transition(
                locked, Status.CANCELLED, finished_at=timezone.now(), progress=progress
            )
        if locked.status == Status.RUNNING:
            return training_job_transition(locked, Status.CANCEL_REQUESTED)
        if locked.status == Status.CANCEL_REQUESTED:
            return locked
        raise ConflictError(f"job #{locked.pk} has already finished ({locked.get_status_display()})")


def training_job_resume(*, job: TrainingJob) -> TrainingJob:
    """Requeue a failed job, or a running one whose worker died (stale heartbeat).

    The run continues after its last finished stage. A stale job that was being cancelled ends
    CANCELLED instead. A failed job is refused (429) when its owner has as many jobs queued as one
    user may.
    """
    return _requeue(job, limited=True)


def _requeue(job: TrainingJob, *, limited: bool) -> TrainingJob:
    """:func:`training_job_resume`; ``limited=False`` for jobs a dead worker left: they were queued and
    running already, and putting them back in the queue must not depend on how full it is."""
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (Status.RUNNING, Status.CANCEL_REQUESTED) and not locked.is_stale:
            raise ConflictError(
                f"job #{locked.pk} is running (heartbeat {locked.heartbeat_at:%H:%M:%S}); cancel it instead",
                {"status": locked.status},
            )
        if locked.status == Status.CANCEL_REQUESTED:
            return training_job_transition(locked, Status.CANCELLED, finished_at=timezone.now())
        if limited and locked.status == Status.FAILED:
            training_jobs_queue_check(owner=locked.owner)
        training_job_transition(locked, Status.PENDING, error="", worker="")
        _enqueue(locked)
        return locked


def training_jobs_requeue_orphaned(*, worker: str = "") -> list[int]:
    """Requeue the jobs a dead worker left RUNNING: those of ``worker`` (it just restarted) or stale ones."""
    requeued = []
    for job in TrainingJob.objects.filter(status__in=(Status.RUNNING, Status.CANCEL_REQUESTED)):
        mine = bool(worker) and job.worker == worker
        if not mine and not job.is_stale:
            continue
        if mine:
            # This worker just started, so nothing of it is running that job any more.
            TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=None)
        try:
            _requeue(job, limited=False)
        except ConflictError:
            continue
        logger.info("job #%d: requeued after its worker %s stopped", job.pk, job.worker or "?")
        requeued.append(job.pk)
    return requeued


def training_jobs_reconcile() -> dict[str, list[int]]:
    """Send again jobs PENDING for longer than ``STUDIO_DISPATCH_RESEND_S`` (their message may be
    lost), and requeue RUNNING jobs whose heartbeat is stale, whatever worker held them."""
    cutoff = timezone.now() - timedelta(seconds=settings.STUDIO_DISPATCH_RESEND_S)
    resent = []
    for job in TrainingJob.objects.filter(status=Status.PENDING, updated_at__lt=cutoff).only("pk"):
        # Touched first, so the next pass waits a whole period again whether or not this send works.
        if TrainingJob.objects.filter(pk=job.pk, status=Status.PENDING).update(updated_at=timezone.now()):
            _enqueue(job)
            resent.append(job.pk)
    return {"jobs_resent": resent, "jobs_requeued": training_jobs_requeue_orphaned()}


# -- claim and run ------------------------------------------------------------------------------


def training_job_claim(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """PENDING → RUNNING in one locked transaction; None if the job is not pending (a redelivery), or
    if its owner runs as many jobs as one user may: it stays PENDING, its progress says why, and it
    is sent again when one of them ends (or by the reconciler, which sends what waits too long)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != Status.PENDING:
            return None
        progress = dict(job.progress or {})
        reason = training_job_wait_reason(job=job)
        if reason:
            if progress.get("waiting") != reason:
                job.progress = {**progress, "waiting": reason}
            # Saved either way: updated_at is when it last waited, so the reconciler waits a whole
            # period before it sends the job again.
            job.save(update_fields=["progress", "updated_at"])
            logger.info("job #%d: %s", job.pk, reason)
            return None
        progress.pop("waiting", None)
        now = timezone.now()
        return training_job_transition(
            job,
            Status.RUNNING,
            worker=worker,
            attempts=job.attempts + 1,
            heartbeat_at=now,
            started_at=job.started_at or now,
            progress=progress,
        )
