"""The chunked full-softmax loss: a hand-computed case, and the plain loss's value and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from tests.trainer.test_training import toy_split
from trainer import losses
from trainer.losses import chunked_cross_entropy, full_softmax_loss
from trainer.models import build_model, model_config


def test_two_positions_three_items_by_hand():
    # Scores z = h·wᵀ + b with w = I₃ (first two columns) and b = 0:
    #   position 0: h = (1, 0) → z = (1, 0, 0), target 0 → −log(e / (e + 2))
    #   position 1: h = (0, 2) → z = (0, 2, 0), target 2 → −log(1 / (e² + 2))
    hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    bias = torch.zeros(3, requires_grad=True)
    targets = torch.tensor([0, 2])
    e = math.e
    expected = (-math.log(e / (e + 2)) - math.log(1 / (e**2 + 2))) / 2
    loss = chunked_cross_entropy(hidden, weights, bias, targets, chunk_rows=1)
    assert loss.item() == pytest.approx(expected, abs=1e-6)

    loss.backward()
    # ∂L/∂b_j = mean over positions of (p_ij − [j = y_i]).
    p0 = torch.tensor([e, 1, 1]) / (e + 2)
    p1 = torch.tensor([1, e**2, 1]) / (e**2 + 2)
    expected_bias = ((p0 - torch.tensor([1.0, 0, 0])) + (p1 - torch.tensor([0, 0, 1.0]))) / 2
    assert torch.allclose(bias.grad, expected_bias, atol=1e-6)
    # ∂L/∂h_0 = (p_0 − onehot(0)) · w / 2 = ((e/(e+2) − 1), 1/(e+2)) / 2
    assert torch.allclose(hidden.grad[0], torch.tensor([e / (e + 2) - 1, 1 / (e + 2)]) / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("n", "v", "d", "chunk"),
    [(1, 2, 3, 128), (7, 5, 4, 3), (50, 40, 8, 16), (300, 1000, 16, 128), (129, 257, 8, 128)],
)
def test_value_and_gradients_equal_the_plain_loss(n, v, d, chunk):
    generator = torch.Generator().manual_seed(n * v)
    hidden = torch.randn(n, d, generator=generator).requires_grad_()
    weights = torch.randn(v, d, generator=generator).requires_grad_()
    bias = torch.randn(v, generator=generator).requires_grad_()
    targets = torch.randint(0, v, (n,), generator=generator)

    plain = F.cross_entropy(F.linear(hidden, weights, bias), targets)
    plain_grads = torch.autograd.grad(3.0 * plain, (hidden, weights, bias))
    chunked = chunked_cross_entropy(hidden, weights, bias, targets, chunk_rows=chunk)
    chunked_grads = torch.autograd.grad(3.0 * chunked, (hidden, weights, bias))

    assert chunked.item() == pytest.approx(plain.item(), abs=1e-5)
    for ours, theirs in zip(chunked_grads, plain_grads, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)


def test_float64_inputs_give_the_plain_loss_to_the_last_digits():
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(40, 8, dtype=torch.float64, generator=generator).requires_grad_()
    weights = torch.randn(30, 8, dtype=torch.float64, generator=generator).requires_grad_()
    bias = torch.randn(30, dtype=torch.float64, generator=generator).requires_grad_()
    targets = torch.randint(0, 30, (40,), generator=generator)
    plain = F.cross_entropy(F.linear(hidden, weights, bias), targets)
    chunked = chunked_cross_entropy(hidden, weights, bias, targets, chunk_rows=7)
    assert chunked.dtype == torch.float64
    assert abs(chunked.item() - plain.item()) < 1e-12
    grads = torch.autograd.grad(chunked, hidden)[0]
    assert torch.allclose(grads, torch.autograd.grad(plain, hidden)[0], atol=1e-12, rtol=0)


def test_only_inputs_that_need_a_gradient_get_one_and_no_grad_mode_computes_none():
    hidden = torch.randn(5, 4, requires_grad=True)
    weights, bias = torch.randn(6, 4), torch.zeros(6)  # frozen output layer
    targets = torch.tensor([1, 2, 3, 4, 5])
    chunked_cross_entropy(hidden, weights, bias, targets).backward()
    assert hidden.grad is not None and weights.grad is None and bias.grad is None
    with torch.no_grad():
        loss = chunked_cross_entropy(hidden, weights, bias, targets)
    assert not loss.requires_grad
    assert loss.item() == pytest.approx(F.cross_entropy(F.linear(hidden, weights, bias), targets).item())


@pytest.mark.parametrize("tie_output", [False, True])
def test_training_loss_takes_the_chunked_path_with_the_plain_gradients(monkeypatch, tie_output):
    """Both ways through full_softmax_loss give one model the same loss and parameter gradients."""
    split = toy_split()
    torch.manual_seed(0)
    options = {"blocks": 2, "embedding_dim": 16, "tie_output": tie_output}
    model = build_model("nextitnet", model_config("nextitnet", options), split.n_items)
    inputs = torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8]])
    targets = torch.tensor([[0, 0, 2, 3, 4], [5, 6, 7, 8, 9]])

    def loss_and_grads(limit: int) -> tuple[float, list[torch.Tensor]]:
        monkeypatch.setattr(losses, "CHUNKED_MIN_SCORES", limit)
        monkeypatch.setattr(losses, "CHUNKED_MIN_ITEMS", 0)
        assert losses.use_chunked(torch.device("cpu"), 8, split.n_items) == (limit == 0)
        model.zero_grad()
        loss = full_softmax_loss(model, model(inputs), targets)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain_loss, plain_grads = loss_and_grads(1 << 62)
    chunked_loss, chunked_grads = loss_and_grads(0)
    assert chunked_loss == pytest.approx(plain_loss, abs=1e-6)
    assert len(chunked_grads) == len(plain_grads)
    for ours, theirs in zip(chunked_grads, plain_grads, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)


def test_the_chunked_path_is_chosen_from_the_number_of_scores():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not losses.use_chunked(cpu, 10, 50)  # a toy batch: the plain loss
    assert not losses.use_chunked(cpu, 3200, 410)  # a catalogue that fits the cache whole
    assert losses.use_chunked(cpu, 400, 12_102)  # a short Beauty batch
    assert losses.use_chunked(cpu, 3200, 1_683)  # a full ml-100k batch
    assert not losses.use_chunked(cuda, 3200, 12_102)  # CUDA: only to bound memory
