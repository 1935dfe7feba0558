"""Serving speed: eager PyTorch against ONNX Runtime on the same trained models, one thread each.

    python bench/serving.py                          # Beauty tables + micro-batching + ml-100k INT8 report
    python bench/serving.py --train-seconds 60 --skip-int8-report

What it does, in one process:

1. measures this machine's single-thread fp32 matmul peak (torch, numpy and ONNX Runtime, 1024³),
   and ONNX Runtime's MatMul at the shape the convolutions actually have;
2. trains NextItNet (16 blocks) and SASRec (2 blocks) on Amazon Beauty (leave-one-out, histories of
   up to 50 items) for a fixed short time budget — latency does not depend on accuracy; the
   checkpoints are cached in ``bench/results/serving/`` so a rerun only measures;
3. exports each model (the graph serving uses; for NextItNet also the previous batch-major graph
   (``bench/batch_major_graph.py``), the all-positions graph and the model's own forward as exported
   plainly) and an INT8 copy; exports are cached too (``--reexport`` after changing the exporter);
4. times the model call for batch 1 and 64 at length 50 (the worst case) and on real Beauty test
   histories, with one intra-op thread everywhere: p50/p99 latency, users/s, speed-up over eager,
   FLOPs per user and the fraction of the measured peak achieved;
   then NextItNet's new graph against the previous one side by side (ratios, share of the peak);
5. measures micro-batching: many client threads sending single requests, direct against batched;
6. INT8 parity report on ml-100k: HR@10 of eager, ONNX fp32 and ONNX INT8, and the speed-up.

Everything printed is also written to ``bench/results/serving/results.json``.
"""

# ruff: noqa: E402  (imports follow the path and BLAS-thread set-up below)
from __future__ import annotations

import os
import sys

# Run as a script, Python puts bench/ first on the path, where bench/http.py would shadow the
# standard library's http (which torch imports); the repository root goes there instead.
_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _BENCH]
sys.path.insert(0, os.path.dirname(_BENCH))

# Single-threaded BLAS for the numpy peak measurement; must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

REPO = Path(__file__).resolve().parents[1]

from bench.batch_major_graph import BatchMajorLastHidden
from serving import MicroBatcher, Recommender
from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.evaluation import evaluate
from trainer.export import (
    ExportConfig,
    PlainLastHidden,
    TopKGraph,
    count_items,
    export_model,
    export_onnx_graph,
    flops_per_request,
    reference_topk,
)
from trainer.models import build_model, model_config
from trainer.quantization import quantize_artifact
from trainer.runs import DataSpec, prepare_split
from trainer.training import TrainConfig, fit

LOG = logging.getLogger("bench.serving")
OUT = REPO / "bench" / "results" / "serving"
MAX_LEN = 50  # histories the models are trained and served with
K = 10  # items asked for, as serving's default; TopK's cost grows with it
K_INPUT = np.array([K], dtype=np.int64)
THREADS = 1  # one intra-op thread for every engine, as a web worker runs
TRAIN_THREADS = 1  # training budgets are in seconds, so this only sets how far the models get


@dataclass
class Row:
    """One timed configuration."""

    model: str
    engine: str
    batch: int
    histories: str  # "len 50" or "real"
    p50_ms: float  # CPU time of the call (see time_calls)
    p99_ms: float
    users_per_s: float  # batch ÷ mean CPU time per call
    flops_per_user: float  # of the computation this engine performs
    speedup: float = float("nan")  # over eager at the same batch and histories (p50)
    peak_share: float = float("nan")  # achieved FLOP/s ÷ measured peak
    wall_p50_ms: float = float("nan")  # wall clock, including waits for the CPU
    wall_p99_ms: float = float("nan")


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Timing:
    """Per-call seconds: CPU time of the calling thread, and wall-clock time."""

    cpu: np.ndarray
    wall: np.ndarray


def time_calls(
    call: Callable[[int], object], *, min_calls: int, min_seconds: float, warmup: int = 5
) -> Timing:
    """Time ``call(i)`` after ``warmup`` untimed calls.

    Every engine here runs on the calling thread (one intra-op thread), so the thread's CPU time is
    the call's cost on a core of its own: other processes on this shared 2-core machine can delay
    a call (wall time) but not inflate its CPU time. Both are kept.
    """
    for i in range(warmup):
        call(i)
    cpu, wall = [], []
    started = time.perf_counter()
    i = 0
    while i < min_calls or time.perf_counter() - started < min_seconds:
        w0, c0 = time.perf_counter(), time.thread_time()
        call(i)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
        i += 1
    return Timing(np.asarray(cpu), np.asarray(wall))


