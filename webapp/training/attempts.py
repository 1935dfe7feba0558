"""Running one claimed attempt of a training job: stacked training → export → gate → version.

The run is the trainer's :func:`trainer.schedule.run_schedule` with two callbacks: ``on_progress``
writes progress to the job row, ``should_stop`` reads the row for a cancel request. Stage checkpoints
go to the job's folder, so a run that was interrupted (killed worker, failure) continues after its
last finished stage when the job is requeued. With an object store the attempt runs in a scratch
folder of its own (:class:`~webapp.core.storage.Workspace`) and stores each checkpoint, its log and
its export there as they are written, so the next attempt may run on any host.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from serving.artifact import METADATA_FILE
from trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainer.configs import ConfigError
from trainer.data import DataError
from trainer.data.messages import bound_message
from trainer.devices import resolve_device
from trainer.distributed import run_schedule_distributed, visible_gpus
from trainer.evaluation import evaluate, evaluate_popularity
from trainer.export import ExportError, count_items, export_model
from trainer.runs import DataSpec, prepare_split
from trainer.schedule import ScheduleEvent, TimeLimitError, run_schedule
from trainer.transfer import remap_items
from webapp.core.exceptions import ApplicationError
from webapp.core.retries import db_retry
from webapp.core.storage import StorageError, Workspace, storage_copy, storage_exists, storage_list
from webapp.datasets.events import normalised_read_options
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.registry.promotion import promotion_judge, promotion_unscored
from webapp.registry.services import model_version_activate, model_version_create
from webapp.training.admission import (
    training_job_wall_limit_s,
    training_jobs_wake,
)
from webapp.training.configs import JobConfig, job_config_build
from webapp.training.models import TrainingJob, TrainingPoint
from webapp.training.progress import (
    ACTIVATION,
    DONE,
    EXPORT,
    FINAL_EVALUATION,
    PROMOTION_GATE,
    RUNNING,
    SKIPPED,
    phases_start,
    run_percent_and_eta,
    run_plan,
)
from webapp.training.services import (
    training_job_claim,
    training_job_transition,
    training_job_warm_start_base,
)
from webapp.training.worker_log import attempt_log

logger = logging.getLogger(__name__)

Status = TrainingJob.Status
PROGRESS_WRITE_S = 1.0  # at most one progress write per second (evaluations and stage ends always)
CANCEL_CHECK_S = 1.0  # should_stop reads the database at most this often
STAGE_FILE = re.compile(r"stage-\d+\.pt")  # the trainer's stage checkpoints (trainer.schedule)


class JobError(RuntimeError):
    """A run that cannot go on, with the reason for the user (bad data, bad config, failed export)."""


class LeaseLost(RuntimeError):
    """A newer attempt holds the job (this worker was presumed dead): this one stops, writing nothing."""


def _holding(job_id: int, lease: int) -> Any:
    """The job's row while attempt ``lease`` still holds it: every write of an attempt goes through
    this filter (a fencing token), so a worker that lost its lease cannot write late."""
    return TrainingJob.objects.filter(
        pk=job_id, attempts=lease, status__in=(Status.RUNNING, Status.CANCEL_REQUESTED)
    )


class _Heartbeat:
    """A thread that stamps the job's heartbeat while the run is alive (also during evaluation/export)."""

    def __init__(self, job_id: int, lease: int, interval_s: float) -> None:
        self.job_id, self.lease, self.interval_s = job_id, lease, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        if self.interval_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    if not _holding(self.job_id, self.lease).update(heartbeat_at=timezone.now()):
                        return  # the lease is gone; the run notices at its next cancel check
                except Exception:  # a locked or restarting database must not kill the run
                    logger.warning("job #%d: heartbeat write failed", self.job_id, exc_info=True)
                    connection.close()  # a terminated connection is opened anew for the next beat
        finally:
            connection.close()


