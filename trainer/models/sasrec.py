"""SASRec with StackRec's α-scaled residuals.

Paper: Kang & McAuley, "Self-Attentive Sequential Recommendation" (ICDM 2018). StackRec's
reference (wangjiachun0426/StackRec, ``SASRec_Alpha.py``) uses post-LN blocks whose two
sub-layers are each scaled by a learnable α initialised to 0::

    A = LN(X + α₁·Attn(X));   Y = LN(A + α₂·FFN(A))

``norm_position="pre"`` gives the pre-LN form instead (``A = X + α₁·Attn(LN(X))``,
``Y = A + α₂·FFN(LN(A))``, one final LN after the last block), in which a block with α = 0 is
exactly the identity; function-preserving stacking needs it, because a post-LN block is not the
identity even with α = 0 (its layer norms still act).

Causal self-attention is written out by hand (no ``nn.TransformerEncoder`` and its fused fast
path, which does not export to ONNX cleanly). Learned positions are indexed from the END of the
sequence, so the most recent item always has the same position embedding however much left
padding precedes it (deviation from the original's right-aligned absolute positions, which it
equals when histories are exactly ``max_len`` long). Output: untied softmax layer by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from trainer.configs import Bound, ConfigError, between
from trainer.models.base import ModelConfig, ResidualScale, SequentialRecommender

LN_EPS = 1e-8  # as in the SASRec reference code


class CausalSelfAttention(nn.Module):
    """Multi-head attention where position t attends to real positions ≤ t only."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], allowed [B or 1, 1, T, T] bool → [B, T, D]."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # [B,H,T,dh]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))  # [B, H, T, T]
        # A finite fill keeps fully-masked rows (padding queries) from producing NaN.
        scores = scores.masked_fill(~allowed, -1e9)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)  # [B, T, D]
        return self.proj(out)


class SASRecBlock(nn.Module):
    def __init__(
        self, dim: int, heads: int, ffn_dim: int, dropout: float, rezero: bool, pre_norm: bool
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = CausalSelfAttention(dim, heads, dropout)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn_in = nn.Linear(dim, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.residual1 = ResidualScale(rezero)
        self.residual2 = ResidualScale(rezero)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            a = x + self.residual1(self.dropout(self.attention(self.norm1(x), allowed))) * mask
            return a + self.residual2(self.dropout(self._ffn(self.norm2(a)))) * mask
        a = self.norm1(x + self.residual1(self.dropout(self.attention(x, allowed)))) * mask
        return self.norm2(a + self.residual2(self.dropout(self._ffn(a)))) * mask

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_out(self.dropout(F.relu(self.ffn_in(x))))


@dataclass(frozen=True)
class SASRecConfig(ModelConfig):
    blocks: int = 2
    heads: int = 1
    ffn_dim: int = 0  # 0 → same as embedding_dim (the SASRec paper's point-wise FFN)
    max_len: int = 200  # positions the model can embed; longer histories keep the most recent
    norm_position: str = "post"  # post (reference) | pre (needed for function-preserving stacking)

    BOUNDS: ClassVar[dict[str, Bound]] = {
        "heads": between(1, 64, "the reference uses 1; each head needs embedding_dim / heads dimensions"),
        "ffn_dim": between(0, 8192, "0 means embedding_dim; 8192 is 8 times the largest embedding"),
        "max_len": between(1, 1024, "attention costs max_len² per head; as train.max_len"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embedding_dim % self.heads:
            raise ConfigError(
                f"model_options.embedding_dim {self.embedding_dim} must divide into heads={self.heads}"
            )
        if self.norm_position not in ("post", "pre"):
            raise ConfigError(
                f"model_options.norm_position must be 'post' or 'pre', got {self.norm_position!r}"
            )


class SASRec(SequentialRecommender):
    name = "sasrec"
    config_cls = SASRecConfig

    def __init__(self, config: SASRecConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        d = config.embedding_dim
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.input_norm = nn.LayerNorm(d, eps=LN_EPS)
        ffn = config.ffn_dim or d
        pre_norm = config.norm_position == "pre"
        self.blocks = nn.ModuleList(
            SASRecBlock(d, config.heads, ffn, config.dropout, config.rezero, pre_norm)
            for _ in range(config.blocks)
        )
        self.final_norm = nn.LayerNorm(d, eps=LN_EPS) if pre_norm else None
        self._init_embeddings()
        nn.init.trunc_normal_(self.position_embedding.weight, std=0.02)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        max_len = self.config.max_len  # type: ignore[attr-defined]
        if t > max_len:  # keep the most recent positions the model has embeddings for
            x, mask, t = x[:, -max_len:], mask[:, -max_len:], max_len
        # Position 0 is the most recent item: [T-1, ..., 1, 0].
        positions = torch.arange(t - 1, -1, -1, device=x.device)
        x = x * math.sqrt(x.shape[-1]) + self.position_embedding(positions)  # [B, T, D]
        x = self.dropout(self.input_norm(x)) * mask
        real = mask.squeeze(-1) > 0  # [B, T]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        allowed = causal.unsqueeze(0) & real.unsqueeze(1)  # [B, T(query), T(key)]
        allowed = allowed.unsqueeze(1)  # [B, 1, T, T]
        for block in self.blocks:
            x = block(x, mask, allowed)
        if self.final_norm is not None:
            x = self.final_norm(x) * mask
        return x
