"""``python -m trainer``: train or evaluate a sequential recommender from the command line.

Examples::

    python -m trainer train --data ml-100k --model nextitnet --grow auto
    python -m trainer train --data Beauty.txt --model sasrec --blocks 2 --dropout 0.5
    python -m trainer evaluate --checkpoint runs/ml-100k/checkpoint.pt --data ml-100k
    python -m trainer export --checkpoint runs/ml-100k/checkpoint.pt --out artifacts/ml-100k-v1
    python -m trainer limits   # every setting's accepted range (the table in docs/limits.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trainer.budget import DataSize, run_estimate
from trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainer.configs import ConfigError, ConfigMixin
from trainer.data import DataError, Split
from trainer.devices import resolve_device
from trainer.distributed import run_schedule_distributed, visible_gpus
from trainer.evaluation import EvalResult, evaluate, evaluate_popularity
from trainer.export import ExportConfig
from trainer.models import MODELS, GRecConfig, ModelConfig, NextItNetConfig, SASRecConfig, model_config
from trainer.runs import SPLITS, DataSpec, load_data, prepare_split, split_data
from trainer.scenarios import comparison_table, first_share, scenario_cl, scenario_tf, scenario_ts
from trainer.schedule import (
    DEFAULT_CEILING,
    DEFAULT_MIN_GAIN,
    GROW_MODES,
    KEEP_MODES,
    NO_STACKING,
    START_BLOCKS,
    ScheduleEvent,
    StackingSchedule,
    TimeLimitError,
    run_schedule,
)
from trainer.stacking import METHODS, stackable_options
from trainer.training import TrainConfig

logger = logging.getLogger("trainer")

# Throughput the CLI's time estimate assumes (FLOP/s): a few CPU cores in fp32; a GPU does ~100× more.
ESTIMATE_FLOPS = 2e10
TABLE_METRICS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@5", "mrr@10", "mrr@20")


def _add_data_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data", required=required, help="log file, or 'ml-100k' (fetched from PyPI's recbole wheel)"
    )
    g.add_argument("--format", default="auto", help="auto | delimited | inter | lines | parquet")
    g.add_argument("--user-col", help="user/session column (header name or 0-based position)")
    g.add_argument("--item-col", help="item column (header name or 0-based position)")
    g.add_argument("--time-col", help="timestamp column (header name or 0-based position)")
    g.add_argument("--delimiter", help="field delimiter, e.g. ',' ';' or '\\t' (default: sniffed)")
    g.add_argument(
        "--header", choices=("yes", "no"), help="whether the first line is a header (default: detect)"
    )
    g.add_argument("--dedupe", action="store_true", help="drop consecutive duplicate events")
    g.add_argument("--k-core", type=int, default=0, help="iterative k-core filter on items and sequences")
    g.add_argument("--min-item-count", type=int, default=0)
    g.add_argument("--min-length", type=int, default=0, help="drop sequences shorter than this")
    g.add_argument(
        "--bad-timestamps",
        choices=("error", "drop"),
        default="error",
        help="events whose time is unreadable, before 1970, after 2100 or in another unit: "
        "refuse the log (error) or drop them (drop)",
    )
    g.add_argument("--split", default="leave_one_out", choices=SPLITS)
    g.add_argument("--test-data", help="sessions split: the test file paired with --data")
    g.add_argument("--test-share", type=float, default=0.1, help="time split: last share of events as test")
    g.add_argument("--valid-share", type=float, default=0.1)


def _column(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def _data_spec(args: argparse.Namespace) -> DataSpec:
    read = {
        "format": args.format,
        "user_col": _column(args.user_col),
        "item_col": _column(args.item_col),
        "time_col": _column(args.time_col),
        "delimiter": args.delimiter.replace("\\t", "\t") if args.delimiter else None,
        "has_header": {"yes": True, "no": False}.get(args.header),
        "drop_consecutive_duplicates": args.dedupe,
        "k_core": args.k_core,
        "min_item_count": args.min_item_count,
        "min_sequence_length": args.min_length,
        "bad_timestamps": args.bad_timestamps,
    }
    return DataSpec(
        path=args.data,
        read=read,
        split=args.split,
        test_path=args.test_data,
        test_share=args.test_share,
        valid_share=args.valid_share,
    )


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="nextitnet", choices=sorted(MODELS))
    g.add_argument(
        "--blocks",
        type=int,
        help="deepest model: a ceiling with --grow auto, the final depth otherwise "
        "(default: 16 for NextItNet and GRec, 8 for SASRec)",
    )
    g.add_argument("--dim", type=int, default=64, help="embedding size")
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other model setting, JSON-valued (e.g. dilations=[1,2,4] heads=2)",
    )
    st = parser.add_argument_group("stacking (StackRec)")
    st.add_argument(
        "--start-blocks",
        type=int,
        help="depth of the first stage (default: 2 for NextItNet and GRec, 1 for SASRec)",
    )
    st.add_argument(
        "--grow",
        choices=GROW_MODES,
        help="auto: stack while a stage gains more than --min-gain over the model it was stacked from; "
        "fixed: train every stage up to --blocks (default: auto for train, fixed for scenario)",
    )
    st.add_argument(
        "--min-gain",
        type=float,
        default=DEFAULT_MIN_GAIN,
        help="relative validation gain a deeper stage must show to be kept (default %(default)s = 1 %%)",
    )
    st.add_argument(
        "--keep",
        choices=KEEP_MODES,
        help="best: the best model over all stages; final: the last stage's (default: best for train, "
        "final for scenario)",
    )
    st.add_argument(
        "--stage-epochs", type=int, default=0, help="epoch budget per intermediate stage (0: --epochs)"
    )
    st.add_argument("--stage-steps", type=int, default=0, help="step budget per intermediate stage (0: none)")
    st.add_argument("--stage-patience", type=int, default=2, help="validations without gain that end a stage")
    st.add_argument(
        "--time-limit",
        type=float,
        default=0.0,
        help="wall-clock seconds for the whole run (0: none); at the limit the best model so far is kept",
    )
    t = parser.add_argument_group("training")
    defaults = TrainConfig()
    t.add_argument("--epochs", type=int, default=defaults.epochs)
    t.add_argument("--batch-size", type=int, default=defaults.batch_size)
    t.add_argument("--max-len", type=int, default=defaults.max_len)
    t.add_argument("--lr", type=float, default=defaults.lr)
    t.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    t.add_argument("--optimizer", default=defaults.optimizer, choices=("adam", "adamw"))
    t.add_argument("--lr-schedule", default=defaults.lr_schedule, choices=("constant", "cosine"))
    t.add_argument("--loss", default=defaults.loss, choices=("full", "sampled"))
    t.add_argument("--negatives", type=int, default=0, help="sampled softmax negatives (0: 20%% of items)")
    t.add_argument("--patience", type=int, default=defaults.patience, help="validations without gain")
    t.add_argument(
        "--eval-every", type=int, default=0, help="steps between validations, across epochs (0: every epoch)"
    )
    t.add_argument("--metric", default=defaults.metric, help="early-stopping metric, e.g. mrr@5 or ndcg@10")
    t.add_argument(
        "--time-budget", type=float, default=0.0, help="wall-clock seconds cap per stage (0: none)"
    )
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--exclude-seen", action="store_true", help="rank only items not in the history")
    t.add_argument("--valid-sample", type=int, default=0, help="validate on this many random cases (0: all)")


def _blocks(args: argparse.Namespace) -> tuple[int, int]:
    """(start, final) depth: as given, or the model family's defaults."""
    final = args.blocks or DEFAULT_CEILING[args.model]
    return args.start_blocks or min(START_BLOCKS[args.model], final), final


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"blocks": _blocks(args)[1], "embedding_dim": args.dim, "dropout": args.dropout}
    for item in args.model_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--model-option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _schedule(args: argparse.Namespace, method: str, *, grow: str, keep: str) -> StackingSchedule:
    start, final = _blocks(args)
    return StackingSchedule(
        start_blocks=start if method != NO_STACKING else final,
        final_blocks=final,
        method=method,
        grow=args.grow or grow,
        keep=args.keep or keep,
        min_gain=args.min_gain,
        stage_epochs=args.stage_epochs,
        stage_steps=args.stage_steps,
        stage_patience=args.stage_patience,
        time_limit_s=args.time_limit,
    )


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_len=args.max_len,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        lr_schedule=args.lr_schedule,
        loss=args.loss,
        negatives=args.negatives,
        patience=args.patience,
        eval_every=args.eval_every,
        metric=args.metric,
        time_budget_s=args.time_budget,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        exclude_seen=args.exclude_seen,
        valid_sample=args.valid_sample,
        gpus=getattr(args, "gpus", 1),  # only ``train`` has --gpus
    )


