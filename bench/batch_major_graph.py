"""NextItNet's previous serving graph, batch-major, kept so bench/serving.py can time it beside the new one.

Until the time-major graph of :mod:`trainer.export_graphs`, the exported NextItNet/GRec encoder
ran on ``[B, L, D]``: per convolution a ``Pad`` of the window, a ``Slice`` per tap, a ``Concat``,
a 3-D ``MatMul`` and a separate bias ``Add``; the layer norms, ReLU and a ``[B, L, 1]`` mask
broadcast as now; the residual scale α multiplied onto the mask. Same arithmetic, same parity
with the eager model; only the operators ONNX Runtime runs differ. Not used by any artifact.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.export_graphs import BlockWindow, conv_windows
from trainer.models.nextitnet import NextItNet, NextItNetBlock


class _TailConv(nn.Module):
    """A causal dilated convolution, channels-last, optionally for the last ``n`` positions only."""

    def __init__(self, conv: nn.Conv1d, n: int | None) -> None:
        super().__init__()
        self.kernel, self.dilation, self.n = conv.kernel_size[0], conv.dilation[0], n
        self.span = (self.kernel - 1) * self.dilation  # how far back the oldest tap reaches
        # [D_out, D_in, k] → [D_out, k·D_in], tap-major to match the concatenation below.
        weight = conv.weight.detach().permute(0, 2, 1).reshape(conv.out_channels, -1)
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, D] → [B, min(L, n), D] (n=None: [B, L, D])."""
        d, span = self.dilation, self.span
        if self.n is not None:
            x = x[:, -(self.n + span) :]
        x = F.pad(x, (0, 0, span, 0))  # zeros stand for "before the history"
        taps = torch.cat([x[:, j * d : (j * d - span) or None] for j in range(self.kernel)], dim=-1)
        if self.n is not None:
            taps = taps[:, -self.n :]
        return F.linear(taps, self.weight, self.bias)


class _Block(nn.Module):
    def __init__(self, block: NextItNetBlock, window: BlockWindow) -> None:
        super().__init__()
        self.window = window
        self.conv1 = _TailConv(block.conv1.conv, window.middle)
        self.conv2 = _TailConv(block.conv2.conv, window.outputs)
        self.norm1, self.norm2, self.residual = block.norm1, block.norm2, block.residual

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.window
        h = F.relu(self.norm1(self.conv1(x))) * _recent(mask, w.middle)
        x, mask = _recent(x, w.outputs), _recent(mask, w.outputs)
        h = F.relu(self.norm2(self.conv2(h))) * self.residual(mask)
        return x + h, mask


def _recent(x: torch.Tensor, n: int | None) -> torch.Tensor:
    return x if n is None else x[:, -n:]


class BatchMajorLastHidden(nn.Module):
    """item_seq [B, T] → hidden state at the last position [B, D], the previous way."""

    def __init__(self, model: NextItNet, max_len: int) -> None:
        super().__init__()
        self.item_embedding = model.item_embedding
        self.windows = conv_windows(model, max_len)
        self.blocks = nn.ModuleList(_Block(b, w) for b, w in zip(model.blocks, self.windows, strict=True))

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        item_seq = _recent(item_seq, self.windows[0].inputs if self.windows else None)
        mask = (item_seq != 0).unsqueeze(-1).to(self.item_embedding.weight.dtype)  # [B, L, 1]
        x = self.item_embedding(item_seq)  # [B, L, D]
        for block in self.blocks:
            x, mask = block(x, mask)
        return x[:, -1]
