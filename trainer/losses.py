"""Training losses over all (non-padding) target positions.

Only real target positions are gathered before the output layer, so padding costs nothing in the
softmax — which on a 10k-item catalogue is most of the compute.

The full softmax over a large catalogue is computed in chunks of positions by
:func:`chunked_cross_entropy`, whose scores never exist for more than ``CHUNK_ROWS`` positions at a
time; where the whole [N, n_items] score matrix is small, or the catalogue has under 1,024 items,
the plain ``F.cross_entropy`` is as fast or faster and is kept (see :func:`use_chunked`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from trainer.models.base import SequentialRecommender

# The StackRec/NextItNet reference trains with a sampled softmax using 20 % of the catalogue as
# negatives (tf.nn.sampled_softmax_loss with num_sampled = 0.2 · item_size).
DEFAULT_NEGATIVE_SHARE = 0.2

# Positions per chunk of the chunked loss. 128 rows × 12,102 Beauty items is 6 MiB of scores, in
# the L3 cache while its softmax and the two gradient products read it; in one sweep of 32–512 on
# this CPU, 128 was the fastest at ml-100k's, Beauty's and diginetica's sizes (others up to 30 %
# slower at 43k items).
CHUNK_ROWS = 128
# The chunked loss is used from this many scores (positions × items) and items on. One thread,
# forward + backward, plain / chunked time: 150 × 1,683 and 20 × 12,102 scores 1.00; 64 × 12,102
# 1.12; Beauty's median and largest batches (256 and 3,200 positions) 1.27 and 1.84 with 450 MiB
# less peak memory; ml-100k's full batch 1.21; diginetica 1.04 and 2.15 (bench/throughput.py). A
# catalogue of a few hundred items fits the cache whole and the chunks only add overhead: 640 × 410
# 0.77, 3,200 × 82 0.53, while from 1,024 items on the chunked loss was never slower.
CHUNKED_MIN_SCORES = 1 << 18
CHUNKED_MIN_ITEMS = 1024
# On CUDA the plain loss is one fused kernel per step and fast; the chunked one only bounds memory
# there, so it is used only when the [N, n_items] fp32 scores would exceed this many.
CUDA_CHUNKED_MIN_SCORES = 1 << 28  # 1 GiB of fp32 scores


def full_softmax_loss(
    model: SequentialRecommender, hidden: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over every item, at positions whose target is not padding."""
    real = targets > 0  # [B, T]
    h = hidden[real]  # [N, D]
    y = targets[real]  # [N]
    if use_chunked(h.device, len(y), model.n_items):
        return chunked_cross_entropy(h, model.item_weights, model.output_bias, y)
    return F.cross_entropy(model.logits(h).float(), y)