def ort_session(path: Path, threads: int = THREADS) -> ort.InferenceSession:
    """The session options serving uses (see serving.recommender)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def matmul_peaks() -> dict[str, float]:
    """Single-thread fp32 GFLOP/s of a 1024³ product in torch, numpy and ONNX Runtime."""
    n = 1024
    flops = 2.0 * n**3
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    peaks = {"torch": flops / np.median(time_calls(lambda _: a @ b, min_calls=10, min_seconds=1.0).cpu) / 1e9}
    an, bn = a.numpy(), b.numpy()
    peaks["numpy"] = flops / np.median(time_calls(lambda _: an @ bn, min_calls=10, min_seconds=1.0).cpu) / 1e9
    peaks["onnxruntime"] = ort_matmul_gflops(n, n, n)
    # The shape the NextItNet graph actually multiplies: batch 64 × 50 positions, 3 taps × 64 → 64.
    peaks["onnxruntime at the conv shape (3200×192 · 192×64)"] = ort_matmul_gflops(3200, 192, 64)
    return peaks


def ort_matmul_gflops(m: int, k: int, n: int) -> float:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [weight],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(proto, f"{tmp}/mm.onnx")
        sess = ort_session(Path(f"{tmp}/mm.onnx"))
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    seconds = np.median(time_calls(lambda _: sess.run(None, {"x": x}), min_calls=20, min_seconds=1.0).cpu)
    return 2.0 * m * k * n / seconds / 1e9


# -- models ------------------------------------------------------------------------------------


def trained(
    name: str, blocks: int, split, data: str, seconds: float, options: dict
) -> tuple[torch.nn.Module, dict]:
    """A model trained for ``seconds`` on ``split`` (cached by name, depth, data and budget)."""
    path = OUT / "checkpoints" / f"{data}-{name}-{blocks}-{int(seconds)}s.pt"
    if path.is_file():
        checkpoint = load_checkpoint(path)
        return checkpoint.model.eval(), checkpoint.extra["training"]
    torch.set_num_threads(TRAIN_THREADS)
    torch.manual_seed(0)
    model = build_model(name, model_config(name, {"blocks": blocks, **options}), split.n_items)
    config = TrainConfig(
        epochs=1000, max_len=MAX_LEN, time_budget_s=seconds, valid_sample=2000, patience=0, eval_every=200
    )
    LOG.info("training %s-%d on %s for %.0fs", name, blocks, data, seconds)
    result = fit(model, split, config)
    info = {
        "train_s": round(result.wall_s, 1),
        "steps": result.steps,
        "valid": result.best.metrics if result.best else {},
        "threads": torch.get_num_threads(),
    }
    save_checkpoint(
        path, model=model, vocab=split.vocab, train_config=config.to_dict(), extra={"training": info}
    )
    return model.eval(), info


PREVIOUS = "ort fp32 batch-major"  # NextItNet's graph before the time-major one (bench/batch_major_graph.py)


def artifacts(
    name: str, model, split, data: str, with_int8_output_layer: bool = False, reexport: bool = False
) -> dict[str, Path]:
    """The exported graphs to compare, built once and cached next to the checkpoints."""
    base = OUT / "artifacts" / f"{data}-{name}-{len(model.blocks)}"
    if reexport and base.exists():
        shutil.rmtree(base)
    counts = count_items(split.train, split.n_items)
    paths = {"ort fp32": base / "fp32"}
    if not paths["ort fp32"].exists():
        export_model(
            model, split.vocab, paths["ort fp32"], item_counts=counts, config=ExportConfig(max_len=MAX_LEN)
        )
    paths["ort int8"] = base / "int8"
    if not paths["ort int8"].exists():
        quantize_artifact(paths["ort fp32"], paths["ort int8"])
    if with_int8_output_layer:
        paths["ort int8 output layer too"] = base / "int8-output-layer"
        if not paths["ort int8 output layer too"].exists():
            quantize_artifact(paths["ort fp32"], paths["ort int8 output layer too"], output_layer=True)
        return paths  # the INT8 report compares only these
    if name == "nextitnet":
        paths["ort fp32 all positions"] = base / "fp32-all-positions"
        if not paths["ort fp32 all positions"].exists():
            export_model(
                model,
                split.vocab,
                paths["ort fp32 all positions"],
                item_counts=counts,
                config=ExportConfig(max_len=MAX_LEN, last_position=False),
            )
        paths[PREVIOUS] = base / "fp32-batch-major.onnx"
        if not paths[PREVIOUS].exists():
            graph = TopKGraph(model, max_len=MAX_LEN, max_k=100, last_position=True)
            graph.encoder = BatchMajorLastHidden(model, MAX_LEN)
            export_onnx_graph(graph, paths[PREVIOUS], max_len=MAX_LEN, opset=18, n_items=model.n_items)
        # The model's own forward exported as is (ONNX Conv between transposes).
        plain = base / "plain.onnx"
        if not plain.exists():
            graph = TopKGraph(model, max_len=MAX_LEN, max_k=100, last_position=False)
            graph.encoder = PlainLastHidden(model)
            export_onnx_graph(graph, plain, max_len=MAX_LEN, opset=18, n_items=model.n_items)
        paths["ort fp32 plain export"] = plain
    return paths


# -- inputs ------------------------------------------------------------------------------------


def full_histories(n: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(1, n, size=(rows, MAX_LEN)).astype(np.int64)


def real_batches(split, rows: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` batches of ``rows`` random test histories (last 50 items), left-padded per batch."""
    hist = split.test.histories
    batches = []
    for _ in range(count):
        idx = rng.choice(len(hist), size=rows, replace=False)
        seqs = [hist.get(i)[-MAX_LEN:] for i in idx]
        out = np.zeros((rows, max(len(s) for s in seqs)), dtype=np.int64)
        for r, s in enumerate(seqs):
            out[r, out.shape[1] - len(s) :] = s
        batches.append(out)
    return batches


