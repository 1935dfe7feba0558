"""Training losses over all (non-padding) target positions.

Only real target positions are gathered before the output layer, so padding costs nothing in the
softmax — which on a 10k-item catalogue is most of the compute.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from trainer.models.base import SequentialRecommender

# The StackRec/NextItNet reference trains with a sampled softmax using 20 % of the catalogue as
# negatives (tf.nn.sampled_softmax_loss with num_sampled = 0.2 · item_size).
DEFAULT_NEGATIVE_SHARE = 0.2


def full_softmax_loss(
    model: SequentialRecommender, hidden: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over every item, at positions whose target is not padding."""
    real = targets > 0  # [B, T]
    h = hidden[real]  # [N, D]
    return F.cross_entropy(model.logits(h).float(), targets[real])


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
