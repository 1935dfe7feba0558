"""Train and test one RecBole 1.2.1 sequential model as the benchmark's peer, under a wall-clock budget.

Runs INSIDE the venv made by ``bench/recbole_env.py`` (RecBole needs numpy<2, our product does not):

    python bench/recbole_peer.py --inter FILE.inter --model NextItNet|SASRec --budget-s SECONDS \
        --threads 1 --out result.json [--epochs-max N] [--batch-size 2048] [--seed 2020]

Why it is built the way it is:

* The ``.inter`` file is written by our benchmark with the same events and order we use; RecBole
  sorts by (user, timestamp) with a stable sort, so ties keep that file order. It is linked into a
  temporary data folder under the name ``peer_data``: a dataset named ``ml-100k`` would make RecBole
  use its bundled copy instead of our file.
* The protocol matches ours: leave-last-out split (``{'LS': 'valid_and_test'}``, order ``TO``), full
  ranking, ``MAX_ITEM_LIST_LENGTH`` 50, full-softmax CE loss without negative sampling; every other
  hyper-parameter is RecBole's default for the model.
* Epochs are driven here, through the Trainer's ``_train_epoch``/``_valid_epoch``, instead of
  ``Trainer.fit``: ``fit`` cannot be stopped by a wall clock and does not expose per-epoch times.
  Early stopping still uses RecBole's own ``early_stopping`` rule with its default patience.
* The budget covers training plus validation time only (data loading and the final test pass are
  reported separately). It is checked between epochs: no epoch starts once the budget is spent, and
  an epoch is also skipped when, judging by the previous epoch's time, it would end after
  1.5 x budget (it would overrun the budget by more than 50 %). At least one epoch always runs.
* The best-validation weights are kept as an in-memory copy, so no checkpoint has to be reloaded
  (RecBole's checkpoints pickle a Config and need ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` under
  recent torch; we set it anyway for any load RecBole might do itself).
* Test ranks are computed here with a pessimistic tie rule over all real items (padding item 0
  excluded, history items NOT excluded, as in our protocol). RecBole's own evaluator on the same
  weights is reported alongside for cross-checking; for sequential models it does not exclude
  history items either, so the two differ only where the target ties with other items (it picks
  among ties with ``torch.topk``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

LOG = logging.getLogger("recbole_peer")

DATASET_NAME = "peer_data"  # anything but "ml-100k"
TOPK = (5, 10, 20)
MAX_ITEM_LIST_LENGTH = 50
OVERRUN_FACTOR = 1.5  # skip an epoch projected to end after OVERRUN_FACTOR x budget

# Hyper-parameters worth quoting next to the numbers; anything missing for a model is left out.
REPORTED_KEYS = (
    "learner",
    "learning_rate",
    "weight_decay",
    "train_batch_size",
    "eval_batch_size",
    "epochs",
    "stopping_step",
    "valid_metric",
    "MAX_ITEM_LIST_LENGTH",
    "loss_type",
    "train_neg_sample_args",
    "eval_args",
    "seed",
    "reproducibility",
    # NextItNet
    "embedding_size",
    "kernel_size",
    "block_num",
    "dilations",
    "reg_weight",
    # SASRec
    "n_layers",
    "n_heads",
    "hidden_size",
    "inner_size",
    "hidden_dropout_prob",
    "attn_dropout_prob",
    "hidden_act",
    "layer_norm_eps",
    "initializer_range",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run RecBole 1.2.1 as the benchmark peer.")
    parser.add_argument("--inter", type=Path, required=True, help="RecBole atomic .inter file")
    parser.add_argument("--model", required=True, choices=("NextItNet", "SASRec"))
    parser.add_argument("--budget-s", type=float, required=True, help="training+validation wall budget")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, required=True, help="result JSON path")
    parser.add_argument("--epochs-max", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=2048, help="training batch size")
    parser.add_argument("--eval-batch-size", type=int, default=1024, help="sequences per eval batch")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args(argv)
    if args.budget_s <= 0 or args.threads < 1 or args.epochs_max < 1:
        parser.error("--budget-s, --threads and --epochs-max must be positive")
    if not args.inter.is_file():
        parser.error(f"--inter {args.inter} is not a file")
    return args


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools through the environment; must run before numpy or torch is imported."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def stage_data(inter: Path, workdir: Path) -> Path:
    """Expose ``inter`` as ``<workdir>/data/peer_data/peer_data.inter``; return the data root."""
    folder = workdir / "data" / DATASET_NAME
    folder.mkdir(parents=True)
    target = folder / f"{DATASET_NAME}.inter"
    try:
        target.symlink_to(inter.resolve())
    except OSError:  # filesystems without symlinks
        target.write_bytes(inter.read_bytes())
    return workdir / "data"


def build_config(args: argparse.Namespace, data_root: Path, workdir: Path) -> Any:
    """RecBole Config for our protocol; unspecified hyper-parameters stay at RecBole's defaults."""
    from recbole.config import Config

    overrides = {
        "data_path": str(data_root),
        "checkpoint_dir": str(workdir / "saved"),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "MAX_ITEM_LIST_LENGTH": MAX_ITEM_LIST_LENGTH,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "epochs": args.epochs_max,
        "train_batch_size": args.batch_size,
        "eval_batch_size": args.eval_batch_size,
        "valid_metric": "NDCG@10",
        "metrics": ["Recall", "MRR", "NDCG", "Hit"],
        "topk": list(TOPK),
        "metric_decimal_place": 6,  # finer than the default 4, for the cross-check
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "use_gpu": False,
        "worker": 0,
        "seed": args.seed,
        "reproducibility": True,
    }
    # Config also parses sys.argv for "--key=value" overrides; ours are not meant for it.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return Config(model=args.model, dataset=DATASET_NAME, config_dict=overrides)
    finally:
        sys.argv = argv