# -- the comparison ----------------------------------------------------------------------------


def compare(label: str, model, split, paths: dict[str, Path], peak: float) -> list[Row]:
    """Every engine on the same inputs: batch 1 and 64, length-50 and real histories."""
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    sessions = {engine: ort_session(p / "model.onnx" if p.is_dir() else p) for engine, p in paths.items()}
    full_graphs = ("eager", "ort fp32 all positions", "ort fp32 plain export")
    inputs = {
        (1, "len 50"): [full_histories(model.n_items, 1, rng) for _ in range(64)],
        (64, "len 50"): [full_histories(model.n_items, 64, rng) for _ in range(8)],
        (1, "real"): real_batches(split, 1, 512, rng),
        (64, "real"): real_batches(split, 64, 16, rng),
    }
    for (batch, kind), feeds in inputs.items():
        settings = {"min_calls": 300 if batch == 1 else 20, "min_seconds": 1.5}
        torch.set_num_threads(THREADS)
        tensors = [torch.from_numpy(f) for f in feeds]
        with torch.inference_mode():
            engines = {
                "eager": time_calls(
                    lambda i, t=tensors: reference_topk(model, t[i % len(t)], None, K), **settings
                )
            }
        for engine, sess in sessions.items():
            engines[engine] = time_calls(
                lambda i, s=sess, f=feeds: s.run(None, {"item_seq": f[i % len(f)], "k": K_INPUT}), **settings
            )
        base = np.median(engines["eager"].cpu)
        mean_len = np.mean([(f != 0).sum(axis=1).mean() for f in feeds])
        for engine, timing in engines.items():
            # Every row of a batch is computed at the batch's padded width.
            last = engine not in full_graphs
            flops = np.mean([flops_per_request(model, f.shape[1], last_position=last) for f in feeds])
            row = Row(
                model=label,
                engine=engine,
                batch=batch,
                histories=kind if kind == "len 50" else f"real (mean {mean_len:.1f})",
                p50_ms=float(np.median(timing.cpu) * 1e3),
                p99_ms=float(np.percentile(timing.cpu, 99) * 1e3),
                users_per_s=float(batch / np.mean(timing.cpu)),
                flops_per_user=float(flops),
                speedup=float(base / np.median(timing.cpu)),
                wall_p50_ms=float(np.median(timing.wall) * 1e3),
                wall_p99_ms=float(np.percentile(timing.wall, 99) * 1e3),
            )
            row.peak_share = row.users_per_s * row.flops_per_user / (peak * 1e9)
            rows.append(row)
    return rows


