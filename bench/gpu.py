"""The GPU path in one command: training throughput and MFU by depth, growth against scratch at one
time budget, and ONNX Runtime's CUDA provider against the CPU, written as a markdown table.

    python bench/gpu.py           # one CUDA GPU, diginetica: under 8 minutes on an H200
    python bench/gpu.py --tiny    # the CPU, a small synthetic session log: under 30 s (a test runs it)

Without a CUDA GPU the full mode refuses to start (``--tiny`` is the CPU's check). Every part's
training is capped by a time budget, so a slower GPU takes about as long and gets fewer steps.
The full mode's plan on one H200 (wall seconds; about 7 minutes in all, 8 at most):

0. **set-up** (~30 s): CUDA start, diginetica read and split (~3 s), a bf16 matmul's peak.
1. **throughput by depth** (~80 s): NextItNet (d = 64, as bench/stackrec.py) with 2, 4, 8, 16,
   32 and 64 blocks, full softmax, the trainer's CUDA path (bf16 autocast, fused Adam, pinned
   batches, losses read every few steps), batches of 512 windows: per depth a warm-up fit of 30
   steps, then a fit of 10 s. Reported: steps/s, positions/s, model TFLOP/s (matrix products,
   counted as bench/throughput.py counts them: padding computed by the blocks, real targets by
   the output layer; backward twice the forward), MFU against the GPU's datasheet dense bf16 peak
   (where this file knows it) and the share of the measured matmul peak.
2. **growth at a fixed budget** (~220 s): three runs of 70 s each, same split and seed, through
   :func:`trainer.schedule.run_schedule` as the product runs them: automatic growth (2 → at most
   32 blocks, function-preserving), function-preserving 2 → 32 with every stage trained (the
   intermediate ones 2 epochs each), and 32 blocks from scratch. Reported: the kept depth, the
   stages, steps, best validation MRR@5, test HR@10, NDCG@10 and MRR@5 (all test sessions'
   next items, full ranking), and when each run first came within 1 % of the scratch run's best
   validation MRR@5.
3. **ONNX serving latency** (~40 s): the 32-block scratch model exported as serving loads it,
   timed at batch 1 and 64 with histories of 50 items (top 10): ONNX Runtime's CUDA provider
   (needs the ``gpu`` extra, onnxruntime-gpu), and the CPU with one thread (a web worker's
   setting) and with all cores; p50 and p99 of wall time per call.
4. **torch.compile** (what is left, ~100 s): 16 blocks as in part 1 with ``train.compile``, its
   compilation inside the warm-up; run last and only when at least 100 s of the 8 minutes are
   left, as compiling takes as long as the host's compiler does (the table says when skipped).

``--tiny`` runs the same parts at toy sizes on the CPU in fp32: depths 2 and 4, growth to 8 blocks
in 2.5 s per run, latency of the CPU rows (the CUDA row says it is not available).

Writes ``results.md`` (also printed) and ``results.json`` to ``--out`` (default bench/results/gpu).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package; the repository root takes its place.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != str(REPO / "bench")]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from bench.stackrec import MODELS, data_spec  # noqa: E402
from bench.throughput import block_flops, output_flops  # noqa: E402
from serving import ArtifactError, Recommender  # noqa: E402
from serving.artifact import INPUT_ITEMS, INPUT_K  # noqa: E402
from serving.providers import CPU, CUDA, session_device  # noqa: E402
from trainer.data.batching import TrainBatcher, make_windows  # noqa: E402
from trainer.data.types import Split  # noqa: E402
from trainer.devices import resolve_precision  # noqa: E402
from trainer.evaluation import evaluate  # noqa: E402
from trainer.export import ExportConfig, count_items, export_model  # noqa: E402
from trainer.models import build_model, model_config  # noqa: E402
from trainer.models.base import SequentialRecommender  # noqa: E402
from trainer.runs import DataSpec, prepare_split  # noqa: E402
from trainer.schedule import StackingSchedule, run_schedule  # noqa: E402
from trainer.training import TrainConfig, fit  # noqa: E402

LOG = logging.getLogger("bench.gpu")
OUT = REPO / "bench" / "results" / "gpu"
SHARED = REPO.parent / "shared" / "data"
METRIC = "mrr@5"  # StackRec's reference selects and compares by MRR@5
TARGET_TOLERANCE = 0.01  # "reached the scratch run's best": within 1 % of it, as bench/stackrec.py
MAX_LEN = 50
K = 10
# Dense bf16 tensor-core peaks from NVIDIA's datasheets (FLOP/s, without sparsity), matched against
# torch.cuda.get_device_name() in this order; any other GPU is measured against its matmul peak only.
DATASHEET_BF16 = (
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one mode measures, and the time it gives each part."""

    depths: tuple[int, ...]
    compile_depth: int  # 0: no compiled row
    embedding_dim: int
    batch_size: int
    warmup_steps: int
    depth_seconds: float  # timed fit per depth
    final_blocks: int  # growth part: the ceiling, and the scratch run's depth
    growth_seconds: float  # per growth run
    stage_epochs: int  # fixed growth: epochs of each intermediate stage
    valid_sample: int
    latency_calls: dict[int, int]  # batch → timed calls
    latency_seconds: float  # per (engine, batch), at most
    deadline_s: float  # the whole run; the compile row runs only with compile_reserve_s of it left
    compile_reserve_s: float
    threads: int  # torch's CPU threads for training; 0: its default


