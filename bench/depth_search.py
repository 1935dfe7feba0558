"""Finding the right depth: the auto-growth schedule against a depth grid trained from scratch.

    python bench/depth_search.py                                         # every data set and model
    python bench/depth_search.py --data ml-100k:time --models nextitnet  # one line of the table

A user without StackRec who wants the right depth trains each depth of a grid from scratch and
keeps the best on validation. This script runs, for each (data set, model), one after another in
this process with the same thread count and the same test cases:

- **auto**: the default schedule (function-preserving stacking from the shallowest depth, growing
  while a stage gains more than ``--min-gain`` over the model it was stacked from, keeping the
  best stage);
- **grid**: every depth of the grid (NextItNet/GRec 2, 4, 8, 16; SASRec 1, 2, 4) from scratch,
  each trained to its plateau; its pick is the depth with the best validation MRR@5;
- **pick alone** (reference): the grid's winning depth from scratch, which is what the grid costs
  a user who already knew the answer.

Reported per arm: total wall time and optimiser steps, the depth chosen, test HR/NDCG/MRR@10 of
the chosen model with 95 % bootstrap intervals; per (data set, model) the paired-bootstrap
difference of test NDCG@10 between auto's model and the grid's pick, and between auto's model and
its own first stage (the shallow model it started from). Target: auto needs at most a third of
the grid's total time, is not significantly below the grid's pick, and never significantly below
its own first stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # bench/http.py must not shadow the standard library's http package

from bench.reporting import interval_text, save_curves_plot  # noqa: E402
from bench.stackrec import DATA, MODELS, data_spec  # noqa: E402
from trainer.checkpoint import load_checkpoint  # noqa: E402
from trainer.evaluation import evaluate  # noqa: E402
from trainer.metrics import bootstrap_interval, paired_bootstrap_difference, per_case  # noqa: E402
from trainer.models import model_config  # noqa: E402
from trainer.runs import load_data, split_data  # noqa: E402
from trainer.schedule import DEFAULT_MIN_GAIN, StackingSchedule, run_schedule  # noqa: E402
from trainer.training import TrainConfig  # noqa: E402

LOG = logging.getLogger("bench.depth_search")
METRIC = "mrr@5"  # what every run selects its best weights by (StackRec's reference)
GRIDS = {"nextitnet": (2, 4, 8, 16), "grec": (2, 4, 8, 16), "sasrec": (1, 2, 4)}
TEST_METRICS = ("hr@10", "ndcg@10", "mrr@10")


def train(name: str, model: str, cfg: Any, split: Any, config: TrainConfig, schedule: StackingSchedule):
    """One run: its kept model's test ranks, and its first stage's (auto is judged against both)."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = run_schedule(model, cfg, split, config, schedule, checkpoint_dir=folder)
        wall = time.perf_counter() - started
        options = {"max_len": config.max_len, "exclude_seen": config.exclude_seen}
        test = evaluate(result.model, split.test, **options)
        first = None
        if result.kept_stage != 0:
            first = evaluate(load_checkpoint(Path(folder) / "stage-0.pt").model, split.test, **options).ranks
    LOG.info("%s: kept %d blocks, %.0f s, %s", name, result.kept.blocks, wall, result.growth)
    return {
        "name": name,
        "blocks": result.kept.blocks,
        "wall_s": wall,
        "steps": result.steps,
        "valid": result.kept.best[METRIC],
        "growth": result.growth,
        "test": test.metrics,
        "ranks": test.ranks,
        "first_stage_ranks": test.ranks if first is None else first,
        "curve": [(t, v) for t, v, _ in result.curve(METRIC)],
        "boundaries": [s.start_s for s in result.stages[1:]],
        "stages": [(s.blocks, s.steps, round(s.wall_s, 1), s.stopped_by, s.decision) for s in result.stages],
    }


def cells(ranks: np.ndarray) -> list[str]:
    return [
        interval_text(per_case(ranks, m).mean(), *bootstrap_interval(per_case(ranks, m)))
        for m in TEST_METRICS
    ]


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    return paired_bootstrap_difference(per_case(a, "ndcg@10"), per_case(b, "ndcg@10"))