def use_chunked(device: torch.device, positions: int, n_items: int) -> bool:
    """Whether :func:`full_softmax_loss` takes the chunked path for this many scores."""
    if device.type == "cuda":
        return positions * n_items >= CUDA_CHUNKED_MIN_SCORES
    return n_items >= CHUNKED_MIN_ITEMS and positions * n_items >= CHUNKED_MIN_SCORES


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weights: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    chunk_rows: int = CHUNK_ROWS,
) -> torch.Tensor:
    """Mean softmax cross-entropy of ``targets`` under the scores ``hidden @ weights.T + bias``.

    hidden [N, D], weights [V, D], bias [V], targets [N] → a scalar, equal to
    ``F.cross_entropy(F.linear(hidden, weights, bias), targets)`` with the same gradients::

        z_ij = h_i · w_j + b_j                       scores,  p_ij = softmax_j(z_i)
        L    = (1/N) Σ_i [ log Σ_j exp(z_ij) − z_i,y_i ]
        ∂L/∂z_ij = (p_ij − [j = y_i]) / N
        ∂L/∂h_i  = Σ_j ∂L/∂z_ij · w_j     ∂L/∂w_j = Σ_i ∂L/∂z_ij · h_i     ∂L/∂b_j = Σ_i ∂L/∂z_ij

    The scores are computed ``chunk_rows`` positions at a time and the gradients are accumulated
    in the same pass (the loss is a scalar, so the backward pass only scales them by its incoming
    gradient): the [N, V] score matrix is never materialised and each chunk is multiplied once
    forward and twice backward, the same arithmetic as the plain loss. The softmax runs in fp32 (or
    the inputs' wider type) with autocast off. Each input's gradient is made only if it needs one.
    """
    return _ChunkedCrossEntropy.apply(hidden, weights, bias, targets, chunk_rows, torch.is_grad_enabled())


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weights: torch.Tensor,
        bias: torch.Tensor,
        targets: torch.Tensor,
        chunk_rows: int,
        grad_enabled: bool,
    ) -> torch.Tensor:
        # forward() itself runs without grad mode, so the caller's mode comes in as an argument.
        need_h, need_w, need_b = (grad_enabled and need for need in ctx.needs_input_grad[:3])
        dtypes = hidden.dtype, weights.dtype, bias.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            at_least_fp32 = torch.promote_types(hidden.dtype, torch.float32)
            h, w, b = (t.to(at_least_fp32) for t in (hidden, weights, bias))
            n = h.shape[0]
            row_loss = h.new_empty(n)  # log Σ_j exp(z_ij) − z_i,y_i
            grad_h = torch.empty_like(h) if need_h else None
            grad_w = torch.zeros_like(w) if need_w else None
            grad_b = torch.zeros_like(b) if need_b else None
            for lo in range(0, n, chunk_rows):
                rows = slice(lo, lo + chunk_rows)
                h_c = h[rows]  # [r, D]
                z = torch.addmm(b, h_c, w.T)  # [r, V]
                target = z.gather(1, targets[rows].unsqueeze(1))  # [r, 1]
                top = z.amax(dim=1, keepdim=True)  # [r, 1]
                e = z.sub_(top).exp_()  # exp(z − max), in place: [r, V]
                total = e.sum(dim=1, keepdim=True)  # [r, 1]
                row_loss[rows] = (total.log() + top - target).squeeze(1)
                # p = e / total; the division is folded into the [r, D] and [V] products.
                inv = total.reciprocal_()  # [r, 1]
                if grad_h is not None:
                    torch.mm(e, w, out=grad_h[rows]).mul_(inv)  # Σ_j p_ij w_j
                if grad_w is not None:
                    grad_w.addmm_(e.T, h_c * inv)  # Σ_i p_ij h_i
                if grad_b is not None:
                    grad_b.addmv_(e.T, inv.squeeze(1))  # Σ_i p_ij
            # The −[j = y_i] part of ∂L/∂z.
            if grad_h is not None:
                grad_h -= w[targets]
            if grad_w is not None:
                grad_w.index_add_(0, targets, h, alpha=-1)
            if grad_b is not None:
                grad_b.index_add_(0, targets, torch.ones_like(row_loss), alpha=-1)
        ctx.n = n
        ctx.dtypes = dtypes
        ctx.grads = grad_h, grad_w, grad_b
        return row_loss.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        scale = grad_loss / ctx.n
        grads = [None if g is None else (g * scale).to(t) for g, t in zip(ctx.grads, ctx.dtypes, strict=True)]
        ctx.grads = None  # the graph may outlive this step; the gradients need not
        return grads[0], grads[1], grads[2], None, None, None


def sampled_softmax_loss(
    model: SequentialRecommender,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    n_negatives: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Cross-entropy of the target against ``n_negatives`` items sampled uniformly per batch.

    One negative set is shared by the whole batch (one matmul instead of a gather per row).
    Sampling is uniform over real items, so the log-Q correction is the same constant for every
    candidate and cancels. A negative that happens to equal a row's target is masked out
    ("accidental hit"), as TensorFlow's sampled_softmax_loss does by default.
    """
    real = targets > 0
    h = hidden[real]  # [N, D]
    y = targets[real]  # [N]
    n_items = model.n_items
    negatives = torch.randint(1, n_items, (n_negatives,), device=h.device, generator=generator)  # [K]
    weights, bias = model.item_weights, model.output_bias
    positive = (h * weights[y]).sum(-1) + bias[y]  # [N]
    negative = h @ weights[negatives].T + bias[negatives]  # [N, K]
    negative = negative.masked_fill(negatives.unsqueeze(0) == y.unsqueeze(1), -math.inf)
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1).float()  # [N, 1 + K]
    return F.cross_entropy(logits, torch.zeros_like(y))


def default_negatives(n_items: int) -> int:
    return max(1, int(DEFAULT_NEGATIVE_SHARE * (n_items - 1)))