FULL = Plan(
    depths=(2, 4, 8, 16, 32, 64),
    compile_depth=16,
    embedding_dim=MODELS["nextitnet"]["embedding_dim"],
    batch_size=512,
    warmup_steps=30,
    depth_seconds=10.0,
    final_blocks=32,
    growth_seconds=70.0,
    stage_epochs=2,
    valid_sample=2000,
    latency_calls={1: 300, 64: 100},
    latency_seconds=4.0,
    deadline_s=480.0,
    compile_reserve_s=100.0,
    threads=0,
)
TINY = Plan(
    depths=(2, 4),
    compile_depth=0,  # compiling on the CPU takes longer than the whole tiny run
    embedding_dim=16,
    batch_size=64,
    warmup_steps=3,
    depth_seconds=1.0,
    final_blocks=8,
    growth_seconds=2.5,
    stage_epochs=1,
    valid_sample=200,
    latency_calls={1: 50, 64: 10},
    latency_seconds=0.5,
    deadline_s=30.0,
    compile_reserve_s=0.0,
    threads=1,  # one thread per process, as the CPU benchmarks run (two on a shared 2-core machine contend)
)


# -- data ----------------------------------------------------------------------------------------


def synthetic_sessions(folder: Path, seed: int = 0) -> DataSpec:
    """A session log in diginetica's format (one session per line, items space-separated, the test
    file later), small and learnable: each item has three likely successors among 300 items."""
    rng = np.random.default_rng(seed)
    n_items = 300
    successors = rng.integers(1, n_items + 1, size=(n_items + 1, 3))

    def sessions(count: int) -> str:
        lines = []
        for _ in range(count):
            item = int(rng.integers(1, n_items + 1))
            session = [item]
            for _ in range(int(rng.integers(1, 10))):
                item = (
                    int(successors[item, rng.integers(0, 3)])
                    if rng.random() < 0.8
                    else int(rng.integers(1, n_items + 1))
                )
                session.append(item)
            lines.append(" ".join(map(str, session)))
        return "\n".join(lines) + "\n"

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_sessions.txt").write_text(sessions(3000))
    (folder / "test_sessions.txt").write_text(sessions(300))
    return DataSpec(
        path=str(folder / "train_sessions.txt"),
        split="sessions",
        test_path=str(folder / "test_sessions.txt"),
    )


# -- measuring -----------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """FLOP/s of an n³ product in ``dtype`` on ``device``: the median of 10 after 3 warm-ups."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(13):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def datasheet_peak(name: str) -> float | None:
    return next((peak for key, peak in DATASHEET_BF16 if key in name), None)


def fit_flops(model: SequentialRecommender, split: Split, config: TrainConfig, steps: int) -> float:
    """Matrix-product FLOPs of the first ``steps`` batches :func:`fit` trains with ``config``.

    The batch order depends only on the seed, so the batches are planned again here: the blocks
    compute every position of a batch (padding too) forward and twice backward, the output layer
    each real target (bench.throughput's counts).
    """
    windows = make_windows(split.train, config.max_len)
    batcher = TrainBatcher(windows, config.batch_size, shuffle=True, seed=config.seed, bucket=config.bucket)
    pairs = windows.lengths() - 1
    flops, done, epoch = 0.0, 0, 0
    while done < steps:
        for idx in batcher.plan(epoch):
            if done == steps:
                break
            width = int(pairs[idx].max())
            flops += 3 * block_flops(model, len(idx) * width, width)
            flops += output_flops(model, config.loss, int(pairs[idx].sum()), 0)
            done += 1
        epoch += 1
    return flops