def micro_batching(path: Path, split, clients: int, seconds: float) -> list[dict]:
    """Single requests from ``clients`` threads: straight to the recommender, or via MicroBatcher."""
    rec = Recommender.load(path, intra_op_threads=THREADS)
    raw = split.vocab.raw_ids
    hist = split.test.histories
    histories = [
        [raw[i - 1] for i in hist.get(j)[-MAX_LEN:]] for j in range(0, len(hist), max(1, len(hist) // 2000))
    ]
    results = []
    for mode in ("direct", "micro-batched"):
        batcher = MicroBatcher(rec, max_batch=64) if mode == "micro-batched" else None
        answer = batcher.recommend if batcher else rec.recommend
        latencies: list[list[float]] = [[] for _ in range(clients)]
        stop = threading.Event()

        def client(c: int, answer=answer, latencies=latencies, stop=stop) -> None:
            i = c
            while not stop.is_set():
                t0 = time.perf_counter()
                answer(histories[i % len(histories)], K)
                latencies[c].append(time.perf_counter() - t0)
                i += clients

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if batcher:
            mean_batch = batcher.requests / max(batcher.batches, 1)
            batcher.close()
        flat = np.concatenate([np.asarray(x) for x in latencies])
        results.append(
            {
                "mode": mode,
                "clients": clients,
                "requests_per_s": len(flat) / elapsed,
                "p50_ms": float(np.median(flat) * 1e3),
                "p99_ms": float(np.percentile(flat, 99) * 1e3),
                "mean_batch": mean_batch if batcher else 1.0,
            }
        )
    return results


def int8_report(seconds: float, reexport: bool = False) -> list[dict]:
    """HR@10, agreement with fp32 and speed of eager, ONNX fp32 and ONNX INT8 on ml-100k's test users."""
    spec = DataSpec(path=str(REPO.parent / "shared" / "data" / "ml-100k" / "ml-100k.inter"))
    split = prepare_split(spec)
    report = []
    for name, blocks, options in (
        ("nextitnet", 16, {"embedding_dim": 64}),
        ("sasrec", 2, {"embedding_dim": 64, "dropout": 0.2}),
    ):
        model, info = trained(name, blocks, split, "ml-100k", seconds, options)
        paths = artifacts(name, model, split, "ml-100k", with_int8_output_layer=True, reexport=reexport)
        torch.set_num_threads(THREADS)
        eager_hr = evaluate(model, split.test, max_len=MAX_LEN).metrics["hr@10"]
        row = {"model": f"{name}-{blocks}", "trained": info, "eager hr@10": eager_hr}
        rng = np.random.default_rng(0)
        one = [full_histories(model.n_items, 1, rng) for _ in range(64)]
        many = [full_histories(model.n_items, 64, rng) for _ in range(8)]
        fp32_top = None
        for engine in ("ort fp32", "ort int8", "ort int8 output layer too"):
            sess = ort_session(paths[engine] / "model.onnx")
            hit_rate, top = ort_hits(sess, split)
            fp32_top = top if fp32_top is None else fp32_top
            row[f"{engine} hr@10"] = hit_rate
            # Mean share of each user's top 10 that fp32 also has: more sensitive than HR@10.
            row[f"{engine} overlap@10"] = float(
                np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, fp32_top, strict=True)])
            )
            single = time_calls(
                lambda i, s=sess, f=one: s.run(None, {"item_seq": f[i % 64], "k": K_INPUT}),
                min_calls=300,
                min_seconds=1.0,
            )
            batch = time_calls(
                lambda i, s=sess, f=many: s.run(None, {"item_seq": f[i % 8], "k": K_INPUT}),
                min_calls=20,
                min_seconds=1.0,
            )
            row[f"{engine} batch 1 p50 ms"] = float(np.median(single.cpu) * 1e3)
            row[f"{engine} batch 64 users/s"] = float(64 / np.mean(batch.cpu))
        report.append(row)
    return report