class ProgressBar:
    """A tqdm bar per stage over its planned optimiser steps, fed by the schedule's events."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm | None = None
        self.stage = -1

    def __call__(self, staged: ScheduleEvent) -> None:
        event = staged.event
        if self.bar is None or staged.stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.stage = staged.stage
            desc = f"{self.label} stage {staged.stage + 1}/{staged.stages} ({staged.blocks} blocks)"
            self.bar = tqdm(total=event.planned_steps, desc=desc, unit="step", leave=False, file=sys.stderr)
        self.bar.n = event.step
        postfix = {"epoch": event.epoch}
        if event.loss is not None:
            postfix["loss"] = f"{event.loss:.3f}"
        if event.metrics:
            postfix["valid"] = " ".join(
                f"{k}={v:.4f}" for k, v in event.metrics.items() if k in ("mrr@5", "ndcg@10")
            )
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()
        if event.kind == "end":
            self.bar.close()


def format_table(rows: list[tuple[str, dict[str, float]]], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """A fixed-width text table: one row per (label, metrics)."""
    width = max(len(label) for label, _ in rows)
    lines = [" " * width + " " + " ".join(f"{m:>8}" for m in metrics)]
    for label, values in rows:
        lines.append(f"{label:<{width}} " + " ".join(f"{values[m]:8.4f}" for m in metrics))
    return "\n".join(lines)


def _result_rows(
    model_name: str, valid: EvalResult, test: EvalResult, pop_valid: EvalResult, pop_test: EvalResult
):
    return [
        (f"{model_name} valid", valid.metrics),
        (f"{model_name} test", test.metrics),
        ("popularity valid", pop_valid.metrics),
        ("popularity test", pop_test.metrics),
    ]


def _evaluate_all(model, split: Split, config: TrainConfig, device) -> tuple[EvalResult, ...]:
    kwargs = {"max_len": config.max_len, "exclude_seen": config.exclude_seen}
    valid = evaluate(model, split.valid, device=device, **kwargs)
    test = evaluate(model, split.test, device=device, **kwargs)
    pop_valid = evaluate_popularity(split.train, split.valid, split.n_items, **kwargs)
    pop_test = evaluate_popularity(split.train, split.test, split.n_items, **kwargs)
    return valid, test, pop_valid, pop_test


def command_train(args: argparse.Namespace) -> int:
    spec = _data_spec(args)
    config = _train_config(args)
    # Every setting is checked before any data is read.
    schedule = _schedule(args, args.stack, grow="auto", keep="best")
    model_cfg = model_config(args.model, stackable_options(args.model, _model_options(args), schedule.method))
    started = time.perf_counter()
    split = prepare_split(spec)
    device = resolve_device(config.device)
    print(
        f"{args.model}, {schedule.describe()} on {spec.path}: "
        f"{len(split.train):,} training sequences, {len(split.valid):,} validation and {len(split.test):,} "
        f"test cases, {split.n_items - 1:,} items, device {device}"
    )
    size = DataSize(split.n_items - 1, int(split.train.lengths().sum()), len(split.train), len(split.valid))
    estimate = run_estimate(args.model, model_cfg, config, schedule, size, flops_per_s=ESTIMATE_FLOPS)
    print(f"{estimate.summary()} at most (at {ESTIMATE_FLOPS:.0e} FLOP/s)")
    out = Path(args.out) if args.out else None
    runner: Any = run_schedule
    data: Any = split
    if config.gpus > 1:
        if visible_gpus() < config.gpus:
            raise ConfigError(f"--gpus {config.gpus}: this host has {visible_gpus()} CUDA GPU(s)")
        workdir = out / "ranks" if out else Path(tempfile.mkdtemp(prefix="trainer-ranks-"))
        runner = functools.partial(run_schedule_distributed, processes=config.gpus, workdir=workdir)
        data = spec
        print(f"training on {config.gpus} GPUs, one process each; their log: {workdir / 'ranks.log'}")
    run = runner(
        args.model,
        model_cfg,
        data,
        config,
        schedule,
        on_progress=ProgressBar(args.model),
        checkpoint_dir=out / "stages" if out else None,
    )
    model = run.model
    for stage in run.stages:
        print(stage.line(config.metric))
    plural = "s" if run.kept.blocks != 1 else ""
    print(f"kept: stage {run.kept_stage + 1}, {run.kept.blocks} block{plural} ({run.growth})")
    valid, test, pop_valid, pop_test = _evaluate_all(model, split, config, device)
    total = time.perf_counter() - started
    train_s = sum(s.train_s for s in run.stages)
    steps = sum(s.steps for s in run.stages)
    print()
    print(format_table(_result_rows(f"{args.model}-{len(model.blocks)}", valid, test, pop_valid, pop_test)))
    print()
    print(_against_popularity(test, pop_test))
    print(
        f"training: {steps} steps in {run.wall_s:.1f}s ({train_s:.1f}s in optimiser steps); "
        f"total with data loading and testing {total:.1f}s"
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            out / "checkpoint.pt",
            model=model,
            vocab=split.vocab,
            train_config=config.to_dict(),
            extra={"data": spec.to_dict()},
        )
        summary = {
            "model": args.model,
            "model_config": model_cfg.to_dict(),
            "train_config": config.to_dict(),
            "data": spec.to_dict(),
            "schedule": schedule.to_dict(),
            **run.to_dict(),
            "valid": valid.metrics,
            "test": test.metrics,
            "popularity": {"valid": pop_valid.metrics, "test": pop_test.metrics},
            "total_s": total,
        }
        (out / "results.json").write_text(json.dumps(summary, indent=2))
        print(f"checkpoint and results written to {out}/")
    return 0


def _against_popularity(test: EvalResult, popularity: EvalResult, metric: str = "ndcg@10") -> str:
    """One sentence: the model's test figure beside popularity's on the same cases."""
    model, pop = test.metrics[metric], popularity.metrics[metric]
    verdict = "above" if model > pop else "NOT above"
    return f"test {metric} {model:.4f}, {verdict} recommending the most popular items ({pop:.4f})"


def command_scenario(args: argparse.Namespace) -> int:
    spec = _data_spec(args)
    config = _train_config(args)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    options = _model_options(args)
    for method in methods:
        options = stackable_options(args.model, options, method)  # every method stacks the same model
    model_cfg = model_config(args.model, options)
    # The scenarios reproduce the paper's fixed schedules unless told otherwise.
    schedule = _schedule(args, methods[0] if methods else "adjacent", grow="fixed", keep="final")
    for method in methods:
        _schedule(args, method, grow="fixed", keep="final")  # reject unknown methods before any training
    progress = ScenarioProgress()
    dataset, test_sessions = load_data(spec)
    if args.scenario == "ts":
        split = split_data(spec, dataset, test_sessions)
        reports = scenario_ts(split, args.model, model_cfg, config, schedule, methods, on_progress=progress)
    elif args.scenario == "cl":
        first = split_data(spec, first_share(dataset, args.first_share), test_sessions)
        full = split_data(spec, dataset, test_sessions)
        reports = scenario_cl(
            first, full, args.model, model_cfg, config, schedule, methods, on_progress=progress
        )
    else:
        if not args.source_data:
            raise ConfigError("the tf scenario needs --source-data: the log to pre-train on")
        source_spec = dataclasses.replace(spec, path=args.source_data, split="leave_one_out", test_path=None)
        source = prepare_split(source_spec)
        target = split_data(spec, dataset, test_sessions)
        reports = scenario_tf(
            source, target, args.model, model_cfg, config, schedule, methods, on_progress=progress
        )
    progress.close()
    for report in reports:
        print(f"{report.name}:")
        for stage in report.stages:
            if stage.stopped_by != "initial":
                print("  " + stage.line(config.metric))
    print()
    print(comparison_table(reports, metric=config.metric))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "scenario": args.scenario,
            "data": spec.to_dict(),
            "reports": [r.to_dict() for r in reports],
        }
        (out / f"scenario-{args.scenario}.json").write_text(json.dumps(payload, indent=2))
        print(f"reports written to {out}/scenario-{args.scenario}.json")
    return 0


class ScenarioProgress:
    """One progress bar per run of a scenario."""

    def __init__(self) -> None:
        self.run: str | None = None
        self.bar: ProgressBar | None = None

    def __call__(self, run: str, event: ScheduleEvent) -> None:
        if run != self.run:
            self.close()
            self.run, self.bar = run, ProgressBar(run)
        self.bar(event)

    def close(self) -> None:
        if self.bar is not None and self.bar.bar is not None:
            self.bar.bar.close()


def command_evaluate(args: argparse.Namespace) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    stored = checkpoint.extra.get("data")
    spec = _data_spec(args) if args.data else DataSpec.from_dict(stored) if stored else None
    if spec is None:
        raise ConfigError("this checkpoint does not record its data: pass --data")
    split = prepare_split(spec)
    if split.vocab != checkpoint.vocab:
        raise ConfigError(
            f"the data's item vocabulary ({split.n_items - 1} items) is not the one the checkpoint was "
            f"trained on ({checkpoint.vocab.n_items - 1} items): evaluate with the same data and read options"
        )
    config = TrainConfig.from_dict(checkpoint.train_config)
    model = checkpoint.model
    valid, test, pop_valid, pop_test = _evaluate_all(model, split, config, "cpu")
    print(model.describe())
    print(format_table(_result_rows(model.name, valid, test, pop_valid, pop_test)))
    return 0


def command_export(args: argparse.Namespace) -> int:
    """Checkpoint → ONNX artifact folder (+ an INT8 copy with --int8), with test metrics and popularity."""
    from trainer.evaluation import evaluate
    from trainer.export import ExportConfig, ExportError, count_items, export_model
    from trainer.quantization import quantize_artifact

    checkpoint = load_checkpoint(args.checkpoint)
    stored = checkpoint.extra.get("data")
    spec = _data_spec(args) if args.data else DataSpec.from_dict(stored) if stored else None
    if spec is None:
        raise ConfigError("this checkpoint does not record its data: pass --data (popularity needs it)")
    split = prepare_split(spec)
    if split.vocab != checkpoint.vocab:
        raise ConfigError("the data's item vocabulary is not the one the checkpoint was trained on")
    train_config = TrainConfig.from_dict(checkpoint.train_config)
    model = checkpoint.model.eval()
    test = evaluate(model, split.test, max_len=train_config.max_len, exclude_seen=train_config.exclude_seen)
    config = ExportConfig(max_len=args.max_len, max_k=args.max_k, last_position=not args.all_positions)
    try:
        artifact = export_model(
            model,
            checkpoint.vocab,
            args.out,
            item_counts=count_items(split.train, split.n_items),
            config=config,
            train_config=checkpoint.train_config,
            metrics={"test": test.metrics},
            data=spec.to_dict(),
            overwrite=args.overwrite,
        )
        graph = artifact.metadata["graph"]
        print(
            f"{model.describe()} → {artifact.path}/ (opset {graph['opset']}, top-{graph['max_k']}, "
            f"histories up to {graph['max_len']} items, {graph['bytes'] / 1e6:.1f} MB); "
            f"test hr@10 {test.metrics['hr@10']:.4f}"
        )
        if args.int8:
            int8 = quantize_artifact(artifact.path, Path(f"{args.out}-int8"), overwrite=args.overwrite)
            print(f"int8 copy → {int8.path}/ ({int8.metadata['graph']['bytes'] / 1e6:.1f} MB)")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# The config classes whose ranges ``limits`` prints, under the section a job configuration uses.
LIMITED_CONFIGS: tuple[tuple[type[ConfigMixin], str], ...] = (
    (ModelConfig, "nextitnet, grec, sasrec"),
    (NextItNetConfig, "nextitnet, grec"),
    (GRecConfig, "grec"),
    (SASRecConfig, "sasrec"),
    (StackingSchedule, ""),
    (TrainConfig, ""),
    (DataSpec, ""),
    (ExportConfig, ""),
)


def limits_table() -> str:
    """Every numeric setting's range and the reason for it, as a Markdown table (docs/limits.md)."""
    lines = ["| setting | model | default | range | why |", "|---|---|---|---|---|"]
    for cls, models in LIMITED_CONFIGS:
        own = cls.__dict__.get("BOUNDS", {})
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, bound in own.items():
            default = defaults[name]
            shown = ", ".join(map(str, default)) if isinstance(default, tuple) else default
            row = f"| `{cls.label(name)}` | {models or '–'} | {shown} | {bound.interval()} | {bound.why} |"
            lines.append(row)
    return "\n".join(lines) + "\n"


