"""Deterministic CPU kernels: what they cost per training step, and whether a seed repeats a run.

    python bench/determinism.py                    # diginetica, NextItNet 2 blocks, 600 steps, 2 threads
    python bench/determinism.py --steps 300 --repeats 3

The trainer runs every CPU fit under PyTorch's deterministic kernels
(``trainer.devices.deterministic_kernels``). The baseline here is the same loop with that
context replaced by a no-op, as training ran before. Both arms train the same model from the same
seed ``--repeats`` times, alternating so that machine drift hits both alike, and the script
prints the median milliseconds per optimiser step of each arm, their ratio, and whether each
arm's runs ended with bit-identical weights.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http (which torch imports); the repository root goes there instead.
sys.path[0] = str(REPO)

import torch  # noqa: E402

from bench.stackrec import MODELS, data_spec  # noqa: E402
from trainer import training  # noqa: E402
from trainer.data.types import Split  # noqa: E402
from trainer.models import build_model, model_config  # noqa: E402
from trainer.runs import load_data, split_data  # noqa: E402
from trainer.training import TrainConfig  # noqa: E402


def train_once(
    split: Split, config: TrainConfig, blocks: int, deterministic: bool
) -> tuple[float, list[torch.Tensor]]:
    """Milliseconds per optimiser step, and the trained weights."""
    torch.manual_seed(config.seed)
    options = dict(MODELS["nextitnet"], blocks=blocks)
    model = build_model("nextitnet", model_config("nextitnet", options), split.n_items)
    kernels = training.deterministic_kernels
    if not deterministic:
        training.deterministic_kernels = lambda device: contextlib.nullcontext()
    try:
        result = training.fit(model, split, config)
    finally:
        training.deterministic_kernels = kernels
    return 1000 * result.train_s / result.steps, [p.detach().clone() for p in model.parameters()]


def identical(runs: list[list[torch.Tensor]]) -> bool:
    return all(all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True)) for other in runs[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="diginetica")
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loss", default="sampled")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args(argv)

    spec = data_spec(args.data, args.shared)
    dataset, test = load_data(spec)
    split = split_data(spec, dataset, test)
    config = TrainConfig(
        epochs=1_000,
        max_steps=args.steps,
        lr=5e-3,
        loss=args.loss,
        eval_every=10**9,  # one validation, at the end; it is not timed (train_s counts steps only)
        valid_sample=500,
        patience=0,
        threads=args.threads,
        device="cpu",
    )
    timings: dict[bool, list[float]] = {True: [], False: []}
    weights: dict[bool, list[list[torch.Tensor]]] = {True: [], False: []}
    for _ in range(args.repeats):
        for deterministic in (False, True):
            ms, params = train_once(split, config, args.blocks, deterministic)
            timings[deterministic].append(ms)
            weights[deterministic].append(params)

    print(
        f"{args.data}, NextItNet {args.blocks} blocks, {args.loss} softmax, {args.steps} steps, "
        f"{args.threads} thread(s), {args.repeats} runs per arm"
    )
    print("| kernels | ms per step (median) | runs bit-identical |")
    print("|---|---|---|")
    for deterministic, name in ((False, "default (before)"), (True, "deterministic (trainer)")):
        median = statistics.median(timings[deterministic])
        print(f"| {name} | {median:.1f} | {'yes' if identical(weights[deterministic]) else 'no'} |")
    ratio = statistics.median(timings[True]) / statistics.median(timings[False])
    print(f"deterministic / default time per step: {ratio:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