class _Progress:
    """``on_progress`` for the schedule, then the phases after training: what the job page shows.

    The job's ``progress`` holds, for the stage training now: ``stage`` (1-based) of ``stages``,
    ``blocks``, ``epoch`` (1-based, the one being trained) of ``epochs``, ``step`` of
    ``planned_steps``, ``loss``, ``metrics`` (the last validation), ``stage_best`` (its best
    validation so far by the run's metric), ``stage_started_s``, ``stage_eta_s``, ``elapsed_s`` and
    ``positions_per_s``; ``finished_stages`` with their steps, time, best validation, why each ended
    and what the schedule decided; ``popularity``, the most-popular baseline's validation metrics;
    ``plan``, ``run_percent`` and ``run_eta_s`` (see :mod:`webapp.training.progress`); and, once
    training ended, ``phases``: each with its ``state`` and, where it counts something, ``done`` of
    ``total`` ``unit``.
    """

    def __init__(self, job: TrainingJob, lease: int, *, metric: str) -> None:
        self.job_id, self.lease, self.metric = job.pk, lease, metric
        self.progress: dict[str, Any] = dict(job.progress or {}, attempt=job.attempts)
        for stale in ("phases", "stage_best"):  # an earlier attempt's: this one trains its stage again
            self.progress.pop(stale, None)
        self.finished: list[dict[str, Any]] = list(self.progress.get("finished_stages", []))
        self.last_write = 0.0
        self.pending: list[TrainingPoint] = []  # points not written yet (step events are throttled)
        self.origin = time.monotonic()  # the run's clock starts here: elapsed_s is counted from it

    def start(self, *, plan: dict[str, Any], popularity: dict[str, float]) -> None:
        """Before the first step: the run's work plan and the baseline its curves are drawn against."""
        self.progress.update(plan=plan, popularity=dict(popularity))
        self._save()

    def __call__(self, staged: ScheduleEvent) -> None:
        event = staged.event
        progress = self.progress
        self.origin = time.monotonic() - staged.wall_s
        if progress.get("stage") != staged.stage + 1:
            progress["stage_best"] = {}
        if event.metrics:
            progress["metrics"] = dict(event.metrics)
            best = progress.get("stage_best") or {}
            if event.kind == "end" or event.metrics.get(self.metric, 0.0) > best.get(self.metric, -1.0):
                progress["stage_best"] = dict(event.metrics)  # the end event carries the stage's best
        epochs = math.ceil(event.planned_steps / event.steps_per_epoch) if event.steps_per_epoch else 0
        progress.update(
            stage=staged.stage + 1,
            stages=staged.stages,
            blocks=staged.blocks,
            epoch=min(event.epoch + 1, epochs) if epochs else event.epoch + 1,
            epochs=epochs,
            step=event.step,
            planned_steps=event.planned_steps,
            loss=event.loss if event.loss is not None else progress.get("loss"),
            stage_eta_s=event.eta_s,
            stage_started_s=round(staged.offset_s, 3),
            elapsed_s=round(staged.wall_s, 3),
            positions_per_s=event.positions_per_s,
        )
        if event.kind == "end":
            self.finished.append(
                {
                    "stage": staged.stage + 1,
                    "blocks": staged.blocks,
                    "steps": event.step,
                    "planned_steps": event.planned_steps,
                    "wall_s": event.wall_s,
                    "stopped_by": event.stopped_by,
                    "best": dict(event.metrics or {}),
                    "decision": staged.decision,
                }
            )
            progress["finished_stages"] = self.finished
        point = self._point(staged)
        if point is not None:
            self.pending.append(point)
        now = time.monotonic()
        if event.kind == "step" and now - self.last_write < PROGRESS_WRITE_S:
            return  # its loss point waits for the next write
        self.last_write = now
        self._save()

    def phase(
        self,
        name: str,
        state: str,
        *,
        done: int | None = None,
        total: int | None = None,
        unit: str = "",
        note: str = "",
        save: bool = True,
    ) -> dict[str, Any]:
        """Set phase ``name``'s state (and count) after training, written at once unless ``save`` is
        false (the last one is written with the job's end, in the same transaction); the progress."""
        progress = self.progress
        if "phases" not in progress:
            progress["phases"] = phases_start()
            progress["stage_eta_s"] = None  # the training stage is over, and its estimate with it
        elapsed = round(time.monotonic() - self.origin, 3)
        entry = next(p for p in progress["phases"] if p["name"] == name)
        if state == RUNNING and entry["state"] != RUNNING:
            entry["started_s"] = elapsed
        if state in (DONE, SKIPPED) and "started_s" in entry:
            entry["wall_s"] = round(elapsed - entry["started_s"], 3)
        entry["state"] = state
        entry.update({k: v for k, v in (("done", done), ("total", total)) if v is not None})
        entry.update({k: v for k, v in (("unit", unit), ("note", note)) if v})
        progress["elapsed_s"] = elapsed
        if save:
            self._save()
        else:
            self._derive()
        return progress

    def _derive(self) -> None:
        if "plan" in self.progress:
            self.progress["run_percent"], self.progress["run_eta_s"] = run_percent_and_eta(self.progress)

    def _save(self) -> None:
        self._derive()
        progress = self.progress

        def write() -> None:
            with transaction.atomic():
                if not _holding(self.job_id, self.lease).update(
                    progress=progress, heartbeat_at=timezone.now()
                ):
                    raise LeaseLost(f"job #{self.job_id}: attempt {self.lease} lost its lease")
                TrainingPoint.objects.bulk_create(self.pending)

        db_retry(write, what=f"job #{self.job_id} progress")
        self.pending = []

    def _point(self, staged: ScheduleEvent) -> TrainingPoint | None:
        """The curve point of this event: training loss, a validation, or a stage end."""
        event = staged.event
        common = {
            "job_id": self.job_id,
            "stage": staged.stage + 1,
            "blocks": staged.blocks,
            "step": event.step,
            "epoch": event.epoch,
            "wall_s": round(staged.wall_s, 3),
        }
        Kind = TrainingPoint.Kind
        if event.kind == "step" and event.loss is not None:
            return TrainingPoint(kind=Kind.LOSS, loss=event.loss, **common)
        if event.kind == "eval" and event.metrics:
            return TrainingPoint(kind=Kind.VALID, loss=event.loss, metrics=dict(event.metrics), **common)
        if event.kind == "end":
            return TrainingPoint(kind=Kind.STAGE, metrics=dict(event.metrics or {}), **common)
        return None


