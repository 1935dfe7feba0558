"""NextItNet as StackRec uses it.

Paper: Yuan et al., "A Simple Convolutional Generative Network for Next Item Recommendation"
(WSDM 2019); reference code fajieyuan/nextitnet. StackRec (Wang et al., SIGIR 2021; code
wangjiachun0426/StackRec) adds the "slight modification" kept here: each residual block's
branch is scaled by a learnable scalar α initialised to 0.

Block with base dilation r (kernel 3, causal)::

    H1 = ReLU(LN(conv_r(X)));  H2 = ReLU(LN(conv_2r(H1)));  Y = X + α·H2

Deviations from the reference: optional dropout on the embeddings and on each block's branch
(small data sets overfit within ~20 epochs); hidden states at padded positions are zeroed after
each sub-layer so outputs do not depend on the padding length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from trainer.configs import Bound, ConfigError, between
from trainer.models.base import ModelConfig, ResidualScale, SequentialRecommender

LN_EPS = 1e-8  # as in the NextItNet reference code


class CausalConv1d(nn.Module):
    """1-D convolution over time that only looks back: left-pads (k−1)·dilation positions."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] → [B, T, D]."""
        h = F.pad(x.transpose(1, 2), (self.left_pad, 0))  # [B, D, T + pad]
        return self.conv(h).transpose(1, 2)


class NextItNetBlock(nn.Module):
    """Two dilated causal convolutions (r, then 2r), each with layer norm and ReLU, α-residual."""

    def __init__(self, dim: int, dilation: int, kernel_size: int, dropout: float, rezero: bool) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv1 = CausalConv1d(dim, kernel_size, dilation)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.conv2 = CausalConv1d(dim, kernel_size, 2 * dilation)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.residual = ResidualScale(rezero)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x))) * mask  # [B, T, D]
        h = F.relu(self.norm2(self.conv2(h))) * mask
        return x + self.residual(self.dropout(h))


@dataclass(frozen=True)
class NextItNetConfig(ModelConfig):
    """Block ``i`` uses base dilation ``dilations[i % len(dilations)]``."""

    dilations: tuple[int, ...] = (1, 4)
    kernel_size: int = 3

    BOUNDS: ClassVar[dict[str, Bound]] = {
        "dilations": between(
            1, 256, "NextItNet cycles 1, 2, 4, 8; at 256 one block already spans max_len 1024"
        ),
        "kernel_size": between(2, 9, "the reference uses 3; a wider kernel multiplies each block's cost"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dilations:
            raise ConfigError("model_options.dilations must list at least one dilation, got []")

    def block_dilation(self, index: int) -> int:
        return self.dilations[index % len(self.dilations)]


class NextItNet(SequentialRecommender):
    """Stack of causal dilated convolution blocks; every position predicts the next item."""

    name = "nextitnet"
    config_cls = NextItNetConfig

    def __init__(self, config: NextItNetConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.blocks = nn.ModuleList(
            NextItNetBlock(
                config.embedding_dim,
                config.block_dilation(i),
                config.kernel_size,
                config.dropout,
                config.rezero,
            )
            for i in range(config.blocks)
        )
        self._init_embeddings()

    def context_length(self) -> int:
        """The last position's receptive field: itself plus each causal convolution's look-back.

        Exact because padded positions are zero at every layer, as the convolutions' own left
        padding is: items further back cannot reach the last output.
        """
        return 1 + sum(block.conv1.left_pad + block.conv2.left_pad for block in self.blocks)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, mask)
        return x