def nextitnet(blocks: int, plan: Plan, n_items: int, seed: int = 0) -> SequentialRecommender:
    torch.manual_seed(seed)
    return build_model("nextitnet", nextitnet_config(plan, blocks), n_items)


def nextitnet_config(plan: Plan, blocks: int):
    return model_config(
        "nextitnet", {**MODELS["nextitnet"], "embedding_dim": plan.embedding_dim, "blocks": blocks}
    )


def train_config(plan: Plan, device: torch.device, **changes: Any) -> TrainConfig:
    base = TrainConfig(
        epochs=1000,
        batch_size=plan.batch_size,
        max_len=MAX_LEN,
        loss="full",
        valid_sample=plan.valid_sample,
        patience=0,
        device=device.type,
        threads=plan.threads,
        precision="auto",  # bf16 on the GPU, fp32 on the CPU
    )
    return dataclasses.replace(base, **changes)


# -- part 1: throughput by depth -----------------------------------------------------------------


def throughput_row(
    split: Split,
    plan: Plan,
    device: torch.device,
    blocks: int,
    compiled: bool,
    peaks: dict[str, float | None],
) -> dict[str, Any]:
    model = nextitnet(blocks, plan, split.n_items)
    quiet = {"eval_every": 10**7, "valid_sample": min(plan.valid_sample, 256), "compile": compiled}
    started = time.perf_counter()
    fit(model, split, train_config(plan, device, max_steps=plan.warmup_steps, **quiet))
    warmup_s = time.perf_counter() - started
    result = fit(model, split, train_config(plan, device, time_budget_s=plan.depth_seconds, **quiet))
    flops = fit_flops(model, split, train_config(plan, device), result.steps) / result.train_s
    row = {
        "blocks": blocks,
        "compile": compiled,
        "steps": result.steps,
        "train_s": result.train_s,
        "warmup_s": warmup_s,
        "steps_per_s": result.steps / result.train_s,
        "positions_per_s": result.positions_per_s,
        "tflops": flops / 1e12,
        "mfu": flops / peaks["datasheet"] if peaks["datasheet"] else None,
        "matmul_share": flops / peaks["measured"],
    }
    LOG.info("throughput %s", row)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


# -- part 2: growth at a fixed budget ------------------------------------------------------------


def growth_runs(split: Split, plan: Plan, device: torch.device) -> tuple[list[dict[str, Any]], Any]:
    """The three runs; returns their rows and the scratch run's model (for the latency part)."""
    budget = plan.growth_seconds
    top = plan.final_blocks
    schedules = {
        f"auto growth (2 → at most {top})": StackingSchedule(
            start_blocks=2, final_blocks=top, grow="auto", time_limit_s=budget
        ),
        f"preserving 2 → {top}, every stage": StackingSchedule(
            start_blocks=2,
            final_blocks=top,
            grow="fixed",
            stage_epochs=plan.stage_epochs,
            time_limit_s=budget,
        ),
        f"{top} blocks from scratch": StackingSchedule(final_blocks=top, method="none", time_limit_s=budget),
    }
    config = train_config(plan, device)
    runs = {}
    for name, schedule in schedules.items():
        LOG.info("growth: %s for %.0f s", name, budget)
        runs[name] = run_schedule("nextitnet", nextitnet_config(plan, 2), split, config, schedule)
    scratch_name = list(schedules)[-1]
    target = runs[scratch_name].kept.best[METRIC] * (1 - TARGET_TOLERANCE)
    rows = []
    for name, run in runs.items():
        test = evaluate(run.model, split.test, max_len=MAX_LEN, device=device).metrics
        reached = next((t for t, value, _ in run.curve(METRIC) if value >= target), None)
        rows.append(
            {
                "run": name,
                "kept_blocks": run.kept.blocks,
                "stages": [s.blocks for s in run.stages],
                "steps": run.steps,
                "wall_s": run.wall_s,
                "best_valid": run.kept.best[METRIC],
                "test": {m: test[m] for m in ("hr@10", "ndcg@10", "mrr@5")},
                "reached_scratch_best_s": reached,
                "growth": run.growth,
            }
        )
        LOG.info("growth row %s", rows[-1])
    return rows, runs[scratch_name].model


# -- part 3: ONNX serving latency ----------------------------------------------------------------


