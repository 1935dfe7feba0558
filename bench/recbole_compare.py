"""Accuracy and training speed against RecBole 1.2.1, side by side, in one run on this machine.

    python bench/recbole_compare.py                      # ml-100k and Amazon Beauty, NextItNet and SASRec
    python bench/recbole_compare.py --datasets ml-100k --models nextitnet --recbole-budget 600

Protocol (both systems): the same events in the same order (RecBole gets our ordering written as
strictly increasing timestamps, so its time sort cannot reorder ties), leave-one-out per user
(last item test, second-last validation), full ranking over all items without excluding the
history, maximum history length 50, full-softmax cross-entropy, one torch thread per process.
Each system keeps its best-validation-NDCG@10 weights and is tested once with them. Test ranks
are pessimistic on ties for both, so the metrics and their 95 % bootstrap intervals are computed
the same way.

Jobs run ``--parallel`` at a time (default 2: one per core, each with one thread); each job is a
separate process, so neither system shares an interpreter or thread pool with the other.
RecBole runs in its own virtualenv (bench/.venv-recbole, created on first use).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package; the repository root takes its place.
sys.path[0] = str(REPO)

from bench.recbole_env import ensure_recbole_venv  # noqa: E402
from bench.reporting import interval_text, save_curves_plot  # noqa: E402

LOG = logging.getLogger("bench.recbole")

DATASETS = {
    "ml-100k": {"path": "ml-100k"},
    "beauty": {"path": "{shared}/amazon-Beauty/Beauty.txt"},
}
PEER_MODELS = {"nextitnet": "NextItNet", "sasrec": "SASRec"}
# Our models sized like RecBole's defaults: NextItNet block_num 5 × dilations [1, 4] = 10 residual
# blocks, d = 64; SASRec 2 layers, 2 heads, d = 64, inner size 256, dropout 0.5.
OUR_MODELS = {
    "nextitnet": {"blocks": 10, "embedding_dim": 64},
    "sasrec": {"blocks": 2, "embedding_dim": 64, "heads": 2, "ffn_dim": 256, "dropout": 0.5, "max_len": 50},
}
VALID_METRIC = "ndcg@10"  # RecBole's default valid_metric


def write_inter(split_source: Any, path: Path) -> None:
    """Write our ordered sequences as a RecBole atomic file: user, item, strictly increasing time."""
    dataset = split_source
    seqs = dataset.sequences
    raw = dataset.vocab.raw_ids
    with path.open("w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        counter = 0
        for i, user in enumerate(dataset.sequence_ids):
            for item in seqs.get(i):
                f.write(f"{user}\t{raw[item - 1]}\t{counter}\n")
                counter += 1


def run_ours(dataset_name: str, model_name: str, budget_s: float, out: Path, shared: str) -> None:
    """One of our runs, in this (child) process: train with early stopping, test the best weights."""
    import torch

    from trainer.evaluation import evaluate
    from trainer.models import build_model, model_config
    from trainer.runs import DataSpec, prepare_split
    from trainer.training import TrainConfig, fit

    threads = 1
    torch.set_num_threads(threads)
    split = prepare_split(DataSpec(path=DATASETS[dataset_name]["path"].format(shared=shared)))
    config = TrainConfig(
        epochs=200,
        batch_size=64,
        max_len=50,
        lr=1e-3,
        patience=5,
        metric=VALID_METRIC,
        time_budget_s=budget_s,
        threads=threads,
        device="cpu",
    )
    model = build_model(model_name, model_config(model_name, OUR_MODELS[model_name]), split.n_items)
    started = time.perf_counter()
    result = fit(model, split, config)
    test = evaluate(model, split.test, max_len=config.max_len)
    doc = {
        "system": "ours",
        "model": model_name,
        "dataset": dataset_name,
        "model_config": model.config.to_dict(),
        "train_config": config.to_dict(),
        "curve": [{"wall_s": r.wall_s, "valid": r.metrics} for r in result.history],
        "best_valid": result.best.metrics,
        "time_to_best_s": result.best.wall_s,
        "wall_s": time.perf_counter() - started,
        "stopped_by": result.stopped_by,
        "positions_per_s": result.positions_per_s,
        "test": test.metrics,
        "test_ranks": test.ranks.tolist(),
    }
    out.write_text(json.dumps(doc))


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in its own process and return its JSON document."""
    out = job["out"]
    if job["reuse"] and out.is_file():
        LOG.info("reusing %s", out)
        return json.loads(out.read_text())
    if job["system"] == "recbole":
        cmd = [
            str(job["python"]),
            "-P",  # keep bench/ off sys.path: bench/http.py would shadow the standard library
            str(REPO / "bench" / "recbole_peer.py"),
            "--inter",
            str(job["inter"]),
            "--model",
            PEER_MODELS[job["model"]],
            "--budget-s",
            str(job["budget"]),
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    else:
        cmd = [
            sys.executable,
            "-P",
            str(Path(__file__).resolve()),
            "--worker",
            job["dataset"],
            job["model"],
            "--ours-budget",
            str(job["budget"]),
            "--out",
            str(out),
            "--shared",
            job["shared"],
        ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    LOG.info("start %s %s %s", job["system"], job["dataset"], job["model"])
    t0 = time.perf_counter()
    log_path = out.with_suffix(".log")
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{job['system']} {job['dataset']} {job['model']} failed; see {log_path}")
    LOG.info("done  %s %s %s in %.0fs", job["system"], job["dataset"], job["model"], time.perf_counter() - t0)
    return json.loads(out.read_text())


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """RecBole's and our documents → one shape: curve of (wall_s, valid ndcg@10), ranks, speed."""
    if doc.get("peer") == "recbole":
        curve = [(e["cum_s"], e["valid"]["ndcg@10"]) for e in doc["epochs"]]
        return {
            "curve": curve,
            "best_valid": doc["best_valid"]["ndcg@10"],
            "time_to_best_s": doc["time_to_best_s"],
            "ranks": doc["test_ranks"],
            "positions_per_s": doc["samples_per_s"],
            "stopped_by": doc["stopped_by"],
            "recbole_test": doc.get("recbole_test"),
        }
    curve = [(c["wall_s"], c["valid"][VALID_METRIC]) for c in doc["curve"]]
    return {
        "curve": curve,
        "best_valid": doc["best_valid"][VALID_METRIC],
        "time_to_best_s": doc["time_to_best_s"],
        "ranks": doc["test_ranks"],
        "positions_per_s": doc["positions_per_s"],
        "stopped_by": doc["stopped_by"],
    }


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, v in curve if v >= target), None)