def ort_hits(sess: ort.InferenceSession, split, k: int = 10) -> tuple[float, np.ndarray]:
    """HR@k of the graph's own top-k over the test cases, and the top-k lists."""
    hist, targets = split.test.histories, split.test.targets
    tops = []
    for start in range(0, len(targets), 64):
        seqs = [hist.get(i)[-MAX_LEN:] for i in range(start, min(start + 64, len(targets)))]
        seq = np.zeros((len(seqs), max(len(s) for s in seqs)), dtype=np.int64)
        for r, s in enumerate(seqs):
            seq[r, seq.shape[1] - len(s) :] = s
        tops.append(sess.run(None, {"item_seq": seq, "k": np.array([k])})[0])
    top = np.concatenate(tops)
    return float((top == targets[:, None]).any(axis=1).mean()), top


# -- printing ----------------------------------------------------------------------------------

COLUMNS = (
    ("model", 14, "<", "{}"),
    ("engine", 24, "<", "{}"),
    ("batch", 6, ">", "{}"),
    ("histories", 19, ">", "{}"),
    ("p50 ms", 8, ">", "{:.3f}"),
    ("p99 ms", 8, ">", "{:.3f}"),
    ("users/s", 9, ">", "{:.0f}"),
    ("×eager", 7, ">", "{:.1f}"),
    ("MFLOP/user", 11, ">", "{:.1f}"),
    ("% peak", 7, ">", "{:.1%}"),
    ("wall p50", 9, ">", "{:.3f}"),
    ("wall p99", 9, ">", "{:.3f}"),
)


def print_rows(rows: list[Row]) -> None:
    print(" ".join(f"{name:{align}{width}}" for name, width, align, _ in COLUMNS))
    for r in rows:
        values = (r.model, r.engine, r.batch, r.histories, r.p50_ms, r.p99_ms, r.users_per_s, r.speedup,
                  r.flops_per_user / 1e6, r.peak_share, r.wall_p50_ms, r.wall_p99_ms)  # fmt: skip
        cells = [fmt.format(v) for (_, _, _, fmt), v in zip(COLUMNS, values, strict=True)]
        print(" ".join(f"{c:{align}{width}}" for c, (_, width, align, _) in zip(cells, COLUMNS, strict=True)))


def print_against_previous(rows: list[Row]) -> list[dict]:
    """NextItNet's serving graph (``ort fp32``) beside the previous batch-major one, same run and inputs."""
    by = {(r.model, r.engine, r.batch, r.histories): r for r in rows}
    pairs = []
    print(f"\nNextItNet fp32, time-major graph (new) against the batch-major graph ({PREVIOUS}):")
    heads = (("batch", ">6"), ("histories", ">19"), ("p50 ms new/prev", ">17"), ("p99 ms new/prev", ">17"),
             ("users/s new/prev", ">19"), ("× speed", ">8"), ("% peak new/prev", ">17"))  # fmt: skip
    print("  " + "".join(f"{h:{spec}}" for h, spec in heads))
    for (model, engine, batch, histories), new in by.items():
        old = by.get((model, PREVIOUS, batch, histories))
        if engine != "ort fp32" or old is None:
            continue
        pair = {"batch": batch, "histories": histories, "new": asdict(new), "previous": asdict(old)}
        pairs.append(pair)
        print(
            f"  {batch:>6}{histories:>19}{new.p50_ms:>9.3f}/{old.p50_ms:<7.3f}"
            f"{new.p99_ms:>9.3f}/{old.p99_ms:<7.3f}"
            f"{new.users_per_s:>10.0f}/{old.users_per_s:<8.0f}{old.p50_ms / new.p50_ms:>8.2f}"
            f"{new.peak_share:>10.1%}/{old.peak_share:<6.1%}"
        )
    return pairs


