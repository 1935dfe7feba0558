"""How far a run is: its work plan, the whole run's percent and time left, and the phases after training.

A run's work is counted in floating-point operations as :func:`trainer.budget.stage_costs` estimates
them, so a deeper stage weighs more than a shallow one (per step it runs every block), and the end of
the run (scoring the test cases, the promotion gate, the export) has a weight of its own instead of
looking like a stalled last stage. Each stage counts whole once it ended, whether it used its
budget or stopped early at a plateau; a stage the schedule never reached (growth stopped paying)
counts as done when training ends.

Time left is the work left at the speed this run has measured itself — the work it has *executed*
(a stage that stopped early executed only its share of its budget) over the seconds it took — and
not at the throughput the site assumes when it admits a job: the estimate is a ceiling, every stage
to its whole budget, so the time left is one too.

Everything here is pure: plain dictionaries in, the job's ``progress`` keys out (see
:class:`webapp.training.services.JobProgress`, which writes them).
"""

from __future__ import annotations

import math
from typing import Any

from trainer.budget import DataSize, stage_costs
from trainer.data.types import Split
from webapp.training.configs import JobConfig

# The phases after the last training stage, in the order the worker runs them.
FINAL_EVALUATION = "final evaluation"
PROMOTION_GATE = "promotion gate"
EXPORT = "export"
ACTIVATION = "activation"
PHASES = (FINAL_EVALUATION, PROMOTION_GATE, EXPORT, ACTIVATION)
WAITING, RUNNING, DONE, SKIPPED = "waiting", "running", "done", "skipped"
# A run's own speed is believed once it has run this long: the first seconds hold the setup and the
# first validation, which would make a time left from them wildly off.
CALIBRATION_S = 10.0


def run_plan(config: JobConfig, split: Split, *, carried: bool, serving: bool) -> dict[str, Any]:
    """The work of each stage and phase of this run, to its whole budget.

    ``carried``: the first stage is the deployed model, validated on the new data but not trained
    (a fixed-growth retrain); ``serving``: a version serves the dataset, so the gate scores it too.
    The final evaluation, gate and export score with the deepest model the run may reach (the one it
    keeps may be shallower); the export's own cost is not estimated and counts as one validation.
    """
    data = DataSize(
        n_items=split.n_items - 1,
        n_events=int(split.train.offsets[-1]),
        n_sequences=len(split.train),
        validation_cases=len(split.valid),
    )
    # The assumed throughput cancels out: the plan's weights are relative, its speed is measured.
    costs = stage_costs(config.model_config, config.train, config.schedule, data, flops_per_s=1.0)
    stages = [{"blocks": c.blocks, "steps": c.steps, "flops": c.flops} for c in costs]
    if carried:
        stages[0].update(steps=0, flops=len(split.valid) * costs[0].case_flops)
    case = costs[-1].case_flops
    phases = {
        FINAL_EVALUATION: (len(split.valid) + len(split.test)) * case,
        PROMOTION_GATE: len(split.valid) * case if serving else 0.0,
        EXPORT: len(split.valid) * case,
        ACTIVATION: 0.0,
    }
    return {"stages": stages, "phases": [{"name": n, "flops": f} for n, f in phases.items()]}


def phases_start() -> list[dict[str, Any]]:
    """The phases as training ends: every one waiting."""
    return [{"name": name, "state": WAITING} for name in PHASES]


def run_percent_and_eta(progress: dict[str, Any]) -> tuple[float, float | None]:
    """The whole run's percent done and its seconds left (None until the run has measured its
    speed, and during the phases after training, whose speed it has not measured), from a job's
    ``progress`` holding a ``plan`` (see the module docstring)."""
    plan = progress["plan"]
    stage_work = [float(s["flops"]) for s in plan["stages"]]
    phase_work = {p["name"]: float(p["flops"]) for p in plan["phases"]}
    total = sum(stage_work) + sum(phase_work.values())
    if total <= 0:
        return 0.0, None
    phases = progress.get("phases")
    if phases:  # training is over: every stage done or no longer needed
        credited = sum(stage_work)
        for phase in phases:
            work = phase_work.get(phase["name"], 0.0)
            if phase["state"] in (DONE, SKIPPED):
                credited += work
            elif phase["state"] == RUNNING and phase.get("total"):
                credited += work * min(1.0, (phase.get("done") or 0) / phase["total"])
        return _percent(credited, total), None
    current = progress.get("stage") or 0  # 1-based
    finished = {int(s["stage"]): s for s in progress.get("finished_stages") or []}
    credited = executed = 0.0
    for number, work in enumerate(stage_work, start=1):
        if number in finished:
            credited += work
            executed += work * _share(finished[number].get("steps"), finished[number].get("planned_steps"))
        elif number < current:  # finished before this progress was kept (the carried first stage)
            credited += work
            executed += work
        elif number == current:
            share = _share(progress.get("step"), progress.get("planned_steps"))
            credited += work * share
            executed += work * share
    elapsed = float(progress.get("elapsed_s") or 0.0)
    eta = None
    if elapsed >= CALIBRATION_S and executed > 0:
        eta = round((total - credited) * elapsed / executed, 1)
    return _percent(credited, total), eta


def _share(step: Any, planned: Any) -> float:
    """The part of its budget a stage trained; a stage that says nothing counts whole."""
    if not planned:
        return 1.0
    return min(1.0, float(step or 0) / float(planned))


def _percent(done: float, total: float) -> float:
    """Rounded down: a run is 100 % done only once all of it is."""
    return min(100.0, math.floor(1000.0 * done / total) / 10)
