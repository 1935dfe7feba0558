"""StackRec's claim on real data: stacked training against the deep model from scratch, side by side.

    python bench/stackrec.py                                   # the default grid (hours on 2 cores)
    python bench/stackrec.py --data ml-100k:time --models nextitnet --scenarios ts,cl

For every (data set, model, loss, scenario) the runs are trained one after another in this
process, with the same thread count, and compared on the same test cases:

- TS: the shallow first-stage model alone, the final depth from scratch, and StackRec with each
  method (paper-faithful adjacent and cross, function-preserving);
- CL: a model trained on the first 80 % of the log (by time) is stacked to the final depth and
  trained on all of it, against the final depth retrained from scratch on all of it;
- TF: pre-train on a source log, stack and fine-tune on the target, against the target alone.

Reported per run: test HR/NDCG/MRR@5 and @10 (95 % bootstrap intervals over test cases), total
training wall time, the wall time to first reach the scratch model's best validation MRR@5
within 1 % relative and the optimiser steps that took (time is steps × cost per step, and a
stacked run can win on either); per StackRec run, the paired-bootstrap difference of test
NDCG@10 against scratch, and what each stack did to validation MRR@5 (the deeper model's first
validation minus the stacked model's best). If the deep model does not beat the shallow one
significantly on a data set, the table says so: reaching the deep model's accuracy quickly then
says nothing about stacking.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package; the repository root takes its place.
sys.path[0] = str(REPO)

from bench.reporting import interval_text, save_curves_plot  # noqa: E402
from trainer.metrics import bootstrap_interval, paired_bootstrap_difference, per_case  # noqa: E402
from trainer.models import model_config  # noqa: E402
from trainer.runs import DataSpec, load_data, split_data  # noqa: E402
from trainer.scenarios import RunReport, first_share, scenario_cl, scenario_tf, scenario_ts  # noqa: E402
from trainer.schedule import StackingSchedule  # noqa: E402
from trainer.training import TrainConfig  # noqa: E402

LOG = logging.getLogger("bench.stackrec")
METRIC = "mrr@5"  # StackRec's reference selects and compares by MRR@5

# name → (path, split, test_path); "{shared}" is the folder of real logs.
DATA = {
    "ml-100k": ("ml-100k", "leave_one_out", None),
    "lastfm": ("{shared}/lastfm/LastFM.txt", "leave_one_out", None),
    "beauty": ("{shared}/amazon-Beauty/Beauty.txt", "leave_one_out", None),
    "diginetica": (
        "{shared}/diginetica-gcegnn/train_sessions.txt",
        "sessions",
        "{shared}/diginetica-gcegnn/test_sessions.txt",
    ),
}
MODELS = {
    "nextitnet": {"embedding_dim": 64},
    # Pre-LN so that the function-preserving method applies; every SASRec run uses it alike.
    "sasrec": {"embedding_dim": 64, "norm_position": "pre", "dropout": 0.2, "max_len": 50},
}


def data_spec(name: str, shared: str) -> DataSpec:
    """``ml-100k`` or ``ml-100k:time`` (the global time split, last 10 % of events as test)."""
    base, _, split = name.partition(":")
    path, default_split, test_path = DATA[base]
    return DataSpec(
        path=path.format(shared=shared),
        split=split or default_split,
        test_path=test_path.format(shared=shared) if test_path else None,
    )


def metric_cells(ranks: np.ndarray, metrics: tuple[str, ...]) -> list[str]:
    cells = []
    for metric in metrics:
        values = per_case(ranks, metric)
        cells.append(interval_text(values.mean(), *bootstrap_interval(values)))
    return cells


def change_text(at: float, later: float | None) -> str:
    return f"{at:+.4f} → {later:+.4f}" if later is not None else f"{at:+.4f} → —"


def worst_change(changes: list[tuple[float, float | None]]) -> str:
    """The lowest change at any stack, and the lowest one interval later (each over all stacks)."""
    if not changes:
        return "—"
    later = [c[1] for c in changes if c[1] is not None]
    return change_text(min(c[0] for c in changes), min(later) if later else None)


def compare(reports: list[RunReport], title: str) -> tuple[str, dict[str, Any]]:
    """Markdown table of one comparison, plus the figures as a dict for the JSON summary."""
    scratch = next(r for r in reports if r.name.startswith("scratch"))
    shallow = next((r for r in reports if r.name.startswith(("shallow", "deployed", "pretrained"))), None)
    target = scratch.best_valid[METRIC]
    scratch_time = scratch.time_to_reach(METRIC, target)
    lines = [
        f"#### {title}",
        "",
        "| run | blocks | train s | valid MRR@5 | test HR@10 | test NDCG@10 | test MRR@10 | HR@5 | NDCG@5 | "
        "MRR@5 | to scratch's best | steps to it | speed-up | NDCG@10 − scratch (paired) | "
        "valid MRR@5 change at each stack (at it → one interval later) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {"title": title, "target_valid_mrr@5": target, "runs": {}}
    scratch_ndcg = per_case(scratch.test_ranks, "ndcg@10")
    for r in reports:
        # A CL deployed / TF pre-trained model was validated on other data: no race to report.
        earlier = r.name.startswith(("deployed", "pretrained"))
        reach, steps = (None if earlier else r.reach(METRIC, target)) or (None, None)
        speedup = scratch_time / reach if reach and scratch_time else None
        cells = metric_cells(r.test_ranks, ("hr@10", "ndcg@10", "mrr@10"))
        small = [f"{r.test[m]:.4f}" for m in ("hr@5", "ndcg@5", "mrr@5")]
        if r is scratch or len(r.test_ranks) != len(scratch.test_ranks):
            paired = "—"
            diff = None
        else:
            diff = paired_bootstrap_difference(per_case(r.test_ranks, "ndcg@10"), scratch_ndcg)
            paired = interval_text(*diff, signed=True)
        wall = f"{r.wall_s:.0f}" + (f" (+{r.prior_s:.0f} before)" if r.prior_s else "")
        changes = r.stack_changes(METRIC)
        lines.append(
            f"| {r.name} | {r.blocks} | {wall} | {r.best_valid.get(METRIC, float('nan')):.4f} | "
            f"{' | '.join(cells)} | {' | '.join(small)} | "
            f"{f'{reach:.0f} s' if reach is not None else 'not reached'} | "
            f"{steps if steps is not None else '—'} | "
            f"{f'{speedup:.2f}×' if speedup else '—'} | {paired} | "
            f"{' / '.join(change_text(*c) for c in changes) or '—'} |"
        )
        summary["runs"][r.name] = {
            **r.to_dict(),
            "time_to_target_s": reach,
            "steps_to_target": steps,
            "speedup": speedup,
            "ndcg10_minus_scratch": diff,
            "valid_change_at_each_stack": changes,
        }
    if shallow is not None and len(shallow.test_ranks) == len(scratch.test_ranks):
        gain = paired_bootstrap_difference(scratch_ndcg, per_case(shallow.test_ranks, "ndcg@10"))
        summary["deep_minus_shallow_ndcg10"] = gain
        interval = interval_text(*gain, signed=True)
        lines.append("")
        if shallow.name.startswith("deployed"):
            # The deployed model saw only the first chunk: the difference mixes more data with more
            # depth, so whether depth pays is left to the TS comparison on the same data.
            lines.append(
                f"Deep ({scratch.blocks}, all data) − deployed ({shallow.blocks}, first chunk) test NDCG@10: "
                f"{interval} — more data and more depth at once, not a verdict on depth (see TS)."
            )
        else:
            pays = gain[1] > 0
            summary["depth_pays"] = pays
            verdict = "depth pays here"
            if not pays:
                verdict = (
                    "depth does NOT pay here: the deep model is not significantly better than the shallow "
                    "one, so reaching the deep model's accuracy quickly says nothing about stacking"
                )
            lines.append(
                f"Deep ({scratch.blocks}) − shallow ({shallow.blocks}) test NDCG@10: {interval} — {verdict}."
            )
    lines.append(f"Target: scratch's best validation MRR@5 {target:.4f} (within 1 % relative).")
    summary["scratch_stopped_by"] = scratch.stages[-1].stopped_by
    if scratch.stages[-1].stopped_by == "time_budget":
        lines.append(
            f"Scratch stopped on its time budget ({scratch.wall_s:.0f} s), not on a plateau: its best is the "
            "best within that budget, and the depth verdict above is a verdict on that budget."
        )
    return "\n".join(lines), summary


def target_verdict(summary: dict[str, Any], method: str) -> str:
    """The issue's target for one StackRec method: ≥ 3× faster to scratch's best validation MRR@5,
    test NDCG@10 not significantly below scratch and within 2 % of it; judged only where depth pays."""
    run = summary["runs"].get(f"stackrec-{method}")
    if run is None:
        return "—"
    if "depth_pays" not in summary:
        return "see TS"
    if not summary["depth_pays"]:
        return "n/a"
    scratch = next(r for name, r in summary["runs"].items() if name.startswith("scratch"))
    diff = run["ndcg10_minus_scratch"]
    fast = (run["speedup"] or 0.0) >= 3.0
    as_good = diff is not None and diff[2] >= 0 and diff[0] >= -0.02 * scratch["test"]["ndcg@10"]
    return "met" if fast and as_good else "missed"


def overview(summaries: list[dict[str, Any]], methods: tuple[str, ...]) -> str:
    """One line per comparison: does depth pay, how fast each method got there, and at what accuracy."""
    names = " / ".join(methods)
    lines = [
        "#### Overview",
        "",
        f"| comparison | deep − shallow (CL: deployed) test NDCG@10 | scratch stopped by | "
        f"speed-up ({names}) | test NDCG@10 − scratch ({names}) | "
        f"worst valid MRR@5 change at a stack, at it → one interval later ({names}) | 3× target ({names}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        runs = [summary["runs"].get(f"stackrec-{m}") for m in methods]
        gain = summary.get("deep_minus_shallow_ndcg10")
        gain_text = interval_text(*gain, signed=True) if gain else "—"
        speedups = " / ".join(f"{r['speedup']:.2f}×" if r and r["speedup"] else "—" for r in runs)
        diffs = " / ".join(f"{r['ndcg10_minus_scratch'][0]:+.4f}" if r else "—" for r in runs)
        drops = " / ".join(worst_change(r["valid_change_at_each_stack"]) if r else "—" for r in runs)
        verdicts = " / ".join(target_verdict(summary, m) for m in methods)
        lines.append(
            f"| {summary['title']} | {gain_text} | {summary['scratch_stopped_by']} | {speedups} | {diffs} | "
            f"{drops} | {verdicts} |"
        )
    return "\n".join(lines)


def plot(reports: list[RunReport], path: Path, title: str) -> None:
    save_curves_plot(
        {r.name: [(t, v) for t, v, _ in r.curve(METRIC)] for r in reports},
        path,
        title=title,
        ylabel="validation MRR@5",
        boundaries={r.name: r.stage_boundaries() for r in reports},
    )


def depth_table(reports: list[RunReport]) -> dict[int, float]:
    """Best validation MRR@5 reached at each depth, over every run and stage of a comparison."""
    best: dict[int, float] = {}
    for r in reports:
        for stage in r.stages:
            if stage.best:
                best[stage.blocks] = max(best.get(stage.blocks, 0.0), stage.best[METRIC])
    return dict(sorted(best.items()))


def step_costs(reports: list[RunReport]) -> dict[int, float]:
    """Milliseconds per optimiser step at each depth, over every run and stage of a comparison.

    Training shallow first saves time only as far as a shallow step is cheaper than a deep one;
    where the output softmax dominates a step (a full softmax over a large catalogue) it barely is.
    """
    seconds: dict[int, float] = {}
    steps: dict[int, int] = {}
    for r in reports:
        for stage in r.stages:
            if stage.steps:
                seconds[stage.blocks] = seconds.get(stage.blocks, 0.0) + stage.train_s
                steps[stage.blocks] = steps.get(stage.blocks, 0) + stage.steps
    return {b: 1000.0 * seconds[b] / steps[b] for b in sorted(steps)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default="ml-100k:time,lastfm,beauty,diginetica",
        help="data sets; NAME:time for the global time split (needs timestamps: LastFM has none)",
    )
    parser.add_argument("--models", default="nextitnet,sasrec")
    parser.add_argument("--scenarios", default="ts,cl", help="ts, cl (tf runs with --tf)")
    parser.add_argument("--tf", default="", help="SOURCE:TARGET data pair for the transfer scenario")
    parser.add_argument("--methods", default="adjacent,cross,preserving")
    parser.add_argument("--losses", default="full", help="full and/or sampled")
    parser.add_argument("--start-blocks", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--sasrec-start-blocks", type=int, default=1)
    parser.add_argument("--sasrec-blocks", type=int, default=4)
    parser.add_argument("--cl-start-blocks", type=int, default=0, help="CL's deployed depth (0: blocks / 2)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=4, help="validations without gain (final stage)")
    parser.add_argument("--stage-patience", type=int, default=2)
    parser.add_argument("--stage-epochs", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="steps between validations (0: epoch)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--max-len",
        type=int,
        default=50,
        help="history a model sees: training windows and test histories keep this many items",
    )
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="Adam's learning rate for every run (reference: 1e-3)"
    )
    parser.add_argument(
        "--time-budget", type=float, default=0.0, help="seconds per stage (runs without stacking: × stages)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds every run's weights, batch order and validation sample"
    )
    parser.add_argument("--valid-sample", type=int, default=3000, help="validation cases sampled (0: all)")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stackrec")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    methods = tuple(m for m in args.methods.split(",") if m)

    sections, summaries, depths, costs = [], [], {}, {}
    started = time.perf_counter()
    for loss in args.losses.split(","):
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_len=args.max_len,
            lr=args.lr,
            patience=args.patience,
            eval_every=args.eval_every,
            metric=METRIC,
            loss=loss,
            threads=args.threads,
            time_budget_s=args.time_budget,
            valid_sample=args.valid_sample,
            seed=args.seed,
            device="auto",
        )
        for model in args.models.split(","):
            start = args.sasrec_start_blocks if model == "sasrec" else args.start_blocks
            final = args.sasrec_blocks if model == "sasrec" else args.blocks
            schedule = StackingSchedule(
                start_blocks=start,
                final_blocks=final,
                grow="fixed",  # the paper's schedules: every stage to the final depth, exported
                keep="final",
                stage_patience=args.stage_patience,
                stage_epochs=args.stage_epochs,
            )
            options = dict(MODELS[model])
            if "max_len" in options:  # SASRec embeds positions: it needs one for every item it sees
                options["max_len"] = max(options["max_len"], args.max_len)
            cfg = model_config(model, options)
            comparisons = []
            for name in [d for d in args.data.split(",") if d]:
                spec = data_spec(name, args.shared)
                dataset, test = load_data(spec)
                if "ts" in args.scenarios:
                    split = split_data(spec, dataset, test)
                    comparisons.append(
                        (
                            f"TS {name} {model} {loss}",
                            scenario_ts(split, model, cfg, config, schedule, methods),
                        )
                    )
                if "cl" in args.scenarios:
                    cl_start = args.cl_start_blocks or final // 2
                    cl_schedule = dataclasses.replace(schedule, start_blocks=cl_start)
                    first = split_data(spec, first_share(dataset, 0.8), test)
                    full = split_data(spec, dataset, test)
                    comparisons.append(
                        (
                            f"CL {name} {model} {loss} (80 % → 100 %)",
                            scenario_cl(first, full, model, cfg, config, cl_schedule, methods),
                        )
                    )
            if args.tf:
                source_name, target_name = args.tf.split(":", 1)
                source_spec = data_spec(source_name, args.shared)
                target_spec = data_spec(target_name, args.shared)
                source = split_data(source_spec, *load_data(source_spec))
                target = split_data(target_spec, *load_data(target_spec))
                comparisons.append(
                    (
                        f"TF {source_name} → {target_name} {model} {loss}",
                        scenario_tf(source, target, model, cfg, config, schedule, methods),
                    )
                )
            for title, reports in comparisons:
                table, summary = compare(reports, title)
                slug = "-".join(title.split()[:4]).replace(":", "_").replace("→", "to").lower()
                plot(reports, args.out / f"{slug}.png", title)
                table += f"\n\n![{title}]({slug}.png)\n"
                sections.append(table)
                summaries.append(summary)
                depths[title] = depth_table(reports)
                costs[title] = step_costs(reports)
                print(table, flush=True)
                # Written after every comparison, so a run stopped early keeps what it finished.
                (args.out / "table.md").write_text("\n\n".join(sections) + "\n")
    lines = [
        "#### Best validation MRR@5 and cost of a training step, by depth",
        "",
        "| comparison | depth: best validation MRR@5 | depth: ms per training step |",
        "|---|---|---|",
    ]
    for title, table in depths.items():
        best = ", ".join(f"{b}: {v:.4f}" for b, v in table.items())
        cost = ", ".join(f"{b}: {ms:.0f}" for b, ms in costs[title].items())
        lines.append(f"| {title} | {best} | {cost} |")
    sections.append("\n".join(lines))
    sections.append(overview(summaries, methods))
    header = (
        f"StackRec benchmark — {args.threads} thread(s), device auto, methods {', '.join(methods)}; "
        f"batch {args.batch_size}, histories {args.max_len}, Adam {args.lr:g}, stage patience "
        f"{args.stage_patience}, final patience {args.patience}, seed {args.seed}; "
        f"total {time.perf_counter() - started:.0f} s."
    )
    text = header + "\n\n" + "\n\n".join(sections) + "\n"
    (args.out / "table.md").write_text(text)
    results = {"comparisons": summaries, "depths": depths, "ms_per_step": costs}
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