def command_limits(args: argparse.Namespace) -> int:
    print(limits_table(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log every validation")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model and print validation/test metrics")
    _add_data_arguments(train)
    _add_training_arguments(train)
    train.add_argument(
        "--stack",
        default="preserving",
        choices=(*METHODS, NO_STACKING),
        help="preserving (function-preserving, the default), adjacent / cross (paper-faithful), "
        "none (--blocks from scratch)",
    )
    train.add_argument("--out", help="folder for checkpoint.pt, per-stage checkpoints and results.json")
    train.add_argument(
        "--gpus", type=int, default=1, help="train on this many GPUs of this host, one process each (DDP)"
    )
    train.set_defaults(handler=command_train)
    sc = sub.add_parser("scenario", help="run one of StackRec's scenarios side by side (ts, cl, tf)")
    sc.add_argument("scenario", choices=("ts", "cl", "tf"))
    _add_data_arguments(sc)
    _add_training_arguments(sc)
    sc.add_argument("--methods", default="adjacent", help="comma-separated stacking methods to compare")
    sc.add_argument("--first-share", type=float, default=0.8, help="cl: share of the log in the first chunk")
    sc.add_argument("--source-data", help="tf: the source log to pre-train on (read with the same options)")
    sc.add_argument("--out", help="write the reports as JSON into this folder")
    sc.set_defaults(handler=command_scenario)
    ev = sub.add_parser("evaluate", help="evaluate a saved checkpoint")
    ev.add_argument("--checkpoint", required=True)
    _add_data_arguments(ev, required=False)  # default: the data recorded in the checkpoint
    ev.set_defaults(handler=command_evaluate)
    ex = sub.add_parser("export", help="export a checkpoint to an ONNX artifact folder for serving")
    ex.add_argument("--checkpoint", required=True)
    ex.add_argument("--out", required=True, help="artifact folder to create (written atomically)")
    ex.add_argument("--max-k", type=int, default=100, help="largest k serving may ask for")
    ex.add_argument("--max-len", type=int, default=0, help="longest history (0: the training max_len)")
    ex.add_argument("--all-positions", action="store_true", help="compute every position (for comparison)")
    ex.add_argument("--int8", action="store_true", help="also write a dynamically quantised copy to OUT-int8")
    ex.add_argument("--overwrite", action="store_true", help="replace existing folders")
    _add_data_arguments(ex, required=False)  # default: the data recorded in the checkpoint
    ex.set_defaults(handler=command_export)
    lim = sub.add_parser("limits", help="print every setting's accepted range and why (docs/limits.md)")
    lim.set_defaults(handler=command_limits)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (DataError, ConfigError, CheckpointError, TimeLimitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
