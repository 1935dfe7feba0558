"""Where training time goes: positions/s, GFLOP/s and the share of the machine's matmul peak, per phase.

    python bench/throughput.py          # ml-100k, Beauty, diginetica; NextItNet 2–64, SASRec 1–8; both losses
    python bench/throughput.py --quick  # a CI-sized run (< 20 s): a slice of ml-100k, depth 2, no RSS probes
    python bench/throughput.py --data beauty --models nextitnet --blocks 16 --losses full

What it does, in one process (plus two short child processes per dataset for the loss's memory):

1. measures this machine's fp32 matmul peak with the thread count training uses (``--threads``,
   default 1: one thread per process, as bench/recbole_compare.py and bench/serving.py run; two
   threads on this shared 2-core machine measure the neighbours as much as the code): a 1024³
   product, and for context the block and output-layer shapes of a training step;
2. for each (dataset, model, depth, loss) trains ``--steps`` real batches (chosen at evenly spaced
   quantiles of the epoch's batch sizes, so their mix of lengths is the epoch's) after two warm-up
   steps, ``--repeats`` times, timing each phase between synchronisation points (CUDA is
   synchronised; on the CPU the thread's CPU time is used when training has one thread, so other
   processes on the machine delay a step but do not inflate it) and taking the median per phase;
3. profiles one more step with torch.profiler and sorts the blocks' operator time into matrix
   products, layer norm, element-wise and copies: that is what "limit" reports;
4. times one warm validation (``trainer.evaluation.evaluate`` on the whole validation set, or
   ``--eval-cases`` of it scaled up) and its share of an epoch plus its validation; and ranks the
   validation cases from their hidden states both in chunks and as the previous whole [cases ×
   items] matrix (same ranks asserted);
5. compares the full-softmax loss computed plainly (``F.cross_entropy`` over [N, n_items]) with
   the chunked one (:func:`trainer.losses.chunked_cross_entropy`) at each dataset's real batch
   sizes (the median and the largest batch): time forward + backward and, in child processes, the
   peak resident memory it adds.

Phases of a step: ``data`` (cutting the epoch's batches, per position, and moving a batch to the
device), ``embedding`` (item lookup and mask, forward and backward), ``blocks fwd`` / ``blocks
bwd`` (``model.encode``: the residual blocks; for SASRec also its position embedding, input norm and
attention mask), ``output+loss`` (the output layer and softmax, forward and backward: the chunked
loss makes its gradients in its forward pass, so the two are one phase), ``optimiser`` (zero_grad,
gradient clipping, Adam). The backward passes are split by detaching the hidden states at each
boundary and backpropagating piece by piece, which gives the gradients one backward gives.

FLOPs are counted analytically, matrix products only (a multiply-add is 2 FLOPs; layer norms,
activations, the softmax's exp and Adam are memory-bound and counted as 0), with B·T the batch's
computed positions (padding included: the models compute it), N its real target positions, D the
embedding size, V the item count (with padding), K the sampled negatives, F the FFN width, k the
kernel width, T the window length::

    NextItNet block, forward      4·k·D²              per computed position (two k-tap D→D convolutions)
    SASRec block, forward         8·D² + 4·D·F + 4·T·D  per computed position (QKV and output
                                                      projections, FFN, scores and weighted sum)
    any backward                  2 × its forward      (gradient of the input and of the weight)
    full softmax                  6·V·D                per real position, forward + backward
    sampled softmax               6·(K + 1)·D          per real position
    validation, per case          blocks forward over its history + 2·V·D scoring

Everything printed is also written to ``bench/results/throughput/results.json``, with
``os.getloadavg()`` before and after each dataset.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package; the repository root takes its place.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != str(REPO / "bench")]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bench.stackrec import data_spec  # noqa: E402
from trainer.data.batching import TrainBatcher, eval_batches, make_windows  # noqa: E402
from trainer.data.types import Sequences, Split  # noqa: E402
from trainer.devices import deterministic_kernels  # noqa: E402
from trainer.evaluation import MAX_SCORES, evaluate, target_ranks  # noqa: E402
from trainer.losses import (  # noqa: E402
    chunked_cross_entropy,
    default_negatives,
    full_softmax_loss,
    sampled_softmax_loss,
)
from trainer.metrics import ranks_from_scores  # noqa: E402
from trainer.models import build_model, model_config  # noqa: E402
from trainer.models.base import SequentialRecommender  # noqa: E402
from trainer.runs import prepare_split  # noqa: E402
from trainer.training import TrainConfig, make_optimizer  # noqa: E402

LOG = logging.getLogger("bench.throughput")
OUT = REPO / "bench" / "results" / "throughput"
SHARED = REPO.parent / "shared" / "data"
DATASETS = ("ml-100k", "beauty", "diginetica")
DEPTHS = {"nextitnet": (2, 4, 8, 16, 32, 64), "sasrec": (1, 2, 4, 8)}
TRAIN = TrainConfig()  # batch 64 windows of up to 50 positions, Adam 1e-3, clipping at 5: the defaults
PHASES = ("data", "embedding", "blocks fwd", "blocks bwd", "output+loss", "optimiser")
BLOCKS_TARGET = 0.40  # the target share of the matmul peak for the blocks at 16+ blocks


# -- timing ------------------------------------------------------------------------------------


class Clock:
    """Seconds between marks: the thread's CPU time with one thread on the CPU, else wall time."""

    def __init__(self, device: torch.device, threads: int) -> None:
        self.cuda = device.type == "cuda"
        self.cpu_time = not self.cuda and threads == 1
        self.basis = "thread CPU time" if self.cpu_time else "wall time"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.thread_time() if self.cpu_time else time.perf_counter()


