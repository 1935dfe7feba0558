"""Two training runs side by side: validation curves against wall time, final metrics, the speedup.

The speedup is the one ``bench/stackrec.py`` reports: the reference run's (scratch's) time to its
best validation value, over the time the other run needs to first come within 1 % (relative) of
that value. Both also come with the optimiser steps they took, summed over stages: time is
steps × cost per step, and the steps say whether a run won by needing fewer of them or by taking
cheaper (shallower) ones. Validation values only compare on the same validation cases, so runs on
different data (a retrain on a grown log against the version it started from) get no speedup; they
are compared on the new data's test cases instead, where the retrain job scored the previous
version first.

More than two runs compare the same way against the one run among them trained from scratch: each
other run's time to scratch's best. Beside the curves and figures, the configuration diff lists
only the keys whose values differ between the runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    valid: dict[str, float] = field(default_factory=dict)  # the exported model's final validation
    # When it first came within the tolerance of the reference's best (t, steps, speedup, steps_ratio).
    reached: dict[str, Any] | None = None

    @property
    def legend(self) -> str:
        """The short name the chart's legend and the tables use: id, model, depth, method."""
        depth = self.kept_blocks or self.final_blocks
        how = "scratch" if self.is_scratch else self.method
        return f"#{self.job.pk} {self.model} {depth} {how}"

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
            "valid": self.valid,
            "reached": self.reached,
            "legend": self.legend,
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
    # The configuration keys whose values differ: (dotted key, value per run as shown).
    config_diff: list[tuple[str, list[str]]] = field(default_factory=list)

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
            "config_diff": [{"key": key, "values": values} for key, values in self.config_diff],
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
        valid=dict(metrics.get("valid") or {}),
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
    return jobs_comparison(jobs=[first, second])


def jobs_comparison(*, jobs: Sequence[TrainingJob]) -> Comparison:
    """Two or more runs side by side, on the first run's validation metric.

    Two runs: the speedup of one over the other (over the scratch run, if one is). More: each run's
    speedup over the one scratch run among them, when there is exactly one and all validated on the
    same cases.
    """
    metric = jobs[0].config.get("train", {}).get("metric", "mrr@5")
    runs = [run_summary(job, metric) for job in jobs]
    comparison = Comparison(metric=metric, runs=runs, config_diff=config_differences(jobs))
    retrain = next((r for r in runs if r.job.base_version_id and r.job.base_version), None)
    if retrain is not None and (r := retrain.job.metrics or {}).get("previous"):
        comparison.previous_on_new_data = dict(r["previous"])
    if len(runs) == 2:
        _measure_pair(comparison, retrain)
    else:
        _measure_against_scratch(comparison)
    return comparison


def _measure_pair(comparison: Comparison, retrain: RunSummary | None) -> None:
    runs, metric = comparison.runs, comparison.metric
    first, second = runs[0].job, runs[1].job
    if not _same_validation(first, second):
        comparison.note = (
            "The runs validated on different data, so their curves and times do not compare as a speedup"
        )
        if comparison.previous_on_new_data and retrain is not None:
            previous = comparison.previous_on_new_data
            new = retrain.test.get("ndcg@10")
            old = previous["test"].get("ndcg@10")
            if new is not None and old is not None:
                comparison.note += (
                    f"; on the new data's test cases, {previous['version']} ({previous['blocks']} blocks) "
                    f"scores NDCG@10 {old:.4f} and the retrained {retrain.final_blocks}-block model {new:.4f}"
                )
        comparison.note += "."
        return
    scratch = [run for run in runs if run.is_scratch]
    reference = scratch[0] if len(scratch) == 1 else runs[0]
    other = runs[1] if reference is runs[0] else runs[0]
    comparison.reference = reference
    name = "scratch" if reference.is_scratch else f"job #{reference.job.pk}"
    if reference.best_valid is None or reference.time_to_best_s is None:
        comparison.note = f"{name} has no validation points yet."
        return
    reached = other.reached = _reach(reference, other)
    target = f"{name}'s best validation {metric.upper()} ({reference.best_valid:.4f}, within 1 %)"
    if reached is None:
        comparison.note = f"Job #{other.job.pk} did not reach {target}."
        return
    comparison.time_to_reach_s = reached["t"]
    comparison.steps_to_reach = reached["steps"]
    if reached["speedup"] is None:
        comparison.note = f"Job #{other.job.pk} reached {target} at its first validation."
        return
    comparison.speedup = reached["speedup"]
    comparison.steps_ratio = reached["steps_ratio"]
    verdict = "faster" if comparison.speedup >= 1 else f"slower than {name} here"
    in_steps = f"; {comparison.steps_ratio:.1f}× in optimiser steps" if comparison.steps_ratio else ""
    comparison.note = (
        f"Job #{other.job.pk} reached {target} in {reached['t']:.0f} s ({reached['steps']:,} steps); "
        f"{name} took {reference.time_to_best_s:.0f} s ({reference.steps_to_best:,} steps): "
        f"{comparison.speedup:.1f}× by wall time ({verdict}){in_steps}."
    )


