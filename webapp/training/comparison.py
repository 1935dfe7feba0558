"""Two training runs side by side: validation curves against wall time, final metrics, the speedup.

The speedup is the one ``bench/stackrec.py`` reports: the reference run's (scratch's) time to its
best validation value, over the time the other run needs to first come within 1 % (relative) of
that value. Both also come with the optimiser steps they took, summed over stages: time is
steps × cost per step, and the steps say whether a run won by needing fewer of them or by taking
cheaper (shallower) ones. Validation values only compare on the same validation cases, so runs on
different data (a retrain on a grown log against the version it started from) get no speedup; they
are compared on the new data's test cases instead, where the retrain job scored the previous
version first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.scenarios import REACH_TOLERANCE
from trainer.schedule import NO_STACKING
from webapp.training.models import TrainingJob, TrainingPoint


@dataclass
class RunSummary:
    job: TrainingJob
    label: str
    model: str
    method: str
    start_blocks: int
    final_blocks: int
    wall_s: float
    best_valid: float | None  # the exported (kept) model's validation value
    time_to_best_s: float | None  # when the run first had that model
    steps_to_best: int | None
    test: dict[str, float]
    curve: list[dict[str, Any]]
    stage_ends: list[dict[str, Any]]
    kept_blocks: int | None = None  # depth of the exported model
    growth: str = ""  # why the run stopped growing where it did
    popularity_test: dict[str, float] = field(default_factory=dict)  # on the same test cases
    promotion: dict[str, Any] = field(default_factory=dict)  # the gate's decision on its version

    @property
    def is_scratch(self) -> bool:
        return self.method == NO_STACKING

    def reach(self, target: float) -> dict[str, Any] | None:
        """The first validation point within the tolerance of ``target``: its ``t`` and ``steps``."""
        threshold = target * (1 - REACH_TOLERANCE)
        return next((p for p in self.curve if p["value"] >= threshold), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job.pk,
            "label": self.label,
            "model": self.model,
            "method": self.method,
            "start_blocks": self.start_blocks,
            "final_blocks": self.final_blocks,
            "wall_s": self.wall_s,
            "best_valid": self.best_valid,
            "time_to_best_s": self.time_to_best_s,
            "steps_to_best": self.steps_to_best,
            "test": self.test,
            "curve": self.curve,
            "stage_ends": self.stage_ends,
            "kept_blocks": self.kept_blocks,
            "growth": self.growth,
            "popularity_test": self.popularity_test,
            "promotion": self.promotion,
        }


@dataclass
class Comparison:
    metric: str
    runs: list[RunSummary]
    reference: RunSummary | None = None
    speedup: float | None = None  # by wall time, which a loaded machine distorts
    steps_ratio: float | None = None  # the reference's optimiser steps over the other run's
    time_to_reach_s: float | None = None
    steps_to_reach: int | None = None
    note: str = ""
    # For a retrain against the version it started from: that version on the new test cases.
    previous_on_new_data: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "runs": [run.to_dict() for run in self.runs],
            "reference": self.reference.job.pk if self.reference else None,
            "speedup": self.speedup,
            "steps_ratio": self.steps_ratio,
            "time_to_reach_s": self.time_to_reach_s,
            "steps_to_reach": self.steps_to_reach,
            "note": self.note,
            "previous_on_new_data": self.previous_on_new_data,
        }


def _label(job: TrainingJob) -> str:
    schedule = job.config.get("schedule", {})
    if schedule.get("method") == NO_STACKING:
        how = f"{schedule.get('final_blocks')} blocks from scratch"
    elif schedule.get("grow") == "auto":
        how = (
            f"StackRec {schedule.get('method')} {schedule.get('start_blocks')}→"
            f"≤{schedule.get('final_blocks')}, growing while it pays"
        )
    else:
        how = (
            f"StackRec {schedule.get('method')} {schedule.get('start_blocks')}→{schedule.get('final_blocks')}"
        )
    retrain = f", retrain of {job.base_version.label}" if job.base_version_id and job.base_version else ""
    return f"job #{job.pk} · {job.config.get('model')} · {how}{retrain}"


def run_summary(job: TrainingJob, metric: str) -> RunSummary:
    """One run's validation curve of ``metric``, its stage ends, wall time and test metrics.

    Each curve point carries ``steps``, the optimiser steps since the run started: the steps of
    the stages that ended before it (their stage-end points) plus its own within its stage.
    """
    points = list(
        TrainingPoint.objects.filter(job=job, kind__in=(TrainingPoint.Kind.VALID, TrainingPoint.Kind.STAGE))
        .order_by("id")
        .values("kind", "wall_s", "stage", "step", "blocks", "metrics")
    )
    stage_steps = {p["stage"]: p["step"] for p in points if p["kind"] == TrainingPoint.Kind.STAGE}
    curve = [
        {
            "t": p["wall_s"],
            "value": p["metrics"][metric],
            "stage": p["stage"],
            "blocks": p["blocks"],
            "steps": p["step"] + sum(steps for stage, steps in stage_steps.items() if stage < p["stage"]),
        }
        for p in points
        if p["kind"] == TrainingPoint.Kind.VALID and metric in (p["metrics"] or {})
    ]
    stage_ends = [
        {"t": p["wall_s"], "blocks": p["blocks"]} for p in points if p["kind"] == TrainingPoint.Kind.STAGE
    ]
    best = max(curve, key=lambda p: p["value"], default=None)  # max keeps the first of equal values
    kept = _kept_point(job, metric)
    if kept is not None:
        best = kept  # the figures of the model the run exported, not of the curve's peak
    if job.stages:
        wall = sum(stage.get("wall_s", 0.0) for stage in job.stages)
    else:
        wall = float((job.progress or {}).get("elapsed_s") or 0.0)
    schedule = job.config.get("schedule", {})
    metrics = job.metrics or {}
    version = getattr(job, "version", None)
    return RunSummary(
        job=job,
        label=_label(job),
        model=job.config.get("model", ""),
        method=schedule.get("method", ""),
        start_blocks=schedule.get("start_blocks", 0),
        final_blocks=schedule.get("final_blocks", 0),
        wall_s=round(wall, 3),
        best_valid=best["value"] if best else None,
        time_to_best_s=best["t"] if best else None,
        steps_to_best=best["steps"] if best else None,
        test=dict(metrics.get("test") or {}),
        curve=curve,
        stage_ends=stage_ends,
        kept_blocks=(metrics.get("kept") or {}).get("blocks"),
        growth=(metrics.get("kept") or {}).get("growth", ""),
        popularity_test=dict((metrics.get("popularity") or {}).get("test") or {}),
        promotion=dict(version.promotion) if version is not None else {},
    )


def _kept_point(job: TrainingJob, metric: str) -> dict[str, Any] | None:
    """The kept stage's best validation as a curve point (``t``, ``value``, ``steps``), or None for a
    run without a kept stage (still running, or stored before runs kept their best stage)."""
    stages = job.stages or []
    index = next((i for i, s in enumerate(stages) if s.get("kept")), None)
    if index is None or metric not in (stages[index].get("best") or {}):
        return None
    kept = stages[index]
    return {
        "t": kept.get("best_wall_s", 0.0),
        "value": kept["best"][metric],
        "stage": kept["stage"] + 1,
        "blocks": kept["blocks"],
        "steps": sum(s.get("steps", 0) for s in stages[:index]) + kept.get("best_step", 0),
    }


def _same_validation(a: TrainingJob, b: TrainingJob) -> bool:
    """Both runs validated on the same cases: same data, split and validation sample."""

    def cases(job: TrainingJob) -> tuple[Any, ...]:
        train = job.config.get("train", {})
        return (job.dataset_id, repr(job.config.get("split")), train.get("valid_sample"), train.get("seed"))

    return cases(a) == cases(b)


def job_comparison(*, first: TrainingJob, second: TrainingJob) -> Comparison:
    """``first`` and ``second`` side by side; the speedup is measured against the scratch run if one is."""
    metric = first.config.get("train", {}).get("metric", "mrr@5")
    runs = [run_summary(first, metric), run_summary(second, metric)]
    comparison = Comparison(metric=metric, runs=runs)
    retrain = next((r for r in runs if r.job.base_version_id and r.job.base_version), None)
    if retrain is not None and (r := retrain.job.metrics or {}).get("previous"):
        comparison.previous_on_new_data = dict(r["previous"])
    if not _same_validation(first, second):
        comparison.note = (
            "The runs validated on different data, so their curves and times do not compare as a speedup"
        )
        if comparison.previous_on_new_data:
            previous = comparison.previous_on_new_data
            new = retrain.test.get("ndcg@10")
            old = previous["test"].get("ndcg@10")
            if new is not None and old is not None:
                comparison.note += (
                    f"; on the new data's test cases, {previous['version']} ({previous['blocks']} blocks) "
                    f"scores NDCG@10 {old:.4f} and the retrained {retrain.final_blocks}-block model {new:.4f}"
                )
        comparison.note += "."
        return comparison
    scratch = [run for run in runs if run.is_scratch]
    reference = scratch[0] if len(scratch) == 1 else runs[0]
    other = runs[1] if reference is runs[0] else runs[0]
    comparison.reference = reference
    name = "scratch" if reference.is_scratch else f"job #{reference.job.pk}"
    if reference.best_valid is None or reference.time_to_best_s is None:
        comparison.note = f"{name} has no validation points yet."
        return comparison
    reached = other.reach(reference.best_valid)
    target = f"{name}'s best validation {metric.upper()} ({reference.best_valid:.4f}, within 1 %)"
    if reached is None:
        comparison.note = f"Job #{other.job.pk} did not reach {target}."
        return comparison
    comparison.time_to_reach_s = reached["t"]
    comparison.steps_to_reach = reached["steps"]
    if reached["t"] <= 0:
        comparison.note = f"Job #{other.job.pk} reached {target} at its first validation."
    else:
        comparison.speedup = reference.time_to_best_s / reached["t"]
        if reached["steps"] and reference.steps_to_best:
            comparison.steps_ratio = reference.steps_to_best / reached["steps"]
        verdict = "faster" if comparison.speedup >= 1 else f"slower than {name} here"
        in_steps = f"; {comparison.steps_ratio:.1f}× in optimiser steps" if comparison.steps_ratio else ""
        comparison.note = (
            f"Job #{other.job.pk} reached {target} in {reached['t']:.0f} s ({reached['steps']:,} steps); "
            f"{name} took {reference.time_to_best_s:.0f} s ({reference.steps_to_best:,} steps): "
            f"{comparison.speedup:.1f}× by wall time ({verdict}){in_steps}."
        )
    return comparison


def comparison_partner(job: TrainingJob) -> TrainingJob | None:
    """The natural run to compare ``job`` with.

    A retrain: the job of the version it started from. A stacked run: the newest finished scratch
    run of the same dataset, model and final depth; a scratch run: the newest such stacked run.
    """
    if job.base_version_id and job.base_version and job.base_version.job_id:
        return job.base_version.job
    schedule = job.config.get("schedule", {})
    candidates = (
        TrainingJob.objects.filter(
            owner_id=job.owner_id,
            dataset_id=job.dataset_id,
            status=TrainingJob.Status.SUCCEEDED,
            config__model=job.config.get("model"),
            config__schedule__final_blocks=schedule.get("final_blocks"),
        )
        .exclude(pk=job.pk)
        .order_by("-finished_at", "-pk")
    )
    if schedule.get("method") == NO_STACKING:
        return candidates.exclude(config__schedule__method=NO_STACKING).first()
    return candidates.filter(config__schedule__method=NO_STACKING).first()