class _CancelCheck:
    """``should_stop`` for the schedule: true once the job row says CANCEL_REQUESTED."""

    def __init__(self, job_id: int, lease: int) -> None:
        self.job_id, self.lease = job_id, lease
        self.last_check = 0.0
        self.stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stop and now - self.last_check >= CANCEL_CHECK_S:
            self.last_check = now
            status = db_retry(
                lambda: _holding(self.job_id, self.lease).values_list("status", flat=True).first(),
                what=f"job #{self.job_id} cancel check",
            )
            if status is None:
                raise LeaseLost(f"job #{self.job_id}: attempt {self.lease} lost its lease")
            self.stop = status == Status.CANCEL_REQUESTED
        return self.stop


def _finish(job_id: int, lease: int, status: str, **fields: Any) -> TrainingJob:
    """End attempt ``lease`` of the job; :class:`LeaseLost` (nothing written) if it is not the holder."""

    def write() -> TrainingJob:
        with transaction.atomic():
            job = _holding(job_id, lease).select_for_update().first()
            if job is None:
                raise LeaseLost(f"job #{job_id}: attempt {lease} lost its lease")
            # From CANCEL_REQUESTED too: a run that finished before it noticed the cancel keeps its outcome.
            return training_job_transition(job, status, finished_at=timezone.now(), **fields)

    finished = db_retry(write, what=f"job #{job_id} end")
    try:  # a running place is free: the owner's next waiting job need not wait for the reconciler
        with transaction.atomic():  # a savepoint: a failure here leaves a publishing transaction usable
            training_jobs_wake(owner_id=finished.owner_id)
    except Exception:  # the reconciler sends it anyway; the end of this run stands
        logger.warning("job #%d: could not send the owner's next waiting job", job_id, exc_info=True)
    return finished