def latency(call: Callable[[], object], calls: int, seconds: float) -> tuple[float, float, int]:
    """p50 and p99 milliseconds of wall time per call, after 5 warm-ups; at most ``seconds``."""
    for _ in range(5):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < calls and (len(times) < 5 or time.perf_counter() - started < seconds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(times)


def serving_rows(model: SequentialRecommender, split: Split, plan: Plan) -> list[dict[str, Any]]:
    engines: dict[str, dict[str, Any]] = {
        "ONNX Runtime, CUDA": {"providers": [CUDA, CPU], "intra_op_threads": 1},
        "ONNX Runtime, CPU, 1 thread (serving's default)": {"providers": [CPU], "intra_op_threads": 1},
        f"ONNX Runtime, CPU, all cores ({os.cpu_count()})": {"providers": [CPU], "intra_op_threads": 0},
    }
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "artifact"
        model = model.cpu().eval()
        export_model(
            model, split.vocab, path, item_counts=count_items(split.train, split.n_items),
            config=ExportConfig(max_len=MAX_LEN),
        )  # fmt: skip
        for engine, options in engines.items():
            absent = _unavailable(options["providers"])
            recommender = None
            if not absent:
                try:
                    recommender = Recommender.load(path, **options)
                except ArtifactError as exc:
                    absent = f"not available ({exc})"
            if (
                recommender is not None
                and CUDA in options["providers"]
                and session_device(recommender.session) != "cuda"
            ):
                absent, recommender = "not available (the CUDA provider could not start)", None
            for batch, calls in plan.latency_calls.items():
                if recommender is None:
                    rows.append({"engine": engine, "batch": batch, "note": absent})
                    continue
                histories = rng.integers(1, model.n_items, size=(batch, MAX_LEN)).astype(np.int64)
                feed = {INPUT_ITEMS: histories, INPUT_K: np.array([K], dtype=np.int64)}
                p50, p99, n = latency(
                    lambda s=recommender.session, f=feed: s.run(None, f), calls, plan.latency_seconds
                )
                rows.append(
                    {"engine": engine, "batch": batch, "p50_ms": p50, "p99_ms": p99, "calls": n,
                     "users_per_s": batch / (p50 / 1e3), "note": ""}
                )  # fmt: skip
                LOG.info("latency %s", rows[-1])
    return rows


def _unavailable(providers: list[str]) -> str:
    if CUDA in providers and CUDA not in ort.get_available_providers():
        return "not available (this ONNX Runtime has no CUDA provider; the gpu extra installs one)"
    return ""


# -- the report ----------------------------------------------------------------------------------


def _number(value: float | None, spec: str, unit: str = "") -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{spec}}{unit}"
    )


