"""Shared-prefix evaluation against one pass per case: time to rank a validation set, same ranks.

    python bench/evaluation.py                     # ml-100k time split, NextItNet 2/8/16 blocks
    python bench/evaluation.py --data diginetica --max-len 50 --blocks 2,8

A time split turns every late event into a case predicted from everything before it, so the
cases of one user are prefixes of one another; so are a session log's prefix cases. The trainer
scores them from one pass over each sequence's longest history when the model's context fits
``--max-len`` (``trainer.evaluation.shared_prefix_batches``). The baseline is the same
``evaluate`` call on the same cases with their source sequences dropped, which takes the
one-pass-per-case path the trainer used before. Both arms rank the same cases with the same
model, alternating, ``--repeats`` times; the script prints the median seconds of each arm, their
ratio, the positions each arm encodes and whether the ranks are identical.

The models are untrained (random weights, every residual scale α set to 0.5 so that each block
changes the output): the cost does not depend on the weights, and identical ranks from random
weights are the stronger check.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http (which torch imports); the repository root goes there instead.
sys.path[0] = str(REPO)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.stackrec import MODELS, data_spec  # noqa: E402
from trainer.data.types import EvalSet  # noqa: E402
from trainer.evaluation import MAX_POSITIONS, evaluate, shared_prefix_batches  # noqa: E402
from trainer.models import build_model, model_config  # noqa: E402
from trainer.runs import load_data, split_data  # noqa: E402


def positions(cases: EvalSet, context: int, max_len: int, shared: bool) -> int:
    """Item positions the encoder runs over, padding left out."""
    if shared:
        return sum(int((w != 0).sum()) for w, *_ in shared_prefix_batches(cases, context, MAX_POSITIONS))
    return int(np.minimum(cases.histories.lengths(), min(context, max_len)).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k:time")
    parser.add_argument("--blocks", default="2,8,16")
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--cases", choices=("valid", "test"), default="valid")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = data_spec(args.data, args.shared)
    split = split_data(spec, *load_data(spec))
    cases = getattr(split, args.cases)
    if cases.source is None:
        parser.error(f"{args.data}: its {args.cases} cases share no histories; nothing to compare")
    alone = dataclasses.replace(cases, source=None)
    print(
        f"{args.data}, {args.cases}: {len(cases):,} cases from {len(np.unique(cases.source)):,} "
        f"sequences, histories up to {args.max_len}; {args.threads} thread(s), median of {args.repeats}\n"
    )
    print(
        "| blocks | context | items encoded: per case / shared | per case s | shared s | ratio | same ranks |"
    )
    print("|---|---|---|---|---|---|---|")
    for blocks in (int(b) for b in args.blocks.split(",")):
        torch.manual_seed(0)
        options = dict(MODELS["nextitnet"], blocks=blocks)
        model = build_model("nextitnet", model_config("nextitnet", options), split.n_items)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith("alpha"):
                    parameter.fill_(0.5)
        context = model.context_length()
        if context > args.max_len:
            print(f"| {blocks} | {context} | — | — | — | — | context exceeds --max-len: one pass per case |")
            continue
        times: dict[bool, list[float]] = {False: [], True: []}
        ranks = {}
        for _ in range(args.repeats):
            for shared in (False, True):
                started = time.perf_counter()
                ranks[shared] = evaluate(model, cases if shared else alone, max_len=args.max_len).ranks
                times[shared].append(time.perf_counter() - started)
        per_case, shared_s = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"| {blocks} | {context} | {positions(cases, context, args.max_len, False):,} / "
            f"{positions(cases, context, args.max_len, True):,} | {per_case:.2f} | {shared_s:.2f} | "
            f"{per_case / shared_s:.1f}× | {'yes' if np.array_equal(ranks[False], ranks[True]) else 'NO'} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