def compare(title: str, auto: dict[str, Any], grid: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Markdown table of one (data set, model) and its figures for the summary."""
    pick = max(grid, key=lambda r: r["valid"])  # max keeps the shallowest of equal values
    grid_s = sum(r["wall_s"] for r in grid)
    grid_steps = sum(r["steps"] for r in grid)
    vs_pick = paired(auto["ranks"], pick["ranks"])
    vs_first = paired(auto["ranks"], auto["first_stage_ranks"])
    lines = [
        f"#### {title}",
        "",
        "| arm | depth chosen | wall s | steps | valid MRR@5 | test HR@10 | test NDCG@10 | test MRR@10 |",
        "|---|---|---|---|---|---|---|---|",
        f"| auto ({auto['growth']}) | {auto['blocks']} | {auto['wall_s']:.0f} | {auto['steps']:,} | "
        f"{auto['valid']:.4f} | " + " | ".join(cells(auto["ranks"])) + " |",
        f"| grid {'/'.join(str(r['blocks']) for r in grid)} from scratch | {pick['blocks']} | {grid_s:.0f} | "
        f"{grid_steps:,} | {pick['valid']:.4f} | " + " | ".join(cells(pick["ranks"])) + " |",
        f"| the pick alone ({pick['blocks']} blocks from scratch) | {pick['blocks']} | "
        f"{pick['wall_s']:.0f} | {pick['steps']:,} | {pick['valid']:.4f} | (the grid's pick) | | |",
    ]
    lines += [
        "",
        "Grid runs: "
        + "; ".join(
            f"{r['blocks']} blocks {r['wall_s']:.0f} s, {r['steps']:,} steps, valid {r['valid']:.4f}"
            for r in grid
        ),
        "",
        "Auto stages: "
        + "; ".join(f"{b} blocks {st:,} steps {w} s ({why}) {d}" for b, st, w, why, d in auto["stages"]),
        "",
        f"auto / grid time {auto['wall_s'] / grid_s:.2f} (target ≤ 0.33), "
        f"steps {auto['steps'] / grid_steps:.2f}; "
        f"auto / pick alone time {auto['wall_s'] / pick['wall_s']:.2f}; "
        f"test NDCG@10 auto − grid pick {interval_text(*vs_pick, signed=True)}, "
        f"auto − its first stage {interval_text(*vs_first, signed=True)}",
    ]
    time_ok = auto["wall_s"] <= grid_s / 3
    summary = {
        "title": title,
        "auto_blocks": auto["blocks"],
        "pick_blocks": pick["blocks"],
        "auto_s": auto["wall_s"],
        "grid_s": grid_s,
        "pick_s": pick["wall_s"],
        "auto_steps": auto["steps"],
        "grid_steps": grid_steps,
        "time_ratio": auto["wall_s"] / grid_s,
        "steps_ratio": auto["steps"] / grid_steps,
        "auto_test": auto["test"],
        "pick_test": pick["test"],
        "auto_minus_pick_ndcg10": vs_pick,
        "auto_minus_first_stage_ndcg10": vs_first,
        "growth": auto["growth"],
        "target": "met" if time_ok and vs_pick[2] >= 0 and vs_first[2] >= 0 else "missed",
    }
    return "\n".join(lines), summary


def overview(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| data, model | depth auto / grid pick | time auto / grid | steps auto / grid | "
        "test NDCG@10 auto − pick | auto − its first stage | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['title']} | {s['auto_blocks']} / {s['pick_blocks']} | {s['time_ratio']:.2f} | "
            f"{s['steps_ratio']:.2f} | {interval_text(*s['auto_minus_pick_ndcg10'], signed=True)} | "
            f"{interval_text(*s['auto_minus_first_stage_ndcg10'], signed=True)} | {s['target']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default="ml-100k:time,lastfm,beauty,diginetica", help=f"of {', '.join(DATA)}"
    )
    parser.add_argument("--models", default="nextitnet,sasrec")
    parser.add_argument("--loss", default="full", help="full | sampled (diginetica always sampled)")
    parser.add_argument("--min-gain", type=float, default=DEFAULT_MIN_GAIN)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=4, help="validations without gain that end a run")
    parser.add_argument("--stage-patience", type=int, default=2, help="the same, for auto's stages")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate for every run")
    parser.add_argument("--time-budget", type=float, default=0.0, help="seconds per run or stage (0: none)")
    parser.add_argument("--valid-sample", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "depth_search")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    sections, summaries = [], []
    started = time.perf_counter()
    for name in [d for d in args.data.split(",") if d]:
        spec = data_spec(name, args.shared)
        split = split_data(spec, *load_data(spec))
        loss = "sampled" if name.startswith("diginetica") else args.loss
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_len=args.max_len,
            lr=args.lr,
            patience=args.patience,
            metric=METRIC,
            loss=loss,
            threads=args.threads,
            time_budget_s=args.time_budget,
            valid_sample=args.valid_sample,
            seed=args.seed,
            device="auto",
        )
        for model in [m for m in args.models.split(",") if m]:
            options = dict(MODELS[model])
            if "max_len" in options:
                options["max_len"] = max(options["max_len"], args.max_len)
            grid_depths = GRIDS[model]
            cfg = model_config(model, {**options, "blocks": grid_depths[-1]})
            auto_plan = StackingSchedule(
                start_blocks=grid_depths[0],
                final_blocks=grid_depths[-1],
                method="preserving",
                grow="auto",
                min_gain=args.min_gain,
                stage_patience=args.stage_patience,
            )
            auto = train("auto", model, cfg, split, config, auto_plan)
            grid = [
                train(f"scratch-{d}", model, cfg, split, config, StackingSchedule(d, d, method="none"))
                for d in grid_depths
            ]
            title = f"{name} {model} {loss}"
            table, summary = compare(title, auto, grid)
            slug = title.replace(":", "_").replace(" ", "-")
            save_curves_plot(
                {r["name"]: r["curve"] for r in [auto, *grid]},
                args.out / f"{slug}.png",
                title=f"{title}: auto growth against a depth grid from scratch",
                ylabel="validation MRR@5",
                boundaries={"auto": auto["boundaries"]},
            )
            sections.append(table + f"\n\n![{title}]({slug}.png)\n")
            summaries.append(summary)
            print(table, flush=True)
            (args.out / "table.md").write_text("\n\n".join(sections) + "\n")  # kept if stopped early
            (args.out / "summary.json").write_text(json.dumps(summaries, indent=1))
    header = (
        f"Depth search — {args.threads} thread(s), device auto; batch {args.batch_size}, histories "
        f"{args.max_len}, Adam {args.lr:g}, patience {args.patience} (auto's stages {args.stage_patience}), "
        f"min gain {args.min_gain:.1%}, validation sample {args.valid_sample}, seed {args.seed}; "
        f"total {time.perf_counter() - started:.0f} s."
    )
    text = header + "\n\n" + overview(summaries) + "\n\n" + "\n\n".join(sections) + "\n"
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