def median_seconds(call: Callable[[], object], clock: Clock, *, calls: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        t0 = clock.now()
        call()
        times.append(clock.now() - t0)
    return statistics.median(times)


def matmul_peaks(clock: Clock, device: torch.device, quick: bool) -> dict[str, float]:
    """fp32 GFLOP/s of a 1024³ product (the peak), and of the shapes a training step multiplies."""
    shapes = {
        "1024x1024 @ 1024x1024 (peak)": (1024, 1024, 1024),
        "conv as matmul 3200x192 @ 192x64": (3200, 192, 64),
        "output layer 3200x64 @ 64x12102": (3200, 64, 12102),
    }
    if quick:
        shapes = {"512x512 @ 512x512 (peak)": (512, 512, 512)}
    peaks = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        seconds = median_seconds(lambda a=a, b=b: a @ b, clock, calls=5 if quick else 15)
        peaks[name] = 2.0 * m * k * n / seconds / 1e9
    return peaks


# -- FLOPs -------------------------------------------------------------------------------------


def block_flops(model: SequentialRecommender, computed: int, width: int) -> float:
    """Forward FLOPs of all blocks over ``computed`` positions of windows ``width`` long."""
    config = model.config
    d = config.embedding_dim
    if model.name == "sasrec":
        ffn = config.ffn_dim or d  # type: ignore[attr-defined]
        per_position = 8 * d * d + 4 * d * ffn + 4 * width * d
    else:
        per_position = 4 * config.kernel_size * d * d  # type: ignore[attr-defined]
    return float(per_position * computed * len(model.blocks))


def output_flops(model: SequentialRecommender, loss: str, positions: int, negatives: int) -> float:
    """Forward + backward FLOPs of the output layer over ``positions`` real targets."""
    d = model.config.embedding_dim
    candidates = model.n_items if loss == "full" else negatives + 1
    return 6.0 * candidates * d * positions


# -- one training step, phase by phase ----------------------------------------------------------


@dataclass
class StepTimes:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    def add(self, other: StepTimes) -> None:
        for k, v in other.seconds.items():
            self.seconds[k] += v


def timed_step(
    model: SequentialRecommender,
    optimizer: torch.optim.Optimizer,
    inputs_np: np.ndarray,
    targets_np: np.ndarray,
    loss_name: str,
    negatives: int,
    generator: torch.Generator,
    clock: Clock,
    device: torch.device,
) -> StepTimes:
    """One optimiser step of the training loop (trainer.training.fit), with a mark between phases."""
    times = StepTimes()
    s = times.seconds
    t = clock.now()

    def mark(phase: str) -> None:
        nonlocal t
        now = clock.now()
        s[phase] += now - t
        t = now

    with torch.profiler.record_function("phase: data"):
        inputs = torch.from_numpy(inputs_np).to(device, non_blocking=True)
        targets = torch.from_numpy(targets_np).to(device, non_blocking=True)
        inputs, targets = model.training_inputs(inputs, targets, generator)
    mark("data")
    with torch.profiler.record_function("phase: embedding"):
        # As SequentialRecommender.forward: the item lookup and the real-position mask.
        mask = (inputs != 0).unsqueeze(-1).to(model.item_embedding.weight.dtype)  # [B, T, 1]
        embedded = model.item_embedding(inputs.clamp(min=0))  # [B, T, D]
        x = embedded.detach().requires_grad_()
    mark("embedding")
    with torch.profiler.record_function("phase: blocks fwd"):
        hidden = model.encode(x, mask)  # [B, T, D]
        h = hidden.detach().requires_grad_()
    mark("blocks fwd")
    with torch.profiler.record_function("phase: output+loss"):
        if loss_name == "sampled":
            loss = sampled_softmax_loss(model, h, targets, negatives, generator)
        else:
            loss = full_softmax_loss(model, h, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    mark("output+loss")
    with torch.profiler.record_function("phase: blocks bwd"):
        hidden.backward(h.grad)
    mark("blocks bwd")
    with torch.profiler.record_function("phase: embedding"):
        embedded.backward(x.grad)
    mark("embedding")
    with torch.profiler.record_function("phase: optimiser"):
        if TRAIN.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN.grad_clip)
        optimizer.step()
        float(loss.detach())  # the loop reads the loss every step
    mark("optimiser")
    return times


def representative_batches(batcher: TrainBatcher, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``steps`` batches of epoch 0 at evenly spaced quantiles of its batches' real positions."""
    batches = list(iter(batcher))
    positions = np.array([int((t > 0).sum()) for _, t in batches])
    order = np.argsort(positions, kind="stable")
    picks = order[np.linspace(0, len(order) - 1, min(steps, len(order))).round().astype(int)]
    return [batches[i] for i in picks]


# -- profiling the blocks ------------------------------------------------------------------------

CATEGORIES = {
    "matmul": (
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "convolution",
        "conv",
        "matmul",
        "linear",
        "dot",
        "addmv",
        "mv",
    ),
    "layer norm": ("layer_norm",),
    "copies": (
        "copy",
        "pad",
        "contiguous",
        "clone",
        "cat",
        "index",
        "gather",
        "scatter",
        "embedding",
        "fill",
    ),
}


def category(op: str) -> str:
    name = op.removeprefix("aten::")
    for cat, keys in CATEGORIES.items():
        if any(k in name for k in keys):
            return cat
    return "element-wise"


def profile_phases(steps: Callable[[], object]) -> dict[str, dict[str, float]]:
    """Self CPU time (s) of each operator category inside each phase of the profiled steps."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        steps()
    shares: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in prof.events():
        if event.name.startswith("phase: ") or not event.name.startswith("aten::"):
            continue
        parent, phase = event.cpu_parent, None
        while parent is not None:
            if parent.name.startswith("phase: "):
                phase = parent.name.removeprefix("phase: ")
                break
            parent = parent.cpu_parent
        if phase is not None:
            shares[phase][category(event.name)] += event.self_cpu_time_total / 1e6
    return {p: dict(c) for p, c in shares.items()}


def limit_text(row: dict[str, Any], peak: float) -> str:
    """What bounds this case, from its phase shares and the blocks' operator mix."""
    shares = row["phase_share"]
    reasons = []
    if shares["output+loss"] >= 0.5:
        over = (
            f"{row['n_items']:,} items"
            if row["loss"] == "full"
            else f"{row['candidates']:,} sampled candidates"
        )
        reasons.append(f"softmax over {over} ({shares['output+loss']:.0%} of a step)")
    blocks = shares["blocks fwd"] + shares["blocks bwd"]
    mix = row["blocks_ops"]
    total = sum(mix.values()) or 1.0
    non_matmul = {k: v / total for k, v in mix.items() if k != "matmul"}
    if blocks >= 0.25 and row["blocks_peak_share"] < BLOCKS_TARGET:
        top = max(non_matmul, key=non_matmul.get) if non_matmul else "matmul"
        matmul_eff = row["blocks_matmul_gflops"] / peak if row["blocks_matmul_gflops"] else 0.0
        reasons.append(
            f"blocks: {mix.get('matmul', 0) / total:.0%} of their time in matrix products "
            f"({matmul_eff:.0%} of peak there), {top} {non_matmul.get(top, 0):.0%}"
        )
    if shares["optimiser"] >= 0.2:
        reasons.append(f"Adam over {row['parameters']:,} parameters ({shares['optimiser']:.0%})")
    if shares["data"] >= 0.2:
        reasons.append(f"data ({shares['data']:.0%})")
    if not reasons:
        reasons.append("matrix products near their shape's speed")
    return "; ".join(reasons)


# -- evaluation ----------------------------------------------------------------------------------


def whole_matrix_ranks(
    model: SequentialRecommender, hidden: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The ranking evaluation did before: a [B, n_items] score matrix per batch of 2^24 scores."""
    rows = max(1, MAX_SCORES // model.n_items)
    return torch.cat(
        [
            ranks_from_scores(model.score_hidden(hidden[lo : lo + rows]).float(), targets[lo : lo + rows])
            for lo in range(0, len(targets), rows)
        ]
    )


def time_evaluation(
    model: SequentialRecommender, split: Split, cases: int, clock: Clock, device: torch.device
) -> dict[str, Any]:
    valid = split.valid
    n = min(cases or len(valid), len(valid))
    sample = valid.subset(np.sort(np.random.default_rng(0).choice(len(valid), size=n, replace=False)))
    # Warm: every validation after the first meets the same shapes (oneDNN builds a kernel per
    # shape the first time, which on a 2,000-case sample cost more than the ranking itself).
    evaluate(model, sample.subset(np.arange(min(n, 2000))), max_len=TRAIN.max_len, device=device)
    t0 = clock.now()
    evaluate(model, sample, max_len=TRAIN.max_len, device=device)
    seconds = clock.now() - t0
    # Blocks' work of the validation: each case's history, cut to what the model can see.
    context = model.context_length() or TRAIN.max_len
    computed = int(np.minimum(np.minimum(sample.histories.lengths(), TRAIN.max_len), context).sum())
    flops = block_flops(model, computed, TRAIN.max_len) + 2.0 * model.n_items * model.config.embedding_dim * n
    return {
        "cases": n,
        "seconds": seconds,
        "seconds_full": seconds * len(valid) / n,
        "gflops": flops / seconds / 1e9,
    }


def compare_ranking(
    model: SequentialRecommender, split: Split, cases: int, clock: Clock, device: torch.device
) -> dict[str, Any]:
    """Ranking ``cases`` validation cases from their hidden states: whole matrix against chunks."""
    sample = split.valid.subset(np.arange(min(cases, len(split.valid))))
    hidden, targets = [], []
    with torch.no_grad():
        model.eval()
        for histories, y, _ in eval_batches(sample, TRAIN.max_len, 1024):
            hidden.append(model.forward(torch.from_numpy(histories).to(device))[:, -1])
            targets.append(torch.from_numpy(y).to(device))
        h, y = torch.cat(hidden), torch.cat(targets)
        before = whole_matrix_ranks(model, h, y)
        after = target_ranks(model, h, y)
        if not torch.equal(before, after):
            raise AssertionError("chunked ranking disagrees with the whole-matrix ranking")
        old = median_seconds(lambda: whole_matrix_ranks(model, h, y), clock, calls=3, warmup=1)
        new = median_seconds(lambda: target_ranks(model, h, y), clock, calls=3, warmup=1)
        model.train()
    return {
        "cases": len(y),
        "whole_matrix_s": old,
        "chunked_s": new,
        "speedup": old / new,
        "same_ranks": True,
    }


# -- the loss, plain against chunked -----------------------------------------------------------


def plain_cross_entropy(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(h, w, b), y)


LOSSES = {"plain": plain_cross_entropy, "chunked": chunked_cross_entropy}


def loss_inputs(n: int, v: int, d: int, device: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, d, generator=g).to(device).requires_grad_()
    w = (0.02 * torch.randn(v, d, generator=g)).to(device).requires_grad_()
    b = torch.zeros(v, device=device, requires_grad=True)
    y = torch.randint(1, v, (n,), generator=g).to(device)
    return h, w, b, y


def loss_rss_child(method: str, n: int, v: int, d: int) -> None:
    """In a child process: the peak resident memory one forward + backward adds, printed in bytes.

    The peak (VmHWM) is reset first (``5`` to /proc/self/clear_refs), so the import's own peak
    does not hide the loss's.
    """
    torch.set_num_threads(1)
    h, w, b, y = loss_inputs(n, v, d, "cpu")
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    LOSSES[method](h, w, b, y).backward()
    print((_status_kib("VmHWM") - before) * 1024)


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def compare_losses(
    positions: list[int], n_items: int, d: int, clock: Clock, device: torch.device, probe_rss: bool
) -> list[dict[str, Any]]:
    rows = []
    for n in positions:
        h, w, b, y = loss_inputs(n, n_items, d, str(device))
        row: dict[str, Any] = {"positions": n, "n_items": n_items}
        values = {}
        for method, fn in LOSSES.items():

            def step(
                fn: Callable[..., torch.Tensor] = fn, inputs: tuple[torch.Tensor, ...] = (h, w, b, y)
            ) -> None:
                for t in inputs[:3]:
                    t.grad = None
                fn(*inputs).backward()

            row[f"{method}_s"] = median_seconds(step, clock, calls=5)
            values[method] = (fn(h, w, b, y).item(), torch.autograd.grad(fn(h, w, b, y), w)[0])
            if probe_rss and device.type == "cpu":
                out = subprocess.run(
                    [sys.executable, "-P", __file__, "--rss-child", method, str(n), str(n_items), str(d)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=dict(os.environ, OMP_NUM_THREADS="1"),
                )
                row[f"{method}_rss_bytes"] = int(out.stdout.split()[-1])
        row["speedup"] = row["plain_s"] / row["chunked_s"]
        row["max_grad_difference"] = float((values["plain"][1] - values["chunked"][1]).abs().max())
        row["loss_difference"] = abs(values["plain"][0] - values["chunked"][0])
        # Live [N, V] fp32 matrices at the plain loss's peak (scores, log-softmax, its gradient)
        # against one [CHUNK_ROWS, V] chunk.
        row["plain_scores_bytes"] = 3 * 4 * n * n_items
        rows.append(row)
    return rows


# -- the run -------------------------------------------------------------------------------------


def shrink(split: Split, sequences: int) -> Split:
    """The first ``sequences`` training sequences (and validation cases): a CI-sized slice."""
    train = split.train
    keep = min(sequences, len(train))
    train = Sequences.from_slices(train.items, train.offsets[:keep], train.lengths()[:keep])
    valid = split.valid.subset(np.arange(min(sequences, len(split.valid))))
    return Split(train, valid, valid, split.vocab, split.name)


@contextmanager
def loadavg_logged(doc: dict[str, Any], key: str) -> Iterator[None]:
    doc.setdefault("loadavg", {})[f"{key} before"] = os.getloadavg()
    yield
    doc["loadavg"][f"{key} after"] = os.getloadavg()


def run_case(
    split: Split,
    dataset: str,
    model_name: str,
    blocks: int,
    loss: str,
    args: argparse.Namespace,
    clock: Clock,
    device: torch.device,
    peak: float,
    batches: list[tuple[np.ndarray, np.ndarray]],
    data_s_per_position: float,
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model(model_name, model_config(model_name, {"blocks": blocks}), split.n_items).to(device)
    model.train()
    optimizer = make_optimizer(model, TRAIN)
    generator = torch.Generator(device=device).manual_seed(0)
    negatives = default_negatives(model.n_items)

    def step(batch: tuple[np.ndarray, np.ndarray]) -> StepTimes:
        return timed_step(model, optimizer, *batch, loss, negatives, generator, clock, device)

    for batch in batches[-2:]:  # warm-up on the largest batches: allocator and kernels
        step(batch)
    repeats = []
    for _ in range(args.repeats):
        total = StepTimes()
        for batch in batches:
            total.add(step(batch))
        repeats.append(total.seconds)
    seconds = {p: statistics.median(r[p] for r in repeats) for p in PHASES}
    positions = sum(int((t > 0).sum()) for _, t in batches)
    computed = sum(t.size for _, t in batches)
    seconds["data"] += data_s_per_position * positions  # cutting the batches (see main)
    step_s = sum(seconds.values())
    fwd_blocks = sum(block_flops(model, t.size, t.shape[1]) for _, t in batches)
    flops = {
        "blocks fwd": fwd_blocks,
        "blocks bwd": 2 * fwd_blocks,
        "output+loss": output_flops(model, loss, positions, negatives),
    }
    ops = profile_phases(lambda: [step(batch) for batch in batches])
    blocks_ops: dict[str, float] = defaultdict(float)
    for phase in ("blocks fwd", "blocks bwd"):
        for cat, s in ops.get(phase, {}).items():
            blocks_ops[cat] += s
    # The blocks' matmul speed: their FLOPs over the share of their time the profile put in products.
    blocks_s = seconds["blocks fwd"] + seconds["blocks bwd"]
    matmul_share = blocks_ops.get("matmul", 0.0) / (sum(blocks_ops.values()) or 1.0)
    row = {
        "dataset": dataset,
        "model": model_name,
        "blocks": blocks,
        "loss": loss,
        "n_items": model.n_items,
        "parameters": sum(p.numel() for p in model.parameters()),
        "candidates": model.n_items if loss == "full" else negatives + 1,
        "steps": len(batches),
        "positions": positions,
        "padding_share": 1 - positions / computed,
        "positions_per_s": positions / step_s,
        "gflops": sum(flops.values()) / step_s / 1e9,
        "peak_share": sum(flops.values()) / step_s / 1e9 / peak,
        "blocks_gflops": 3 * fwd_blocks / blocks_s / 1e9,
        "blocks_peak_share": 3 * fwd_blocks / blocks_s / 1e9 / peak,
        "blocks_matmul_gflops": 3 * fwd_blocks / (blocks_s * matmul_share) / 1e9 if matmul_share else 0.0,
        "output_gflops": flops["output+loss"] / seconds["output+loss"] / 1e9,
        "phase_seconds": seconds,
        "phase_share": {p: seconds[p] / step_s for p in PHASES},
        "blocks_ops": dict(blocks_ops),
        "phase_ops": ops,
    }
    if loss == "full" and not args.no_eval:
        row["evaluation"] = time_evaluation(model, split, args.eval_cases, clock, device)
        epoch_positions = row["epoch_positions"] = args.epoch_positions[dataset]
        epoch_s = epoch_positions / row["positions_per_s"]
        row["eval_share"] = row["evaluation"]["seconds_full"] / (epoch_s + row["evaluation"]["seconds_full"])
    row["limit"] = limit_text(row, peak)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | model | blocks | loss | positions/s | GFLOP/s | % peak | blocks % peak | "
        + " | ".join(PHASES)
        + " | validation (s) / share of epoch + validation | limit |"
    )
    lines = [head, "|" + "---|" * (len(PHASES) + 10)]
    for r in rows:
        phases = " | ".join(f"{r['phase_share'][p]:.0%}" for p in PHASES)
        ev = r.get("evaluation")
        ev_text = f"{ev['seconds_full']:.1f} / {r['eval_share']:.0%}" if ev else "—"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['blocks']} | {r['loss']} | {r['positions_per_s']:,.0f} | "
            f"{r['gflops']:.1f} | {r['peak_share']:.0%} | {r['blocks_peak_share']:.0%} | {phases} | "
            f"{ev_text} | {r['limit']} |"
        )
    return "\n".join(lines)


def loss_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| data | positions × items | plain (ms) | chunked (ms) | × faster | plain peak RSS added | "
        "chunked peak RSS added | max grad difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = [f"{r[k] / 2**20:.0f} MiB" if k in r else "—" for k in ("plain_rss_bytes", "chunked_rss_bytes")]
        lines.append(
            f"| {r['dataset']} | {r['positions']:,} × {r['n_items']:,} | {r['plain_s'] * 1e3:.1f} | "
            f"{r['chunked_s'] * 1e3:.1f} | {r['speedup']:.2f} | {rss[0]} | {rss[1]} | "
            f"{r['max_grad_difference']:.1e} |"
        )
    return "\n".join(lines)


def ranking_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| data | items | cases | whole matrix (s) | chunks (s) | × faster | same ranks |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['n_items']:,} | {r['cases']:,} | {r['whole_matrix_s']:.3f} | "
            f"{r['chunked_s']:.3f} | {r['speedup']:.1f} | {'yes' if r['same_ranks'] else 'NO'} |"
        )
    return "\n".join(lines)


def run_dataset(
    dataset: str, args: argparse.Namespace, clock: Clock, device: torch.device, peak: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Every (model, depth, loss) case of one dataset, then its loss and ranking comparisons."""
    split = prepare_split(data_spec(dataset, str(args.shared)))
    if args.quick:
        split = shrink(split, 120)
    windows = make_windows(split.train, TRAIN.max_len)
    batcher = TrainBatcher(windows, TRAIN.batch_size, seed=0)
    t0 = time.perf_counter()
    batches = representative_batches(batcher, args.steps)
    epoch_positions = int(windows.lengths().sum() - len(windows))
    # Cutting the whole epoch into batches, per target position (wall time: it is numpy).
    data_s_per_position = (time.perf_counter() - t0) / epoch_positions
    args.epoch_positions[dataset] = epoch_positions
    LOG.info("%s: %d items, %d batches an epoch", dataset, split.n_items, len(batcher))
    rows = []
    for model_name in args.models.split(","):
        depths = [int(b) for b in args.blocks.split(",")] if args.blocks else DEPTHS[model_name]
        for blocks in depths:
            for loss in args.losses.split(","):
                row = run_case(
                    split,
                    dataset,
                    model_name,
                    blocks,
                    loss,
                    args,
                    clock,
                    device,
                    peak,
                    batches,
                    data_s_per_position,
                )
                rows.append(row)
                LOG.info(
                    "%s %s-%d %s: %.0f positions/s, %.1f GFLOP/s (%.0f %% of peak, blocks %.0f %%): %s",
                    *(dataset, model_name, blocks, loss, row["positions_per_s"], row["gflops"]),
                    *(100 * row["peak_share"], 100 * row["blocks_peak_share"], row["limit"]),
                )
    sizes = sorted(int((t > 0).sum()) for _, t in batches)
    chosen = sorted({sizes[len(sizes) // 2], sizes[-1]})
    d = 64
    losses = [
        {"dataset": dataset, **r}
        for r in compare_losses(chosen, split.n_items, d, clock, device, probe_rss=not args.quick)
    ]
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 2}), split.n_items).to(device)
    ranking = {"dataset": dataset, "n_items": split.n_items}
    ranking.update(compare_ranking(model, split, args.eval_cases or len(split.valid), clock, device))
    return rows, losses, ranking


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny slices and depths: a CI check (< 20 s)")
    parser.add_argument("--data", default=",".join(DATASETS))
    parser.add_argument("--models", default="nextitnet,sasrec")
    parser.add_argument("--blocks", default="", help="depths for every model (default: see DEPTHS)")
    parser.add_argument("--losses", default="full,sampled")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (training's setting)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=8, help="batches timed per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-cases", type=int, default=0, help="validation cases timed (0: all)")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render", type=Path, help="print the tables of an earlier results.json and stop")
    parser.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        doc = json.loads(args.render.read_text())
        peak = next(iter(doc["matmul_gflops"].values()))
        for row in doc["cases"]:
            row.setdefault(
                "candidates",
                row["n_items"] if row["loss"] == "full" else default_negatives(row["n_items"]) + 1,
            )
            row["limit"] = limit_text(row, peak)
        print_report(doc, peak)
        return 0
    if args.rss_child:
        method, n, v, d = args.rss_child
        loss_rss_child(method, int(n), int(v), int(d))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("trainer.data.readers", "trainer.data.loading", "trainer.data.columns", "trainer.runs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.quick:
        args.data = "ml-100k" if args.data == ",".join(DATASETS) else args.data
        args.blocks = args.blocks or "2"
        args.steps, args.repeats, args.eval_cases = min(args.steps, 2), 1, 100

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = Clock(device, args.threads)
    doc: dict[str, Any] = {
        "command": " ".join([Path(__file__).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "torch": torch.__version__,
        "threads": args.threads,
        "device": str(device),
        "timing": clock.basis,
        "train": {"batch_size": TRAIN.batch_size, "max_len": TRAIN.max_len, "grad_clip": TRAIN.grad_clip},
    }
    with loadavg_logged(doc, "peak"):
        peaks = matmul_peaks(clock, device, args.quick)
    peak = next(iter(peaks.values()))
    doc["matmul_gflops"] = peaks
    LOG.info("matmul peak %.1f GFLOP/s (%d thread(s), %s); %s", peak, args.threads, clock.basis, peaks)

    rows, loss_rows, ranking_rows = [], [], []
    args.epoch_positions = {}
    with deterministic_kernels(device):  # as fit() trains on the CPU
        for dataset in args.data.split(","):
            with loadavg_logged(doc, dataset):
                cases, losses, ranking = run_dataset(dataset, args, clock, device, peak)
            rows += cases
            loss_rows += losses
            ranking_rows.append(ranking)

    doc.update(cases=rows, loss=loss_rows, ranking=ranking_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=1, default=float))
    print_report(doc, peak)
    return 0


def print_report(doc: dict[str, Any], peak: float) -> None:
    loads = ", ".join(f"{k} {v[0]:.1f}" for k, v in doc["loadavg"].items())
    print(
        f"matmul peak {peak:.1f} GFLOP/s, {doc['threads']} thread(s), {doc['timing']}; 1-minute load: {loads}"
    )
    print()
    print(table(doc["cases"]), "\n")
    print("Full-softmax loss, forward + backward, plain against chunked:\n")
    print(loss_table(doc["loss"]), "\n")
    print("Ranking validation cases from their hidden states:\n")
    print(ranking_table(doc["ranking"]))


if __name__ == "__main__":
    sys.exit(main())