def _write(job_id: int, lease: int, **fields: Any) -> None:
    """Update the job's row as attempt ``lease``; :class:`LeaseLost` if it no longer holds the job."""
    if not db_retry(lambda: _holding(job_id, lease).update(**fields), what=f"job #{job_id}"):
        raise LeaseLost(f"job #{job_id}: attempt {lease} lost its lease")


def _stage_folder(job: TrainingJob, lease: int, workspace: Workspace) -> Path:
    """Attempt ``lease``'s stage checkpoints, seeded with those of the newest earlier attempt that
    finished a stage: a resumed run continues after it, and no two attempts write the same file
    (checkpoints are written to a temporary name and renamed, so the shared links stay intact).

    With an object store the earlier checkpoints are copied inside the store to this attempt's
    names (so the next attempt finds them there too) and fetched into the workspace."""
    if not workspace.local:
        return _stage_folder_stored(job, lease, workspace)
    folder = job.checkpoint_path / f"attempt-{lease}" / "stages"
    if folder.is_dir():
        return folder
    earlier = [job.checkpoint_path / f"attempt-{n}" / "stages" for n in range(lease - 1, 0, -1)]
    earlier.append(job.checkpoint_path / "stages")  # where jobs kept them before attempts had folders
    source = next((d for d in earlier if any(d.glob("stage-*.pt"))), None)
    folder.mkdir(parents=True)
    for path in sorted(source.glob("stage-*.pt")) if source else []:
        try:
            os.link(path, folder / path.name)
        except OSError:  # a file system without hard links
            shutil.copy2(path, folder / path.name)
    return folder


def _stages_name(job: TrainingJob, lease: int) -> str:
    return f"{job.checkpoint_dir}/attempt-{lease}/stages"


def _stage_folder_stored(job: TrainingJob, lease: int, workspace: Workspace) -> Path:
    mine = _stages_name(job, lease)
    folder = workspace.path(mine)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = [f for f in storage_list(mine) if STAGE_FILE.fullmatch(f.basename)]
    if not checkpoints:
        earlier = [_stages_name(job, n) for n in range(lease - 1, 0, -1)]
        earlier.append(f"{job.checkpoint_dir}/stages")
        for candidate in earlier:
            found = [f for f in storage_list(candidate) if STAGE_FILE.fullmatch(f.basename)]
            if found:
                for stored in found:
                    storage_copy(stored.name, f"{mine}/{stored.basename}")
                checkpoints = [f for f in storage_list(mine) if STAGE_FILE.fullmatch(f.basename)]
                break
    for stored in checkpoints:
        workspace.fetch(stored.name)
    return folder


class _StagePush:
    """``on_progress`` that also stores each stage checkpoint once the trainer has written it (with
    an object store), so a worker that dies later loses no finished stage: the trainer saves a
    stage after that stage's last event, so each event looks for new files (step events at most
    once a second), and :meth:`push` runs once more when the schedule returns or fails."""

    def __init__(self, workspace: Workspace, folder: Path, on_progress: Any) -> None:
        self.workspace, self.folder, self.on_progress = workspace, folder, on_progress
        self.pushed = {p.name: self._stamp(p) for p in folder.glob("stage-*.pt")}  # fetched ones
        self.last = 0.0

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size

    def __call__(self, staged: ScheduleEvent) -> None:
        self.on_progress(staged)
        now = time.monotonic()
        if staged.event.kind != "step" or now - self.last >= PROGRESS_WRITE_S:
            self.last = now
            self.push()

    def push(self) -> None:
        if self.workspace.local:
            return
        for path in sorted(self.folder.glob("stage-*.pt")):
            stamp = self._stamp(path)
            if self.pushed.get(path.name) != stamp:
                self.workspace.push(self.workspace.name_of(path))
                self.pushed[path.name] = stamp


