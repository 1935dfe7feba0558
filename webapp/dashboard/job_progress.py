"""A job's progress as its page and the job tables show it: the stage timeline, the phases after
training, and how far the whole run is.

All of it is read from the job row: the worker writes the live figures into ``progress`` (see
``webapp.training.services._Progress``) and the final stage reports into ``stages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from webapp.training.models import TrainingJob
from webapp.training.progress import DONE, RUNNING, SKIPPED, WAITING, phases_start


@dataclass(frozen=True)
class StageRow:
    """One stage of a run as the timeline shows it (1-based number; ``wall_s`` is the stage's own time)."""

    number: int
    blocks: int
    steps: int | None
    wall_s: float | None
    stopped_by: str = ""
    note: str = ""
    best: dict[str, float] = field(default_factory=dict)
    running: bool = False
    planned_steps: int | None = None  # while running: the stage's step budget
    share: float = 0.0  # percent of the run's time, for the bar
    kept: bool = False  # the run exported this stage's model
    decision: str = ""  # what the schedule made of the stage (kept, growth stopped, …)


def job_stage_rows(job: TrainingJob) -> list[StageRow]:
    """The stage timeline: the final report once the run wrote it, else the finished stages (why each
    ended, its best validation, the schedule's decision) and the current one as it trains."""
    if job.stages:
        rows = [
            StageRow(
                number=int(s["stage"]) + 1,
                blocks=s["blocks"],
                steps=s.get("steps"),
                wall_s=s.get("wall_s"),
                stopped_by=s.get("stopped_by", ""),
                note=s.get("note", ""),
                best=dict(s.get("best") or {}),
                kept=bool(s.get("kept")) and job.status == TrainingJob.Status.SUCCEEDED,
                decision=s.get("decision", ""),
            )
            for s in job.stages
        ]
    else:
        progress = job.progress or {}
        rows = [
            StageRow(
                number=s["stage"],
                blocks=s["blocks"],
                steps=s.get("steps"),
                wall_s=s.get("wall_s"),
                stopped_by=s.get("stopped_by", ""),
                best=dict(s.get("best") or {}),
                decision=s.get("decision", ""),
            )
            for s in progress.get("finished_stages") or []
        ]
        current = progress.get("stage")
        if job.status in TrainingJob.ACTIVE and current and current not in {r.number for r in rows}:
            started = progress.get("stage_started_s")
            if started is None:  # progress written before stages recorded their start
                started = sum(r.wall_s or 0.0 for r in rows)
            rows.append(
                StageRow(
                    number=current,
                    blocks=progress.get("blocks") or 0,
                    steps=progress.get("step"),
                    planned_steps=progress.get("planned_steps"),
                    wall_s=max(0.0, (progress.get("elapsed_s") or 0.0) - started),
                    best=dict(progress.get("stage_best") or progress.get("metrics") or {}),
                    running=True,
                )
            )
    total = sum(r.wall_s or 0.0 for r in rows) or 1.0
    return [replace(row, share=round(100.0 * (row.wall_s or 0.0) / total, 1)) for row in rows]


@dataclass(frozen=True)
class PhaseRow:
    """A phase after training (final evaluation, promotion gate, export, activation) as the page lists it."""

    name: str
    state: str  # waiting | running | done | skipped | failed | cancelled (the job ended during it)
    done: int | None = None
    total: int | None = None
    unit: str = ""
    wall_s: float | None = None
    note: str = ""

    @property
    def slug(self) -> str:
        return self.name.replace(" ", "-")

    @property
    def percent(self) -> float | None:
        """How far a counted phase is; None where the phase counts nothing (its bar is indeterminate)."""
        if self.state == DONE:
            return 100.0
        if self.total:
            return round(100.0 * min(1.0, (self.done or 0) / self.total), 1)
        return None


def job_phase_rows(job: TrainingJob) -> list[PhaseRow]:
    """The phases after training, each with its state; all waiting while the job trains, none for a
    job that ended before them or ran before jobs recorded them."""
    progress = job.progress or {}
    phases = progress.get("phases")
    if not phases:
        if job.status not in TrainingJob.ACTIVE or "plan" not in progress:
            return []
        phases = phases_start()
    ended = {
        TrainingJob.Status.FAILED: "failed",
        TrainingJob.Status.CANCELLED: "cancelled",
    }.get(job.status)
    rows = []
    for p in phases:
        state = p["state"]
        if ended and state in (RUNNING, WAITING):
            state = ended if state == RUNNING else SKIPPED
        rows.append(
            PhaseRow(
                name=p["name"],
                state=state,
                done=p.get("done"),
                total=p.get("total"),
                unit=p.get("unit", ""),
                wall_s=p.get("wall_s"),
                note=p.get("note", ""),
            )
        )
    return rows


def job_phase_now(job: TrainingJob) -> PhaseRow | None:
    """The phase running now, if the run is past training."""
    if job.status not in TrainingJob.ACTIVE:
        return None
    return next((p for p in job_phase_rows(job) if p.state == RUNNING), None)


def job_run_eta_s(job: TrainingJob) -> float | None:
    """Seconds the run has left at its measured speed, while it trains (:mod:`webapp.training.progress`)."""
    progress = job.progress or {}
    if job.status not in TrainingJob.ACTIVE or progress.get("phases"):
        return None
    return progress.get("run_eta_s")
