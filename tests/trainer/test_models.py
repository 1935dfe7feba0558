"""Model behaviour a user relies on: causality, shapes, padding, the shared interface."""

from __future__ import annotations

import pytest
import torch

from trainer.configs import ConfigError
from trainer.losses import full_softmax_loss, sampled_softmax_loss
from trainer.models import GAP, MODELS, build_model, model_config

N_ITEMS = 50


VARIANTS = {"sasrec-pre": ("sasrec", {"norm_position": "pre"})}


def make(name: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    name, extra = VARIANTS.get(name, (name, {}))
    options = {**extra, **options}
    model = build_model(name, model_config(name, {"blocks": 4, "embedding_dim": 16, **options}), N_ITEMS)
    # α starts at 0, which would make every block an identity and the tests below vacuous.
    with torch.no_grad():
        for name_, p in model.named_parameters():
            if name_.endswith("alpha"):
                p.fill_(0.7)
    return model.eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes(name):
    model = make(name)
    seq = torch.randint(1, N_ITEMS, (3, 11))
    assert model(seq).shape == (3, 11, 16)
    scores = model.score_last(seq)
    assert scores.shape == (3, N_ITEMS)
    assert torch.isinf(scores[:, 0]).all() and (scores[:, 0] < 0).all()  # padding is never recommended
    assert len(model.blocks) == 4


@pytest.mark.parametrize("name", ["nextitnet", "sasrec", "grec", "sasrec-pre"])
def test_output_at_t_ignores_inputs_after_t(name):
    model = make(name)
    seq = torch.randint(1, N_ITEMS, (2, 20))
    changed = seq.clone()
    changed[:, 12:] = torch.randint(1, N_ITEMS, (2, 8))
    before, after = model(seq), model(changed)
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


@pytest.mark.parametrize("name", [*sorted(MODELS), "sasrec-pre"])
def test_left_padding_does_not_change_scores(name):
    model = make(name)
    history = torch.randint(1, N_ITEMS, (1, 7))
    padded = torch.cat([torch.zeros(1, 9, dtype=torch.long), history], dim=1)
    torch.testing.assert_close(model.score_last(history), model.score_last(padded), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["nextitnet", "grec"])
def test_scoring_a_long_history_reads_only_the_receptive_field(name):
    model = make(name, blocks=2)  # dilations 1, 2 then 4, 8, kernel 3: 1 + 2·(1 + 2 + 4 + 8) = 31
    assert model.context_length() == 31
    history = torch.randint(1, N_ITEMS, (2, 80))
    full = model.forward(history)[:, -1, :]  # every position encoded, no trimming
    torch.testing.assert_close(model.logits(full)[:, 1:], model.score_last(history)[:, 1:])
    # The field is tight: the 31st item from the end still moves the scores.
    changed = history.clone()
    changed[:, -31] = (changed[:, -31] % (N_ITEMS - 1)) + 1
    assert not torch.allclose(model.score_last(history), model.score_last(changed))
    assert make(name, blocks=4).context_length() == 61


@pytest.mark.parametrize("name", ["nextitnet", "sasrec"])
def test_padding_targets_do_not_enter_the_loss(name):
    model = make(name)
    inputs = torch.tensor([[0, 0, 3, 4, 5]])
    targets = torch.tensor([[0, 0, 4, 5, 6]])
    hidden = model(inputs)
    loss = full_softmax_loss(model, hidden, targets)
    # The same real positions without any padding give the same loss.
    unpadded = full_softmax_loss(model, model(inputs[:, 2:]), targets[:, 2:])
    torch.testing.assert_close(loss, unpadded, rtol=1e-5, atol=1e-6)
    # Changing what sits at padded target positions (still 0 = ignored) changes nothing.
    assert torch.isfinite(loss)


def test_sampled_softmax_masks_accidental_hits_and_trains():
    model = make("nextitnet")
    inputs = torch.randint(1, N_ITEMS, (4, 6))
    targets = torch.randint(1, N_ITEMS, (4, 6))
    generator = torch.Generator().manual_seed(0)
    loss = sampled_softmax_loss(model, model(inputs), targets, n_negatives=N_ITEMS * 4, generator=generator)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.item_embedding.weight.grad is not None


def test_grec_hides_the_items_it_predicts():
    model = make("grec", mask_share=0.5)
    inputs = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]])
    targets = torch.tensor([[0, 0, 2, 3, 4, 5, 6, 7, 8, 9]])
    new_inputs, new_targets = model.training_inputs(inputs, targets, torch.Generator().manual_seed(1))
    chosen = (new_targets > 0).nonzero()[:, 1].tolist()
    assert len(chosen) == 4  # half of 8 real positions
    for t in chosen:
        if t + 1 < inputs.shape[1]:
            assert new_inputs[0, t + 1] == GAP  # the predicted item is hidden from later positions
    assert new_inputs[0, 2] == 1  # the window's first item is never hidden
    assert (new_inputs[0, :2] == 0).all()  # padding stays padding
    assert torch.isfinite(model(new_inputs)).all()


def test_unknown_config_keys_are_rejected_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key.*blokcs.*valid keys.*blocks"):
        model_config("nextitnet", {"blokcs": 4})
    with pytest.raises(ConfigError, match="unknown model"):
        model_config("gru4rec", {})
    with pytest.raises(ConfigError, match="blocks must be"):
        model_config("sasrec", {"blocks": 0})


def test_rezero_blocks_start_as_identity():
    torch.manual_seed(0)
    model = build_model("nextitnet", model_config("nextitnet", {"blocks": 4}), N_ITEMS).eval()
    seq = torch.randint(1, N_ITEMS, (2, 9))
    torch.testing.assert_close(model(seq), model.item_embedding(seq))