def _measure_against_scratch(comparison: Comparison) -> None:
    runs, metric = comparison.runs, comparison.metric
    if not all(_same_validation(runs[0].job, run.job) for run in runs[1:]):
        comparison.note = (
            "The runs validated on different data, so their curves and times do not compare as speedups."
        )
        return
    scratch = [run for run in runs if run.is_scratch]
    if len(scratch) != 1:
        comparison.note = (
            "Speedups are measured against one run trained from scratch; "
            f"these runs include {len(scratch) or 'no'} such run{'' if len(scratch) == 1 else 's'}."
        )
        return
    reference = comparison.reference = scratch[0]
    if reference.best_valid is None or reference.time_to_best_s is None:
        comparison.note = f"Scratch (job #{reference.job.pk}) has no validation points yet."
        return
    for run in runs:
        if run is not reference:
            run.reached = _reach(reference, run)
    comparison.note = (
        f"Speedups against scratch (job #{reference.job.pk}): the wall time each run took to come within "
        f"1 % of scratch's best validation {metric.upper()} ({reference.best_valid:.4f}), against the "
        f"{reference.time_to_best_s:.0f} s scratch took to it."
    )


def _reach(reference: RunSummary, run: RunSummary) -> dict[str, Any] | None:
    """When ``run`` first came within the tolerance of ``reference``'s best validation, and the speedup
    that makes (None when it did at its first validation, at no time at all); None if it never did."""
    point = run.reach(reference.best_valid)
    if point is None:
        return None
    speedup = reference.time_to_best_s / point["t"] if point["t"] > 0 else None
    steps_ratio = None
    if speedup is not None and point["steps"] and reference.steps_to_best:
        steps_ratio = reference.steps_to_best / point["steps"]
    return {"t": point["t"], "steps": point["steps"], "speedup": speedup, "steps_ratio": steps_ratio}


_ABSENT = object()


def config_differences(jobs: Sequence[TrainingJob]) -> list[tuple[str, list[str]]]:
    """The configuration keys, dotted (``train.lr``, ``schedule.method``), whose values differ between
    ``jobs``, in key order, each with its value per job as shown ("–" where a job lacks the key)."""
    flat = [_flatten(job.config or {}) for job in jobs]
    differences = []
    for key in sorted(set().union(*flat)):
        values = [f.get(key, _ABSENT) for f in flat]
        if any(value != values[0] for value in values[1:]):
            differences.append((key, ["–" if v is _ABSENT else _shown(v) for v in values]))
    return differences


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


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


@dataclass(frozen=True)
class FigureCell:
    value: float | None
    kind: str  # how it reads: metric, seconds, ratio
    best: bool = False  # the best of its column (every run that ties for it)


def comparison_figures(
    comparison: Comparison, *, valid_metrics: Sequence[str], test_metrics: Sequence[str]
) -> tuple[list[str], list[tuple[RunSummary, list[FigureCell]]]]:
    """The figures table of a comparison: its column labels, and per run a cell per column with the
    best of each column marked where two runs have it: the highest metric and speedup, the shortest
    time to the reference's best. A run's own times are not ranked: a run that stopped early at a
    worse model is not better for it."""
    metric = comparison.metric
    columns: list[tuple[str, str, str, Any]] = [  # label, kind, which is better, value of a run
        ("wall time", "seconds", "", lambda r: r.wall_s or None),
        (f"valid {metric.upper()}", "metric", "high", lambda r: r.best_valid),
        ("time to it", "seconds", "", lambda r: r.time_to_best_s),
        *(
            (f"valid {m.upper()}", "metric", "high", lambda r, m=m: r.valid.get(m))
            for m in valid_metrics
            if m != metric
        ),
        *((f"test {m.upper()}", "metric", "high", lambda r, m=m: r.test.get(m)) for m in test_metrics),
    ]
    if comparison.reference is not None and any(run.reached for run in comparison.runs):
        reference = comparison.reference
        name = "scratch" if reference.is_scratch else f"#{reference.job.pk}"
        columns += [
            (f"time to {name}'s best", "seconds", "low", lambda r: (r.reached or {}).get("t")),
            ("speedup", "ratio", "high", lambda r: (r.reached or {}).get("speedup")),
        ]
    cells = [[FigureCell(value(run), kind) for _, kind, _, value in columns] for run in comparison.runs]
    for index, (_, _, better, _) in enumerate(columns):
        present = [row[index].value for row in cells if row[index].value is not None]
        if not better or len(present) < 2:
            continue
        best = min(present) if better == "low" else max(present)
        for row in cells:
            if row[index].value == best:
                row[index] = FigureCell(best, row[index].kind, best=True)
    return [label for label, *_ in columns], list(zip(comparison.runs, cells, strict=True))
