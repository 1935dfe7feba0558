"""The training loop as a user sees it: loss goes down, early stopping, cancel, resume, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainer.configs import ConfigError
from trainer.data import leave_one_out, load_dataset
from trainer.data.types import EvalSet, Sequences, Split, Vocabulary
from trainer.models import build_model, model_config
from trainer.training import TrainConfig, fit


def sequences(rows: list[list[int]]) -> Sequences:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return Sequences(offsets, np.concatenate(rows).astype(np.int64))


def toy_split(n_users: int = 64, n_items: int = 20, seed: int = 0) -> Split:
    """Users walk a cycle of items; the next item is predictable from the last one."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        start = int(rng.integers(1, n_items))
        rows.append([(start + i - 1) % (n_items - 1) + 1 for i in range(12)])
    train = sequences([r[:-2] for r in rows])
    valid = EvalSet(sequences([r[:-2] for r in rows]), np.array([r[-2] for r in rows]))
    test = EvalSet(sequences([r[:-1] for r in rows]), np.array([r[-1] for r in rows]))
    return Split(train, valid, test, Vocabulary(tuple(str(i) for i in range(1, n_items))), "leave_one_out")


def tiny_model(split: Split, name: str = "nextitnet"):
    torch.manual_seed(0)
    return build_model(name, model_config(name, {"blocks": 2, "embedding_dim": 16}), split.n_items)


def test_training_learns_a_predictable_sequence():
    split = toy_split()
    model = tiny_model(split)
    result = fit(model, split, TrainConfig(epochs=40, batch_size=16, lr=5e-3, patience=0, device="cpu"))
    assert result.best.metrics["hr@5"] > 0.9
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss / 2
    assert result.positions > 0 and result.positions_per_s > 0


@pytest.mark.parametrize("name", ["grec", "sasrec"])
def test_other_models_train(name):
    split = toy_split()
    model = tiny_model(split, name)
    result = fit(model, split, TrainConfig(epochs=30, batch_size=16, lr=5e-3, patience=0, device="cpu"))
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_sampled_softmax_trains():
    split = toy_split()
    model = tiny_model(split)
    config = TrainConfig(epochs=30, batch_size=16, lr=5e-3, loss="sampled", negatives=5, device="cpu")
    assert fit(model, split, config).best.metrics["hr@5"] > 0.5


def test_early_stopping_and_should_stop():
    split = toy_split()
    # lr tiny: nothing improves after the first validations → patience stops it.
    result = fit(
        tiny_model(split), split, TrainConfig(epochs=50, batch_size=16, lr=1e-9, patience=2, device="cpu")
    )
    assert result.stopped_by == "patience"
    assert len(result.history) <= 5
    calls = iter(range(1000))
    result = fit(
        tiny_model(split),
        split,
        TrainConfig(epochs=50, batch_size=16, device="cpu"),
        should_stop=lambda: next(calls) >= 3,
    )
    assert result.stopped_by == "cancelled"
    assert result.steps == 3


def test_validating_first_keeps_the_incoming_weights_when_training_only_hurts():
    """A model that arrives trained (stacked, or carried to grown data) is validated before its
    first step; if training then only makes it worse, fit hands back the weights it came with."""
    split = toy_split()
    model = tiny_model(split)
    fit(model, split, TrainConfig(epochs=20, batch_size=16, lr=5e-3, patience=0, device="cpu"))
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    # The largest accepted rate, unclipped: the model only ties or loses what it came in with.
    ruinous = TrainConfig(epochs=2, batch_size=16, lr=1.0, grad_clip=0, patience=0, device="cpu")
    result = fit(model, split, ruinous, validate_first=True)
    assert result.history[0].step == 0 and result.history[0].train_loss is None
    assert result.best.step == 0
    later = [r.metrics["mrr@5"] for r in result.history[1:]]
    assert max(later) <= result.best.metrics["mrr@5"] and min(later) < result.best.metrics["mrr@5"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[name])


