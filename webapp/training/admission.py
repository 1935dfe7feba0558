"""What a job may ask for: its estimated cost when it is accepted, its owner's share of the workers.

- **Cost.** :func:`training_job_admit` estimates the run's peak memory and time from its
  configuration and the dataset's stats (:mod:`trainer.budget`) and refuses (400) a job above
  ``STUDIO_JOB_MAX_MEMORY_BYTES`` or ``STUDIO_JOB_MAX_ESTIMATED_S``, saying the estimate, the limit
  and which settings to turn. The estimate is stored on the job for the API and the job page.
- **Wall time.** A run stops cleanly at :func:`training_job_wall_limit_s`, keeping its best model
  (``trainer.schedule``: the schedule's ``time_limit_s``).
- **Queue.** An owner may have ``STUDIO_JOBS_MAX_QUEUED_PER_USER`` jobs queued; creating or
  resuming beyond is refused (429) by :func:`training_jobs_queue_check`.
- **Running.** A worker claims a job only while its owner runs fewer than
  ``STUDIO_JOBS_MAX_RUNNING_PER_USER`` (:func:`training_job_wait_reason`); otherwise the job stays
  queued with the reason in its progress, and is sent again when one of the owner's runs ends
  (:func:`training_jobs_wake`) or by the reconciler.

The limits count per owner (a retrain an admin starts on a user's dataset is the user's), and
superusers are not exempt: the limits protect the workers everyone shares, and whoever runs the
site raises a setting rather than skipping it. 0 turns a limit off.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from trainer.budget import DataSize, bytes_words, run_estimate
from trainer.schedule import StackingSchedule, duration_words
from webapp.core.dispatch import task_send_on_commit
from webapp.core.exceptions import ApplicationError, TooManyRequestsError
from webapp.datasets.models import Dataset
from webapp.training.configs import JobConfig
from webapp.training.models import TrainingJob

logger = logging.getLogger(__name__)

Status = TrainingJob.Status
RUNNING = (Status.RUNNING, Status.CANCEL_REQUESTED)
# Time the end of a run needs after training (final evaluation, export, publishing): the wall-time
# limit stays this far under the Celery hard limit, which kills the task without exporting anything.
FINISH_MARGIN_S = 900.0


def training_job_wall_limit_s(config: JobConfig) -> float:
    """The wall-clock seconds the run may train: the site's limit, the config's own if lower, and
    always under the Celery hard limit (with time left to export); 0 if none applies."""
    limits = [settings.STUDIO_JOB_MAX_WALL_S, config.schedule.time_limit_s]
    hard = settings.STUDIO_TRAINING_TIME_LIMIT_S
    if hard:
        limits.append(max(hard - FINISH_MARGIN_S, hard / 2))
    limit = min((value for value in limits if value), default=0.0)
    return min(limit, StackingSchedule.bounds()["time_limit_s"].hi)


def training_job_admit(*, config: JobConfig, dataset: Dataset) -> dict[str, Any] | None:
    """The run's estimate (to store on the job), or :class:`ApplicationError` when it is above a
    limit; None when the dataset has no stats to estimate from (a dataset parsed before they existed)."""
    stats = dataset.stats or {}
    if not all(key in stats for key in ("n_items", "n_events", "n_sequences")):
        logger.warning("dataset #%s has no stats: job accepted without an estimate", dataset.pk)
        return None
    size = DataSize.from_stats(stats, split=config.split["split"], valid_share=config.split["valid_share"])
    flops = settings.STUDIO_JOB_ASSUMED_FLOPS
    # What the configuration asks for, its own caps included (a stage's time_budget_s, the schedule's
    # time_limit_s) but not the site's wall-time limit: that one is a backstop, and a job that asks
    # for far more than it allows is better refused now than cut short hours from now.
    estimate = run_estimate(
        config.model, config.model_config, config.train, config.schedule, size, flops_per_s=flops
    )
    stored = {**estimate.to_dict(), "wall_limit_s": training_job_wall_limit_s(config)}
    memory_limit = settings.STUDIO_JOB_MAX_MEMORY_BYTES
    if memory_limit and estimate.peak_bytes > memory_limit:
        raise ApplicationError(
            f"this job needs about {bytes_words(estimate.peak_bytes)} of memory at its peak (estimated), "
            f"above the limit of {bytes_words(memory_limit)}: {estimate.memory_advice()}",
            {"field": "config", "estimate": stored, "limit_bytes": memory_limit},
        )
    time_limit = settings.STUDIO_JOB_MAX_ESTIMATED_S
    if time_limit and estimate.seconds > time_limit:
        raise ApplicationError(
            f"this job would train for about {duration_words(estimate.seconds)} (estimated at "
            f"{flops:.2g} FLOP/s, every stage to its whole budget), above the limit of "
            f"{duration_words(time_limit)}: "
            f"{estimate.time_advice()}",
            {"field": "config", "estimate": stored, "limit_s": time_limit},
        )
    return stored


def _counts(owner_id: int) -> tuple[int, int]:
    """(queued, running) jobs of an owner; a running job whose worker died does not count."""
    jobs = TrainingJob.objects.filter(owner_id=owner_id)
    fresh = timezone.now() - timedelta(seconds=settings.STUDIO_HEARTBEAT_STALE_S)
    return (
        jobs.filter(status=Status.PENDING).count(),
        jobs.filter(status__in=RUNNING, heartbeat_at__gte=fresh).count(),
    )


def training_jobs_queue_check(*, owner: Any) -> None:
    """Refuse (429) one more queued job for ``owner`` at the limit; call inside the transaction that
    queues it (after any job row it locks): the owner's row is locked, so two requests at once cannot
    both take the last place."""
    limit = settings.STUDIO_JOBS_MAX_QUEUED_PER_USER
    if not limit:
        return
    _lock_owner(owner.pk)
    queued, running = _counts(owner.pk)
    if queued >= limit:
        raise TooManyRequestsError(
            f"{owner} has {_jobs(queued)} queued and {running} running; at most {limit} may wait per user "
            "(DJANGO_JOBS_MAX_QUEUED_PER_USER): wait for one to start, or cancel one",
            {"queued": queued, "running": running, "limit": limit},
        )


def training_job_wait_reason(*, job: TrainingJob) -> str:
    """Why ``job`` must not start now (its owner runs as many jobs as one user may), or "".

    Call inside the claim's transaction, after locking the job's row: the owner's row is locked next,
    so two workers claiming two of one owner's jobs at once count each other. (Every path takes job
    rows before the owner's row, so the two locks never wait on each other in a cycle.)
    """
    limit = settings.STUDIO_JOBS_MAX_RUNNING_PER_USER
    if not limit:
        return ""
    _lock_owner(job.owner_id)
    _, running = _counts(job.owner_id)
    if running < limit:
        return ""
    return (
        f"waiting: its owner runs {_jobs(running)} already, the most one user may run at once "
        f"(DJANGO_JOBS_MAX_RUNNING_PER_USER={limit}); it starts when one of them ends"
    )


def _lock_owner(owner_id: int) -> None:
    """Serialise the counting of one owner's jobs (a row lock on PostgreSQL; SQLite's write
    transactions are serial already)."""
    get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk", flat=True).first()


def training_jobs_wake(*, owner_id: int) -> int | None:
    """Send the oldest of the owner's jobs that wait for a running place (one just ended); its id."""
    waiting = TrainingJob.objects.filter(owner_id=owner_id, status=Status.PENDING).order_by(
        "created_at", "pk"
    )
    for job in waiting:
        if (job.progress or {}).get("waiting"):
            from webapp.training.tasks import run_job

            task_send_on_commit(run_job, job.pk, what=f"job #{job.pk}")
            return job.pk
    return None


def _jobs(n: int) -> str:
    return f"{n} job{'' if n == 1 else 's'}"