def report(results: dict[tuple[str, str, str], dict[str, Any]], out_dir: Path) -> str:
    """The side-by-side table (markdown) and the validation-curve plots."""
    import numpy as np

    from trainer.metrics import bootstrap_interval, per_case

    lines = [
        "| data | model | system | test HR@10 | test NDCG@10 | test MRR@10 | best valid NDCG@10 | "
        "time to best | time to RecBole's best | speed-up | target positions/s | stopped by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in sorted({k[0] for k in results}):
        for model in sorted({k[1] for k in results if k[0] == dataset}):
            peer = results.get((dataset, model, "recbole"))
            ours = results.get((dataset, model, "ours"))
            target = peer["best_valid"] if peer else None
            peer_time = peer["time_to_best_s"] if peer else None
            curves = {}
            for system, r in (("RecBole", peer), ("ours", ours)):
                if r is None:
                    continue
                ranks = np.asarray(r["ranks"])
                cells = []
                for metric in ("hr@10", "ndcg@10", "mrr@10"):
                    values = per_case(ranks, metric)
                    cells.append(interval_text(values.mean(), *bootstrap_interval(values)))
                reach = time_to_reach(r["curve"], target) if target is not None else None
                speedup = f"{peer_time / reach:.1f}×" if reach and peer_time else "—"
                reach_text = f"{reach:.0f} s" if reach is not None else "not reached"
                lines.append(
                    f"| {dataset} | {model} | {system} | {' | '.join(cells)} | {r['best_valid']:.4f} | "
                    f"{r['time_to_best_s']:.0f} s | {reach_text} | "
                    f"{speedup} | {r['positions_per_s']:,.0f} | {r['stopped_by']} |"
                )
                curves[system] = r["curve"]
            save_curves_plot(
                {name: [(t, v) for t, v in c] for name, c in curves.items()},
                out_dir / f"recbole-{dataset}-{model}.png",
                title=f"{dataset} {model}: validation NDCG@10 against wall time (1 thread each)",
                ylabel="validation NDCG@10",
                hline=target,
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="ml-100k,beauty")
    parser.add_argument("--models", default="nextitnet,sasrec")
    parser.add_argument("--recbole-budget", type=float, default=1800.0, help="seconds per RecBole model")
    parser.add_argument("--ours-budget", type=float, default=600.0, help="seconds per model of ours")
    parser.add_argument("--parallel", type=int, default=2, help="jobs at once (one thread each)")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="folder of real logs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--reuse", action="store_true", help="keep finished jobs' results; run the rest")
    parser.add_argument("--worker", nargs=2, metavar=("DATASET", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    if args.worker:
        run_ours(args.worker[0], args.worker[1], args.ours_budget, args.out, args.shared)
        return 0

    from trainer.data import load_dataset, resolve_dataset

    out_dir = args.out / "recbole"
    out_dir.mkdir(parents=True, exist_ok=True)
    python = ensure_recbole_venv()
    jobs = []
    for dataset in args.datasets.split(","):
        path = resolve_dataset(DATASETS[dataset]["path"].format(shared=args.shared))
        inter = out_dir / f"{dataset}.inter"
        write_inter(load_dataset(path), inter)
        for model in args.models.split(","):
            for system, budget in (("recbole", args.recbole_budget), ("ours", args.ours_budget)):
                jobs.append(
                    {
                        "system": system,
                        "dataset": dataset,
                        "model": model,
                        "budget": budget,
                        "inter": inter,
                        "python": python,
                        "shared": args.shared,
                        "out": out_dir / f"{system}-{dataset}-{model}.json",
                        "reuse": args.reuse,
                    }
                )
    # One RecBole job first, then ours beside it, then the other RecBole jobs: the pool stays full
    # and our (short) jobs finish early while the total time stays that of the RecBole budgets.
    peers = [j for j in jobs if j["system"] == "recbole"]
    jobs = peers[:1] + [j for j in jobs if j["system"] == "ours"] + peers[1:]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        docs = list(pool.map(run_job, jobs))
    results = {(j["dataset"], j["model"], j["system"]): normalise(d) for j, d in zip(jobs, docs, strict=True)}
    table = report(results, out_dir)
    header = (
        f"RecBole 1.2.1 vs ours — leave-one-out, full ranking, max length 50, CE loss, 1 thread per job, "
        f"{args.parallel} jobs at a time; RecBole budget {args.recbole_budget:.0f} s per model, ours "
        f"{args.ours_budget:.0f} s. Intervals: 95 % bootstrap over test users."
    )
    text = header + "\n\n" + table + "\n"
    (out_dir / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
