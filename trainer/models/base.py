"""The contract every sequential recommender in the trainer follows.

Stacking, the training loop, evaluation and ONNX export only ever talk to this interface, so a
new model is one file: its blocks, its config dataclass, and a subclass of
:class:`SequentialRecommender`.

Padding: sequences are LEFT-padded with item 0. Every model zeroes hidden states at padded
positions after each sub-layer, so a history's output does not depend on how much padding sits
before it (a batch of 1 and a padded batch of 64 score identically, which ONNX parity relies on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from trainer.configs import Bound, ConfigMixin, between

GAP = -1  # input id of a hidden (gap) position; see SequentialRecommender.forward


# The depth range every model family shares, and the schedule's depths too (trainer.schedule).
BLOCKS = between(1, 128, "StackRec reaches ~100 layers (NextItNet: 64+ blocks); 128 leaves room")


@dataclass(frozen=True)
class ModelConfig(ConfigMixin):
    """Fields every model shares; subclasses add their own."""

    section = "model_options"

    blocks: int = 4
    embedding_dim: int = 64
    dropout: float = 0.0
    # ReZero-style learnable residual scale per block, initialised to 0 (StackRec's modification
    # of NextItNet). False gives the plain residual ``x + f(x)``.
    rezero: bool = True
    tie_output: bool = False

    BOUNDS: ClassVar[dict[str, Bound]] = {
        "blocks": BLOCKS,
        "embedding_dim": between(
            8, 1024, "below 8 an item vector carries little; 1024 is 16 times the reference's 64"
        ),
        "dropout": between(0, 1, "a share of activations; 1 would drop them all", hi_open=True),
    }


class ResidualScale(nn.Module):
    """The per-block residual multiplier α: learnable and starting at 0, or a constant 1."""

    def __init__(self, learnable: bool) -> None:
        super().__init__()
        if learnable:
            self.alpha = nn.Parameter(torch.zeros(1))
        else:
            self.register_buffer("alpha", torch.ones(1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.alpha * h


class SequentialRecommender(nn.Module):
    """Item embedding → ordered residual blocks → output layer over all items.

    Subclasses set ``name`` and ``config_cls``, build ``self.blocks`` and implement
    :meth:`encode` (embeddings → hidden states).
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig, n_items: int) -> None:
        super().__init__()
        if n_items < 2:
            raise ValueError(f"n_items must count padding plus at least one item, got {n_items}")
        self.config = config
        self.n_items = n_items
        d = config.embedding_dim
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.output_bias = nn.Parameter(torch.zeros(n_items))
        self.output_weight = None if config.tie_output else nn.Parameter(torch.empty(n_items, d))
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList()

    def reset_output_layer(self) -> None:
        """(Re-)initialise the softmax layer; stacking's paper-faithful mode calls this too."""
        nn.init.zeros_(self.output_bias)
        if self.output_weight is not None:
            nn.init.trunc_normal_(self.output_weight, std=0.02)

    def _init_embeddings(self) -> None:
        # Truncated normal σ=0.02, as the NextItNet reference initialises its item embedding.
        nn.init.trunc_normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.reset_output_layer()

    # -- the shared interface -------------------------------------------------------------

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """item_seq [B, T] (left-padded with 0) → hidden states [B, T, D].

        An id of ``GAP`` (−1) is a real position whose item is hidden: it embeds to zero like
        padding but is not masked out (GRec's gap-filling training uses it).
        """
        mask = (item_seq != 0).unsqueeze(-1).to(self.item_embedding.weight.dtype)  # [B, T, 1]
        x = self.item_embedding(item_seq.clamp(min=0))  # [B, T, D]; padding embeds to 0
        return self.encode(x, mask)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Item embeddings [B, T, D] and the real-position mask [B, T, 1] → hidden [B, T, D]."""
        raise NotImplementedError

    @property
    def item_weights(self) -> torch.Tensor:
        """The output layer's item vectors [n_items, D]."""
        return self.item_embedding.weight if self.output_weight is None else self.output_weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., D] → scores over every item [..., n_items]."""
        return F.linear(hidden, self.item_weights, self.output_bias)

    def context_length(self) -> int | None:
        """How many of a history's latest items the next-item scores depend on; None: all of them.

        :meth:`score_last` encodes no more than this, so scoring a long history costs only what
        the model can see (a 2-block NextItNet sees 31 items of a 200-item history).
        """
        return None

    def score_last(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Next-item scores after each history: [B, T] → [B, n_items]; padding scores −inf."""
        context = self.context_length()
        if context is not None and item_seq.shape[1] > context:
            item_seq = item_seq[:, -context:]
        return self.score_hidden(self.forward(item_seq)[:, -1, :])

    def score_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-item scores from chosen positions' hidden states: [N, D] → [N, n_items]."""
        scores = self.logits(hidden)
        scores[:, 0] = -math.inf
        return scores

    def training_inputs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hook for models whose training task differs from next-item prediction (GRec)."""
        return inputs, targets

    def describe(self) -> str:
        n_params = sum(p.numel() for p in self.parameters())
        return f"{self.name} ({len(self.blocks)} blocks, d={self.config.embedding_dim}, {n_params:,} params)"