def test_the_same_seed_gives_the_same_model_on_several_cpu_threads():
    """With two threads, the backward of an item lookup used to add rows in thread-finishing
    order: two runs with one seed drifted apart (this split, with many repeats of few items in
    each batch, showed it every time). Deterministic kernels make them equal, for this run only."""
    split = toy_split(n_users=4000, n_items=50, seed=1)
    config = TrainConfig(
        epochs=1, batch_size=256, lr=5e-3, loss="sampled", patience=0, threads=2, device="cpu"
    )
    threads = torch.get_num_threads()
    try:
        first, second = tiny_model(split), tiny_model(split)
        fit(first, split, config)
        fit(second, split, config)
    finally:
        torch.set_num_threads(threads)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    assert not torch.are_deterministic_algorithms_enabled()  # the caller's setting is back


def test_a_budget_stop_between_validations_validates_the_last_steps():
    """Stopping on a step or time budget must not throw away the steps since the last validation."""
    split = toy_split()  # 4 steps per epoch
    config = TrainConfig(epochs=10, batch_size=16, eval_every=3, max_steps=7, patience=0, device="cpu")
    result = fit(tiny_model(split), split, config)
    assert result.stopped_by == "max_steps" and result.steps == 7
    assert [r.step for r in result.history] == [3, 6, 7]


def test_a_validation_interval_longer_than_an_epoch_is_kept_across_epoch_ends():
    """Where validating costs more than an epoch, ``eval_every`` must not fall back to every epoch."""
    split = toy_split()  # 4 steps per epoch
    config = TrainConfig(epochs=5, batch_size=16, eval_every=6, patience=0, device="cpu")
    result = fit(tiny_model(split), split, config)
    assert result.stopped_by == "epochs" and result.steps == 20
    # Every 6 steps, then the last steps once training ends, so none of them is thrown away.
    assert [r.step for r in result.history] == [6, 12, 18, 20]


def test_progress_events_report_steps_evals_and_the_end():
    split = toy_split()
    events = []
    fit(
        tiny_model(split),
        split,
        TrainConfig(epochs=2, batch_size=16, device="cpu"),
        on_progress=events.append,
    )
    kinds = [e.kind for e in events]
    assert kinds.count("eval") == 2 and kinds[-1] == "end"
    assert events[-1].step == 2 * events[-1].steps_per_epoch
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in events)


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path):
    split = toy_split()
    config = TrainConfig(epochs=4, batch_size=16, lr=5e-3, patience=0, device="cpu", seed=3)
    full = fit(tiny_model(split), split, config)

    path = tmp_path / "run.pt"
    half = TrainConfig.from_dict({**config.to_dict(), "max_steps": 8})
    fit(tiny_model(split), split, half, checkpoint_path=path)
    saved = load_checkpoint(path)
    assert saved.progress["step"] == 8
    resumed = fit(saved.model, split, config, optimizer_state=saved.optimizer_state, resume=saved.progress)
    assert resumed.steps == full.steps
    assert resumed.best.metrics == pytest.approx(full.best.metrics)


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    split = toy_split()
    model = tiny_model(split, "sasrec")
    path = save_checkpoint(tmp_path / "m.pt", model=model, vocab=split.vocab, train_config={"lr": 1.0})
    loaded = load_checkpoint(path)
    seq = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded.model.eval().score_last(seq), model.eval().score_last(seq))
    assert loaded.vocab == split.vocab and loaded.train_config == {"lr": 1.0}
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_validation_sample_is_fixed_and_smaller():
    split = toy_split(n_users=64)
    config = TrainConfig(epochs=2, batch_size=16, valid_sample=10, device="cpu")
    first = fit(tiny_model(split), split, config)
    again = fit(tiny_model(split), split, config)
    assert first.best.metrics == again.best.metrics  # the same sample every run with one seed
    whole = fit(tiny_model(split), split, TrainConfig.from_dict({**config.to_dict(), "valid_sample": 0}))
    assert first.history[0].metrics != whole.history[0].metrics


def test_bad_training_settings_are_named():
    with pytest.raises(ConfigError, match=r"train.lr must be greater than 0 and at most 1, got -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="loss must be one of"):
        TrainConfig(loss="bpr")
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_a_few_steps_on_real_data_reduce_the_loss(shared_data):
    dataset = load_dataset(shared_data / "ml-100k" / "ml-100k.inter")
    split = leave_one_out(dataset)
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 2}), split.n_items)
    config = TrainConfig(epochs=1, batch_size=128, max_steps=30, eval_every=10, patience=0, device="cpu")
    result = fit(model, split, config)
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.history[-1].metrics["ndcg@10"] > 0.0