def metrics_from_recbole(result: dict[str, float]) -> dict[str, float]:
    """Rename RecBole's ``hit@k`` to our ``hr@k`` and keep ndcg/mrr (recall equals hit here)."""
    out: dict[str, float] = {}
    for k in TOPK:
        out[f"hr@{k}"] = float(result[f"hit@{k}"])
        out[f"ndcg@{k}"] = float(result[f"ndcg@{k}"])
        out[f"mrr@{k}"] = float(result[f"mrr@{k}"])
    return out


def metrics_from_ranks(ranks: list[int]) -> dict[str, float]:
    """HR/NDCG/MRR@k from 0-based ranks: hit iff r<k, NDCG 1/log2(r+2), MRR 1/(r+1)."""
    n = len(ranks)
    out: dict[str, float] = {}
    for k in TOPK:
        hits = [r for r in ranks if r < k]
        out[f"hr@{k}"] = len(hits) / n
        out[f"ndcg@{k}"] = sum(1.0 / math.log2(r + 2) for r in hits) / n
        out[f"mrr@{k}"] = sum(1.0 / (r + 1) for r in hits) / n
    return out


def train_with_budget(
    trainer: Any, train_data: Any, valid_data: Any, budget_s: float, epochs_max: int, stopping_step: int
) -> dict[str, Any]:
    """Epoch loop with RecBole's early-stopping rule plus a wall-clock budget; see module docstring."""
    import torch
    from recbole.utils import early_stopping

    samples = int(train_data.sample_size)
    trainer.eval_collector.data_collect(train_data)  # what Trainer.fit does before its loop
    epochs: list[dict[str, Any]] = []
    best_score, cur_step = -math.inf, 0
    best_state: dict[str, torch.Tensor] | None = None
    best_index = -1
    stopped_by = "max_epochs"
    started = time.perf_counter()
    for epoch in range(epochs_max):
        elapsed = time.perf_counter() - started
        if epochs:
            last = epochs[-1]["train_s"] + epochs[-1]["valid_s"]
            if elapsed >= budget_s:
                stopped_by = "budget"
                break
            if elapsed + last > OVERRUN_FACTOR * budget_s:
                LOG.info(
                    "skipping epoch %d: %.0f s elapsed + %.0f s per epoch would pass %.1f x budget",
                    epoch,
                    elapsed,
                    last,
                    OVERRUN_FACTOR,
                )
                stopped_by = "budget"
                break
        t0 = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        t1 = time.perf_counter()
        score, result = trainer._valid_epoch(valid_data, show_progress=False)
        t2 = time.perf_counter()
        best_score, cur_step, stop_flag, update_flag = early_stopping(
            score, best_score, cur_step, max_step=stopping_step, bigger=True
        )
        if update_flag:
            best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best_index = len(epochs)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        record = {
            "epoch": epoch,
            "cum_s": round(time.perf_counter() - started, 3),
            "train_s": round(t1 - t0, 3),
            "valid_s": round(t2 - t1, 3),
            "train_loss": float(loss) / max(len(train_data), 1),  # mean over batches
            "samples_per_s": round(samples / (t1 - t0), 1),
            "valid": metrics_from_recbole(result),
        }
        epochs.append(record)
        LOG.info(
            "epoch %d: train %.1f s, valid %.1f s, cum %.1f s, loss %.4f, valid ndcg@10 %.4f hr@10 %.4f%s",
            epoch,
            record["train_s"],
            record["valid_s"],
            record["cum_s"],
            record["train_loss"],
            record["valid"]["ndcg@10"],
            record["valid"]["hr@10"],
            " (best)" if update_flag else "",
        )
        if stop_flag:
            stopped_by = "early_stopping"
            break
    return {
        "epochs": epochs,
        "best_index": best_index,
        "best_state": best_state,
        "stopped_by": stopped_by,
        "samples_per_epoch": samples,
    }


