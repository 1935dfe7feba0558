"""Stacking operators: block counts, copied parameters, dilations, function preservation."""

from __future__ import annotations

import pytest
import torch

from trainer.configs import ConfigError
from trainer.models import build_model, model_config
from trainer.stacking import adjacent_sources, carry_optimizer_state, cross_sources, stack

N_ITEMS = 40
MODEL_OPTIONS = {
    "nextitnet": {},
    "grec": {},
    "sasrec": {"norm_position": "pre"},
}


def trained_like(name: str, blocks: int = 2) -> torch.nn.Module:
    """A model whose α, norms and output layer are not at their initial values."""
    torch.manual_seed(0)
    model = build_model(
        name, model_config(name, {"blocks": blocks, "embedding_dim": 16, **MODEL_OPTIONS[name]}), N_ITEMS
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def block_tensors(block: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in block.state_dict().items()}


def test_source_orders():
    assert adjacent_sources(3) == [0, 0, 1, 1, 2, 2]
    assert cross_sources(3) == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("name", sorted(MODEL_OPTIONS))
@pytest.mark.parametrize("method", ["adjacent", "cross"])
def test_paper_faithful_copies_weights_and_resets_alpha_norms_and_output(name, method):
    model = trained_like(name)
    deeper = stack(model, method)
    assert len(deeper.blocks) == 4 and deeper.config.blocks == 4
    sources = adjacent_sources(2) if method == "adjacent" else cross_sources(2)
    for j, src in enumerate(sources):
        new, old = block_tensors(deeper.blocks[j]), block_tensors(model.blocks[src])
        for key, value in new.items():
            if "alpha" in key:
                assert float(value) == 0.0
            elif "norm" in key:
                expected = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
                torch.testing.assert_close(value, expected)
            else:  # convolution / attention / feed-forward weights are copied from the source block
                torch.testing.assert_close(value, old[key])
    torch.testing.assert_close(deeper.item_embedding.weight, model.item_embedding.weight)
    assert not torch.allclose(deeper.output_weight, model.output_weight)  # output layer re-initialised
    assert torch.count_nonzero(deeper.output_bias) == 0


@pytest.mark.parametrize("name", sorted(MODEL_OPTIONS))
def test_function_preserving_stack_computes_exactly_the_same(name):
    model = trained_like(name)
    deeper = stack(model, "preserving").eval()
    seq = torch.randint(0, N_ITEMS, (5, 17))
    torch.testing.assert_close(deeper.score_last(seq), model.score_last(seq), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(deeper(seq), model(seq), rtol=1e-5, atol=1e-5)
    # Originals keep their α; copies start at 0 and so are inert.
    first = deeper.blocks[0].residual if name != "sasrec" else deeper.blocks[0].residual1
    assert first.alpha.item() != 0
    for j in (2, 3):
        for key, value in block_tensors(deeper.blocks[j]).items():
            if "alpha" in key:
                assert float(value) == 0.0


def test_dilations_follow_block_positions_not_sources():
    model = trained_like("nextitnet", blocks=2)  # dilations 1, 4
    for method in ("adjacent", "cross", "preserving"):
        deeper = stack(model, method)
        assert [b.dilation for b in deeper.blocks] == [1, 4, 1, 4]
        assert [b.conv2.conv.dilation[0] for b in deeper.blocks] == [2, 8, 2, 8]
    deeper = stack(stack(model, "adjacent"), "adjacent")
    assert [b.dilation for b in deeper.blocks] == [1, 4] * 4


def test_function_preserving_refuses_models_it_cannot_preserve():
    post_ln = build_model("sasrec", model_config("sasrec", {"blocks": 2}), N_ITEMS)
    with pytest.raises(ConfigError, match="pre-LN"):
        stack(post_ln, "preserving")
    plain = build_model("nextitnet", model_config("nextitnet", {"blocks": 2, "rezero": False}), N_ITEMS)
    with pytest.raises(ConfigError, match="rezero"):
        stack(plain, "preserving")
    with pytest.raises(ConfigError, match="unknown stacking method"):
        stack(plain, "diagonal")


@pytest.mark.parametrize("method", ["adjacent", "preserving"])
def test_an_optimiser_step_after_stacking_works(method):
    model = trained_like("nextitnet").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seq = torch.randint(1, N_ITEMS, (4, 9))
    model.score_last(seq)[:, 1:].logsumexp(-1).mean().backward()
    optimizer.step()

    deeper = stack(model, method).train()
    state = carry_optimizer_state(model, optimizer.state_dict(), deeper, method)
    new_optimizer = torch.optim.Adam(deeper.parameters(), lr=1e-3)
    if state is not None:
        new_optimizer.load_state_dict(state)
        moments = new_optimizer.state[deeper.item_embedding.weight]["exp_avg"]
        torch.testing.assert_close(moments, optimizer.state[model.item_embedding.weight]["exp_avg"])
    else:
        assert method == "adjacent"  # the reference restarts Adam
    before = [p.detach().clone() for p in deeper.parameters()]
    loss = deeper.score_last(seq)[:, 1:].logsumexp(-1).mean()
    loss.backward()
    new_optimizer.step()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, deeper.parameters(), strict=True))
    assert changed > 0