def print_int8(report: list[dict]) -> None:
    print("\nINT8 (dynamic quantisation) on ml-100k, all test users; CPU time at length 50, one thread:")
    heads = (("model", "<14"), ("engine", "<28"), ("HR@10", ">8"), ("vs fp32", ">9"),
             ("top-10 ∩ fp32", ">14"), ("b1 p50 ms", ">11"), ("×fp32", ">7"), ("b64 users/s", ">13"),
             ("×fp32", ">7"))  # fmt: skip
    print("  " + "".join(f"{h:{spec}}" for h, spec in heads))
    for r in report:
        fp32 = r["ort fp32 hr@10"], r["ort fp32 batch 1 p50 ms"], r["ort fp32 batch 64 users/s"]
        eager = f"eager (trained {r['trained']['train_s']}s)"
        print(f"  {r['model']:<14}{eager:<28}{r['eager hr@10']:>8.4f}")
        for engine in ("ort fp32", "ort int8", "ort int8 output layer too"):
            hr, b1, b64 = r[f"{engine} hr@10"], r[f"{engine} batch 1 p50 ms"], r[f"{engine} batch 64 users/s"]
            print(
                f"  {'':<14}{engine:<28}{hr:>8.4f}{hr - fp32[0]:>+9.4f}{r[f'{engine} overlap@10']:>14.1%}"
                f"{b1:>11.3f}{fp32[1] / b1:>7.2f}{b64:>13.0f}{b64 / fp32[2]:>7.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train-seconds", type=float, default=60.0, help="training budget, NextItNet on Beauty"
    )
    parser.add_argument("--int8-train-seconds", type=float, default=30.0, help="budget per ml-100k model")
    parser.add_argument("--clients", type=int, default=16, help="client threads for the micro-batching test")
    parser.add_argument("--skip-int8-report", action="store_true")
    parser.add_argument("--skip-micro-batching", action="store_true")
    parser.add_argument(
        "--reexport", action="store_true", help="export the graphs again (after an exporter change)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("onnx_ir", "onnxscript", "torch", "trainer.training", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    peaks = matmul_peaks()
    # The highest single-thread matmul rate measured here, whatever the library or shape: small
    # products that stay in cache run faster than 1024³, and the limit should not flatter us.
    peak = max(peaks.values())
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores; onnxruntime {ort.__version__}, torch {torch.__version__}")
    # Other work on the machine skews every number below; the load average says how much there was.
    print("load average at start (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("single-thread fp32 matmul GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()))
    print(f"peak used below: {peak:.1f} GFLOP/s\n")

    beauty = REPO.parent / "shared" / "data" / "amazon-Beauty" / "Beauty.txt"
    split = prepare_split(DataSpec(path=str(beauty)))
    models = {
        "nextitnet-16": trained("nextitnet", 16, split, "beauty", args.train_seconds, {"embedding_dim": 64}),
        "sasrec-2": trained(
            "sasrec", 2, split, "beauty", args.train_seconds / 2, {"embedding_dim": 64, "dropout": 0.5}
        ),
    }
    for label, (model, info) in models.items():
        valid = {k: round(v, 4) for k, v in info["valid"].items() if k in ("hr@10", "ndcg@10")}
        print(
            f"{label}: {model.describe()}, {split.n_items - 1:,} items; trained only {info['train_s']}s "
            f"({info['steps']} steps, {info['threads']} threads), validation {valid}"
        )
    rows: list[Row] = []
    paths_by_model = {}
    for label, (model, _) in models.items():
        paths_by_model[label] = artifacts(label.split("-")[0], model, split, "beauty", reexport=args.reexport)
        rows += compare(label, model, split, paths_by_model[label], peak)
    print("\nlatency = CPU time of the call on its thread (immune to other processes); wall = clock time")
    print_rows(rows)
    against_previous = print_against_previous(rows)
    print("load average after timing (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))

    batching = []
    if not args.skip_micro_batching:
        print(f"\nmicro-batching, NextItNet-16, {args.clients} threads sending single recommend() calls:")
        fp32 = paths_by_model["nextitnet-16"]["ort fp32"]
        batching = micro_batching(fp32, split, args.clients, seconds=3.0)
    for r in batching:
        print(
            f"  {r['mode']:<14} {r['requests_per_s']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms   "
            f"p99 {r['p99_ms']:6.2f} ms   mean batch {r['mean_batch']:.1f}"
        )

    report = [] if args.skip_int8_report else int8_report(args.int8_train_seconds, args.reexport)
    if report:
        print_int8(report)
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f}s; load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    results = {
        "peaks_gflops": peaks,
        "rows": [asdict(r) for r in rows],
        "against_previous_graph": against_previous,
        "micro_batching": batching,
        "int8": report,
        "total_s": total,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