def rank_test_users(model: Any, test_data: Any, dataset: Any) -> dict[str, Any]:
    """Pessimistic 0-based rank of each test target among all real items (history not excluded).

    rank = #items scoring above the target + #other items scoring equal to it. A NaN target score
    gets the worst rank.
    """
    import torch

    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    length_field = model.ITEM_SEQ_LEN
    ranks: list[int] = []
    users: list[str] = []
    n_tied = 0
    n_short = 0
    model.eval()
    with torch.no_grad():
        for interaction, _history, _pos_u, _pos_i in test_data:
            scores = model.full_sort_predict(interaction).view(len(interaction), -1)[:, 1:]
            target = interaction[iid_field].long() - 1  # column of the target after dropping item 0
            t = scores.gather(1, target.unsqueeze(1))
            above = (scores > t).sum(dim=1)
            tied = (scores == t).sum(dim=1) - 1
            rank = above + tied
            rank[torch.isnan(t.squeeze(1))] = scores.shape[1] - 1
            ranks.extend(int(r) for r in rank)
            n_tied += int((tied > 0).sum())
            n_short += int((interaction[length_field] < MAX_ITEM_LIST_LENGTH).sum())
            users.extend(str(u) for u in dataset.id2token(uid_field, interaction[uid_field].numpy()))
    return {"ranks": ranks, "users": users, "n_tied": n_tied, "n_short": n_short}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load data, train under the budget, test the best weights; return the result document."""
    import recbole
    import torch
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:  # only settable before the first parallel op
        LOG.warning("could not set torch inter-op threads")
    inter = args.inter.resolve()
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="recbole-peer-") as tmp:
        workdir = Path(tmp)
        data_root = stage_data(inter, workdir)
        # Trainer() opens a TensorBoard writer under ./log_tensorboard: keep it in the temp dir.
        os.chdir(workdir)
        try:
            t0 = time.perf_counter()
            config = build_config(args, data_root, workdir)
            init_seed(config["seed"], config["reproducibility"])
            dataset = create_dataset(config)
            train_data, valid_data, test_data = data_preparation(config, dataset)
            init_seed(config["seed"], config["reproducibility"])
            model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            setup_s = time.perf_counter() - t0
            LOG.info(
                "data ready in %.1f s: %d users, %d items, %d training samples per epoch",
                setup_s,
                dataset.user_num - 1,
                dataset.item_num - 1,
                train_data.sample_size,
            )

            trained = train_with_budget(
                trainer, train_data, valid_data, args.budget_s, args.epochs_max, config["stopping_step"]
            )
            epochs = trained["epochs"]
            best = epochs[trained["best_index"]]
            model.load_state_dict(trained["best_state"])

            t1 = time.perf_counter()
            recbole_test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
            t2 = time.perf_counter()
            ranked = rank_test_users(model, test_data, dataset)
            t3 = time.perf_counter()
            trainer.tensorboard.close()
        finally:
            os.chdir(home)

    test = metrics_from_ranks(ranked["ranks"])
    recbole_named = metrics_from_recbole(recbole_test)
    train_total = sum(e["train_s"] for e in epochs)
    n_test = len(ranked["ranks"])
    notes = [
        "budget covers training+validation; checked between epochs; an epoch projected to end after "
        f"{OVERRUN_FACTOR} x budget (from the previous epoch's time) is skipped",
        "test ranks: pessimistic ties, padding item 0 excluded, history items not excluded; "
        f"{ranked['n_tied']} of {n_test} test targets tie with another item",
        "recbole_test: RecBole's evaluator on the same best weights (torch.topk, arbitrary tie order; "
        "no history exclusion for sequential models)",
        "samples_per_epoch counts every prefix (up to length 50) except each user's last two events",
    ]
    if args.model == "NextItNet":
        notes.append(
            "RecBole's NextItNet reads the hidden state at the last (padded) position even for "
            "histories shorter than MAX_ITEM_LIST_LENGTH (RecBole pads at the end), which handicaps it "
            f"on short histories; {ranked['n_short']} of {n_test} test users have fewer than "
            f"{MAX_ITEM_LIST_LENGTH} history items"
        )
    return {
        "peer": "recbole",
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "model": args.model,
        "inter": str(inter),
        "threads": args.threads,
        "budget_s": args.budget_s,
        "config": {k: config[k] for k in REPORTED_KEYS if k in config},
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_users": dataset.user_num - 1,
        "n_items": dataset.item_num - 1,
        "samples_per_epoch": trained["samples_per_epoch"],
        "setup_s": round(setup_s, 3),
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "best_valid": best["valid"],
        "time_to_best_s": best["cum_s"],
        "stopped_by": trained["stopped_by"],
        "train_s_total": round(train_total, 3),
        "samples_per_s": round(trained["samples_per_epoch"] * len(epochs) / train_total, 1),
        "test_s": round(t3 - t2, 3),
        "recbole_test_s": round(t2 - t1, 3),
        "test": test,
        "recbole_test": {k: float(v) for k, v in recbole_test.items()},
        "test_minus_recbole": {k: round(test[k] - recbole_named[k], 6) + 0.0 for k in test},
        "n_test_users": n_test,
        "test_users": ranked["users"],
        "test_ranks": ranked["ranks"],
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    # pandas/torch deprecation notices raised from inside RecBole; nothing we can act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    if importlib.util.find_spec("recbole") is None:
        LOG.error(
            "recbole is not importable here: run this script with the python that recbole_env.py prints"
        )
        return 2
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    summary = {k: result[k] for k in ("model", "best_epoch", "time_to_best_s", "stopped_by", "samples_per_s")}
    summary["test_ndcg@10"] = round(result["test"]["ndcg@10"], 4)
    summary["out"] = str(args.out)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