def _initial_model(
    job: TrainingJob, config: JobConfig, vocab: Any, workspace: Workspace
) -> tuple[Any, ModelVersion]:
    """For warm starts: the base version's trained model, moved onto this dataset's vocabulary."""
    base = job.base_version or training_job_warm_start_base(job.dataset)
    if base is None or not base.checkpoint_file:
        raise JobError("warm_start: the base version was deleted; start the job without warm_start")
    checkpoint = load_checkpoint(workspace.fetch(base.checkpoint_file))
    if len(checkpoint.model.blocks) != config.schedule.start_blocks:
        raise JobError(f"warm_start: {base.label} has {len(checkpoint.model.blocks)} blocks")
    logger.info("job #%d: warm start from %s", job.pk, base.label)
    return remap_items(checkpoint.model, checkpoint.vocab, vocab), base


def _check_gpus(train: Any) -> None:
    """A job that asks for more GPUs than this worker's host has fails at once, saying so."""
    if train.gpus > 1 and visible_gpus() < train.gpus:
        raise JobError(f"this job asks for {train.gpus} GPUs; the worker's host has {visible_gpus()}")


def _train_and_publish(job: TrainingJob, lease: int, workspace: Workspace) -> TrainingJob:
    config = job_config_build(job.config)
    _check_gpus(config.train)
    dataset = job.dataset
    if not dataset.events_file or not storage_exists(dataset.events_file):
        raise JobError(f"dataset #{dataset.pk} has no parsed events; parse it again")
    spec = DataSpec(
        path=str(workspace.fetch(dataset.events_file)),  # streamed into the workspace if stored remotely
        read=normalised_read_options(bool((dataset.stats or {}).get("has_timestamps"))),
        split=config.split["split"],
        test_share=config.split["test_share"],
        valid_share=config.split["valid_share"],
    )
    split = prepare_split(spec)
    train = config.train
    if not train.threads and settings.STUDIO_TRAINING_THREADS:
        train = dataclasses.replace(train, threads=settings.STUDIO_TRAINING_THREADS)
    stages_dir = _stage_folder(job, lease, workspace)
    finished = max((int(p.stem.rpartition("-")[2]) + 1 for p in stages_dir.glob("stage-*.pt")), default=0)
    resuming = finished > 0
    # A resumed run retrains the stage it was in: that stage's points of the interrupted attempt go.
    TrainingPoint.objects.filter(job=job, stage__gt=finished).delete()
    device = resolve_device(train.device)
    options = {"max_len": train.max_len, "exclude_seen": train.exclude_seen, "device": device}
    metrics: dict[str, Any] = dict(job.metrics or {})
    initial = None
    if config.warm_start and not resuming:
        initial, base = _initial_model(job, config, split.vocab, workspace)
        # The deployed model on this run's test cases: what the retrain is measured against.
        metrics["previous"] = {
            "version": base.label,
            "blocks": len(initial.blocks),
            "test": evaluate(initial, split.test, **options).metrics,
        }
        _write(job.pk, lease, metrics=metrics)

    # Popularity on the validation cases, computed once: the baseline the live curves are drawn
    # against, and the gate's floor (the test cases get it at the end, as the candidate does).
    popularity = {"max_len": train.max_len, "exclude_seen": train.exclude_seen}
    valid_popularity = evaluate_popularity(split.train, split.valid, split.n_items, **popularity).metrics
    progress = _Progress(job, lease, metric=train.metric)
    carried = initial is not None and config.schedule.grow == "fixed"  # validated, not trained
    plan = run_plan(config, split, carried=carried, serving=training_job_warm_start_base(dataset) is not None)
    progress.start(plan=plan, popularity=valid_popularity)
    # The run stops cleanly at its wall-time limit and keeps the best model so far (trainer.schedule).
    schedule = dataclasses.replace(config.schedule, time_limit_s=training_job_wall_limit_s(config))
    stage_push = _StagePush(workspace, stages_dir, progress)
    run: Any = run_schedule
    data: Any = split
    if train.gpus > 1:  # one process per GPU under torchrun; progress and cancels pass through this one
        workdir = workspace.path(f"{job.checkpoint_dir}/attempt-{lease}/ranks")
        run = functools.partial(run_schedule_distributed, processes=train.gpus, workdir=workdir)
        data = spec
        logger.info(
            "job #%d: training on %d GPUs (ranks' log: %s)", job.pk, train.gpus, workdir / "ranks.log"
        )
    try:
        result = run(
            config.model,
            config.model_config,
            data,
            train,
            schedule,
            on_progress=stage_push,
            should_stop=_CancelCheck(job.pk, lease),
            checkpoint_dir=stages_dir,
            initial_model=initial,
        )
    finally:  # the stages finished so far are stored whatever ended the run: a resume starts there
        stage_push.push()
    stages = [
        {k: v for k, v in dataclasses.asdict(s).items() if k != "history"} | {"validations": len(s.history)}
        for s in result.stages
    ]
    _write(job.pk, lease, stages=stages, heartbeat_at=timezone.now())
    if result.cancelled:
        logger.info("job #%d: cancelled; stage checkpoints kept in %s", job.pk, stages_dir)
        return _finish(job.pk, lease, Status.CANCELLED)

    model = result.model  # the kept stage's: the best over all stages, or the last with keep: final
    kept = result.kept
    metrics["kept"] = {"stage": kept.stage + 1, "blocks": kept.blocks, "growth": result.growth}
    if result.time_limited:  # the growth sentence says so: "stopped at the wall-time limit of 2 h; …"
        metrics["kept"]["time_limited"] = True
        logger.info("job #%d: %s", job.pk, result.growth)
    cases = len(split.valid) + len(split.test)
    progress.phase(FINAL_EVALUATION, RUNNING, done=0, total=cases, unit="cases")
    metrics["valid"] = evaluate(model, split.valid, **options).metrics
    progress.phase(FINAL_EVALUATION, RUNNING, done=len(split.valid), total=cases)
    metrics["test"] = evaluate(model, split.test, **options).metrics
    # Popularity on the same cases, computed the same way: the floor every served model must beat.
    metrics["popularity"] = {
        "valid": valid_popularity,
        "test": evaluate_popularity(split.train, split.test, split.n_items, **popularity).metrics,
    }
    progress.phase(FINAL_EVALUATION, DONE, done=cases, total=cases)
    serving = training_job_warm_start_base(dataset)
    scoring = f"scoring {serving.label} on the validation cases" if serving else "against popularity"
    progress.phase(PROMOTION_GATE, RUNNING, note=scoring)
    promotion = promotion_judge(serving=serving, split=split, metrics=metrics, device=device)
    progress.phase(PROMOTION_GATE, DONE, note=promotion.reason)
    progress.phase(EXPORT, RUNNING)
    model = model.cpu().eval()
    # Every file of a version is this attempt's own, written once: a registered version never changes.
    final_name = f"{job.checkpoint_dir}/attempt-{lease}/final.pt"
    save_checkpoint(
        workspace.path(final_name),
        model=model,
        vocab=split.vocab,
        train_config=train.to_dict(),
        extra={"data": spec.to_dict()},
    )
    workspace.push(final_name)
    artifact_rel = f"artifacts/dataset-{dataset.pk}/job-{job.pk}-attempt-{lease}"
    if ModelVersion.objects.filter(artifact_dir=artifact_rel).exists():
        raise JobError(f"attempt {lease} of job #{job.pk} is registered already; its files stay as they are")
    export_model(
        model,
        split.vocab,
        workspace.path(artifact_rel),
        item_counts=count_items(split.train, split.n_items),
        config=config.export,
        train_config=train.to_dict(),
        metrics=metrics,
        data={"dataset": dataset.pk, "name": dataset.name, **(dataset.stats or {})},
        overwrite=True,  # only this attempt's own folder (a crash mid-export left it unregistered)
    )
    # metadata.json last: a reader that finds it finds every file it names (the version is
    # registered below only once all are stored).
    workspace.push_folder(artifact_rel, last=(METADATA_FILE,))
    progress.phase(EXPORT, DONE)

    def publish() -> tuple[TrainingJob, ModelVersion, str]:
        """Register, maybe activate, succeed: one transaction, tried again whole if the database drops."""
        decision = promotion
        with transaction.atomic():
            Dataset.objects.select_for_update().get(pk=dataset.pk)  # no activation slips in meanwhile
            now_serving = training_job_warm_start_base(dataset)
            if decision.activate and (now_serving and now_serving.pk) != (serving and serving.pk):
                decision = promotion_unscored(
                    candidate=metrics["valid"],
                    popularity=metrics["popularity"]["valid"],
                    why=f"the serving version changed to {now_serving.label if now_serving else 'none'} "
                    "while this one was judged; compare them and activate by hand",
                )
            version = model_version_create(
                job=job,
                artifact_dir=artifact_rel,
                checkpoint_file=final_name,
                metrics=metrics,
                training_time_s=round(result.wall_s, 3),
                depth=len(model.blocks),
                promotion=decision.to_dict(),
            )
            # Activated in the same transaction, so whoever sees the job SUCCEEDED also sees its
            # version serving (or the reason it does not).
            if decision.activate and not version.is_active:
                model_version_activate(version=version)
            state, note = (
                (DONE, f"serving as {version.label}") if version.is_active else (SKIPPED, decision.reason)
            )
            shown = progress.phase(ACTIVATION, state, note=note, save=False)
            finished = _finish(
                job.pk, lease, Status.SUCCEEDED, metrics=metrics, progress=shown
            )  # rolls back if lost
        return finished, version, decision.reason

    finished, version, reason = db_retry(publish, what=f"job #{job.pk} publish")
    logger.info("job #%d: succeeded as %s; %s", job.pk, version.label, reason)
    return finished