def markdown(doc: dict[str, Any]) -> str:
    env, plan = doc["environment"], doc["plan"]
    precision = "bf16 autocast" if env["precision"] == "bf16" else "fp32"
    lines = [
        f"# bench/gpu.py{' --tiny' if doc['tiny'] else ''}: {env['device_name']}",
        "",
        f"{env['data']}; torch {env['torch']}, ONNX Runtime {env['onnxruntime']} "
        f"({', '.join(env['ort_providers'])}); {env['date']}; {doc['total_s']:.0f} s in all "
        f"({', '.join(f'{part} {seconds:.0f} s' for part, seconds in doc['part_s'].items())}).",
        "",
        f"## Training throughput by depth (NextItNet d={plan['embedding_dim']}, full softmax, {precision}, "
        f"batches of {plan['batch_size']} windows)",
        "",
        f"Matmul peak measured: {doc['peaks']['measured'] / 1e12:.3g} TFLOP/s "
        f"({doc['peaks']['measured_what']}); "
        + (
            f"datasheet: {doc['peaks']['datasheet'] / 1e12:.0f} TFLOP/s dense bf16."
            if doc["peaks"]["datasheet"]
            else "no datasheet peak known for this device, so no MFU column."
        ),
        "",
        "| blocks | compile | steps/s | positions/s | model TFLOP/s | MFU | share of measured matmul peak |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["throughput"]:
        lines.append(
            f"| {r['blocks']} | {'yes' if r['compile'] else 'no'} | {r['steps_per_s']:.1f} | "
            f"{r['positions_per_s']:,.0f} | {r['tflops']:.3g} | {_number(r['mfu'], '.2%')} | "
            f"{r['matmul_share']:.2%} |"
        )
    lines += ["", f"torch.compile: {doc['compile']}."]
    lines += [
        "",
        f"## Growth against scratch, {plan['growth_seconds']:g} s per run (validation MRR@5 picks the model)",
        "",
        "| run | kept blocks | stages | steps | best valid MRR@5 | test HR@10 | test NDCG@10 | test MRR@5 "
        "| reached scratch's best (±1 %) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["growth"]:
        test = r["test"]
        reached = (
            _number(r["reached_scratch_best_s"], ".0f", " s")
            if r["reached_scratch_best_s"]
            else "not reached"
        )
        lines.append(
            f"| {r['run']} | {r['kept_blocks']} | {' → '.join(map(str, r['stages']))} | {r['steps']} | "
            f"{r['best_valid']:.4f} | {test['hr@10']:.4f} | {test['ndcg@10']:.4f} | {test['mrr@5']:.4f} "
            f"| {reached} |"
        )
    lines += [
        "",
        f"## ONNX Runtime latency ({plan['final_blocks']} blocks from scratch, histories of {MAX_LEN}, "
        f"top {K})",
        "",
        "| engine | batch | p50 ms | p99 ms | users/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in doc["serving"]:
        if r["note"]:
            lines.append(f"| {r['engine']} | {r['batch']} | {r['note']} | | |")
        else:
            lines.append(
                f"| {r['engine']} | {r['batch']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {r['users_per_s']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the CPU at toy sizes, under 30 s (CI)")
    parser.add_argument("--out", default=str(OUT), help="folder for results.md and results.json")
    parser.add_argument("--shared", default=str(SHARED), help="the folder of real logs (diginetica)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    if not args.tiny and not torch.cuda.is_available():
        print(
            "bench/gpu.py needs a CUDA GPU and PyTorch sees none; --tiny runs its CPU check", file=sys.stderr
        )
        return 2
    device = torch.device("cpu" if args.tiny else "cuda")
    plan = TINY if args.tiny else FULL
    out = Path(args.out)

    with tempfile.TemporaryDirectory() as tmp:
        spec = synthetic_sessions(Path(tmp)) if args.tiny else data_spec("diginetica", args.shared)
        split = prepare_split(spec)
    data = (
        f"synthetic sessions ({len(split.train):,} training, {split.n_items - 1} items)"
        if args.tiny
        else f"diginetica ({len(split.train):,} training sessions, {split.n_items - 1:,} items)"
    )
    precision = resolve_precision("auto", device)
    if plan.threads:
        torch.set_num_threads(plan.threads)  # the peak is measured with the threads training uses
    if device.type == "cuda":
        measured = matmul_peak(device, torch.bfloat16, 8192)
        measured_what = "bf16 8192³"
        name = torch.cuda.get_device_name(device)
    else:
        measured = matmul_peak(device, torch.float32, 512)
        measured_what = f"fp32 512³, {torch.get_num_threads()} thread(s)"
        name = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    peaks = {"measured": measured, "measured_what": measured_what, "datasheet": datasheet_peak(name)}
    doc: dict[str, Any] = {
        "tiny": args.tiny,
        "plan": dataclasses.asdict(plan),
        "environment": {
            "device_name": name,
            "data": data,
            "precision": "bf16" if precision is torch.bfloat16 else "fp32",
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "ort_providers": ort.get_available_providers(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "peaks": peaks,
    }
    parts = {}
    t0 = time.perf_counter()
    doc["throughput"] = [throughput_row(split, plan, device, blocks, False, peaks) for blocks in plan.depths]
    parts["throughput"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc["growth"], scratch = growth_runs(split, plan, device)
    parts["growth"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc["serving"] = serving_rows(scratch, split, plan)
    parts["serving"] = time.perf_counter() - t0
    doc["compile"] = "not measured in tiny mode (compiling on a CPU takes longer than the whole run)"
    if plan.compile_depth:
        left = plan.deadline_s - (time.perf_counter() - started)
        if left >= plan.compile_reserve_s:
            t0 = time.perf_counter()
            doc["throughput"].append(throughput_row(split, plan, device, plan.compile_depth, True, peaks))
            doc["compile"] = f"compiled in the warm-up fit: {doc['throughput'][-1]['warmup_s']:.0f} s"
            parts["compile"] = time.perf_counter() - t0
        else:
            doc["compile"] = f"skipped: {left:.0f} s of the {plan.deadline_s:.0f} s were left"
    doc["part_s"] = parts
    doc["total_s"] = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    text = markdown(doc)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