def training_job_run(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """Claim and run a job to a registered version; returns None if it was not pending.

    Bad data, configuration or artifacts end the job FAILED with the reason (never retried); the
    stage checkpoints stay, so a resumed job continues where it stopped.
    """
    job = training_job_claim(job_id=job_id, worker=worker)
    if job is None:
        logger.info("job #%s: not claimed (not pending, or waiting for a running place)", job_id)
        return None
    lease = job.attempts
    with Workspace(f"job-{job.pk}-attempt-{lease}") as workspace, attempt_log(job, lease, workspace):
        logger.info("job #%d: running on %s (attempt %d)", job.pk, worker or "this process", lease)
        try:
            try:
                with _Heartbeat(job.pk, lease, settings.STUDIO_HEARTBEAT_INTERVAL_S):
                    return _train_and_publish(job, lease, workspace)
            except (
                JobError,
                ConfigError,
                DataError,
                CheckpointError,
                ExportError,
                ApplicationError,
                StorageError,  # a stored input gone, or an object store away after boto3's retries
                TimeLimitError,  # the wall-time limit came before any stage was validated
            ) as exc:
                message = getattr(exc, "message", None) or str(exc)
                logger.info("job #%d: failed: %s", job.pk, message)
                # What the job page and the API show: short, and never a path of this server's storage.
                for root in (settings.MEDIA_ROOT, workspace.root):
                    message = message.replace(str(root).rstrip("/") + "/", "")
                message = bound_message(message)
                return _finish(job.pk, lease, Status.FAILED, error=message)
            except SoftTimeLimitExceeded:
                limit = settings.STUDIO_TRAINING_TIME_LIMIT_S
                error = f"the run reached the time limit ({limit} s); resume it"
                return _finish(job.pk, lease, Status.FAILED, error=error)
            except LeaseLost:
                raise
            except Exception as exc:
                reference = uuid.uuid4().hex[:10]
                logger.exception("job #%d: unexpected error, reference %s", job.pk, reference)
                close_old_connections()
                error = f"internal error ({type(exc).__name__}), reference {reference}; see the worker log"
                return _finish(job.pk, lease, Status.FAILED, error=error)
        except LeaseLost:
            logger.warning(
                "job #%d: attempt %d lost its lease to a newer attempt; stopped without writing",
                job.pk,
                lease,
            )
            return None
