"""The functions an artifact's graph computes, per model: item_seq → last hidden state → TopK.

:func:`trainer.export.export_model` traces :class:`TopKGraph` to ONNX; this module holds what it
traces. Each encoder reuses the trained parameters (rearranged, never retrained) and computes only
what the last position needs, because serving reads nothing else; the parity tests hold every
graph to the eager model's ``score_last``.

**NextItNet and GRec** (:class:`NextItNetLastHidden`) run *time-major*: a batch of B histories of
length L is one ``[L·B, D]`` matrix whose rows are position-major (position t of every history,
then t + 1). Why: a causal convolution's tap "s positions back" is then the whole matrix moved
down ``s·B`` rows, one ONNX ``Pad`` with a negative end (zeros enter at the top, the last rows
leave), so a dilated convolution is ``Pad`` per older tap, one ``Concat``, one 2-D ``MatMul`` +
bias (ONNX Runtime fuses the pair into a ``Gemm``), ``LayerNormalization``, ``Relu`` and the mask
— seven operators, with no reshapes between layers and a matrix product ONNX Runtime runs as one
GEMM over every row of the batch. Measured on NextItNet-16, Beauty, length 50, one thread
(``bench/serving.py``, CPU time, against the batch-major graph it replaced — ``[B, L, D]``, each
convolution ``Pad`` + a ``Slice`` per tap + ``Concat`` + a 3-D ``MatMul`` + ``Add``, kept in
``bench/batch_major_graph.py``): batch 1 0.414 against 0.479 ms p50 (1.16×), batch 64 18.7 against
20.8 ms (1.11×), real Beauty histories 1.29× and 1.09×. What is left is ONNX Runtime's own: the
GEMMs run at the measured matmul peak and take half the time; its LayerNormalization costs a third
of a convolution's GEMM at D = 64, and at batch 1 each of ~300 operators costs ~0.5-1 µs.

Also dropped from the graph because they cannot change the answer:

- positions outside the last position's receptive field (:func:`conv_windows`): the last block's
  second convolution runs on one position, and each earlier layer on the positions that feed it;
- taps that reach ``max_len`` or more positions back (they read only the zeros before a history);
- the residual scale α as a multiplication: ``α·ReLU(z) = sign(α)·ReLU(|α|·z)``, so ``|α|`` is
  folded into the second layer norm's scale and shift and the residual is an ``Add`` (or a
  ``Sub`` for α < 0).

Padded positions (item 0, histories are left-padded) are zeroed after every sub-layer as the eager
model does, by one multiplication with a 0/1 mask expanded to the activations' shape once (a
full-shape ``Mul`` costs ONNX Runtime a third less than a broadcast from ``[rows, 1]``).

**SASRec** (:class:`SASRecLastHidden`): every block but the last as trained; the last computes
queries, attention and feed-forward for the last position only (keys and values still cover the
history).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from trainer.models.base import SequentialRecommender
from trainer.models.nextitnet import NextItNet, NextItNetBlock
from trainer.models.sasrec import SASRec, SASRecBlock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockWindow:
    """How many of the most recent positions a NextItNet block's layers must compute.

    ``None`` means every position. ``inputs`` is what the block reads, ``middle`` what its first
    convolution outputs, ``outputs`` what its second convolution and residual output.
    """

    inputs: int | None
    middle: int | None
    outputs: int | None


def conv_windows(model: NextItNet, max_len: int, last_position: bool = True) -> list[BlockWindow]:
    """Per block, first to last: the windows the final position depends on (its receptive field).

    A causal convolution with kernel k and dilation d needs ``n + (k-1)·d`` inputs for its last
    ``n`` outputs; walking back from one output position through every block gives each layer's
    window. Windows of ``max_len`` or more are "everything" (``None``).
    """
    plan: list[BlockWindow] = []
    need = 1 if last_position else max_len
    for block in reversed(model.blocks):
        k1, d1 = block.conv1.conv.kernel_size[0], block.conv1.conv.dilation[0]
        k2, d2 = block.conv2.conv.kernel_size[0], block.conv2.conv.dilation[0]
        middle = need + (k2 - 1) * d2
        inputs = middle + (k1 - 1) * d1
        plan.append(BlockWindow(*(n if n < max_len else None for n in (inputs, middle, need))))
        need = inputs
    return plan[::-1]


def _recent(rows: torch.Tensor, n: int | None, batch: int) -> torch.Tensor:
    """The last ``n`` positions of time-major rows [L·B, ...] (all of them if L ≤ n or n is None)."""
    return rows if n is None else rows[-n * batch :]


class _TimeMajorConv(nn.Module):
    """A causal dilated convolution on time-major rows [L·B, D], optionally for the last ``n`` positions.

    Tap j of a kernel-k convolution with dilation d reads ``x[t - s_j]``, ``s_j = (k-1-j)·d``;
    on time-major rows that is the matrix moved down ``s_j·B`` rows with zeros entering at the
    top: ``F.pad`` with a negative end, which the exporter writes as one ONNX ``Pad`` (ONNX
    Runtime returns all zeros when the move exceeds a short history, which is what it means).
    The taps side by side are the ``[rows, k·D]`` input of one matrix product.
    """

    def __init__(self, conv: nn.Conv1d, n: int | None, max_len: int) -> None:
        super().__init__()
        k, d = conv.kernel_size[0], conv.dilation[0]
        kept = [j for j in range(k) if (k - 1 - j) * d < max_len]  # older taps only ever read zeros
        self.shifts = [(k - 1 - j) * d for j in kept]
        self.n = n
        # [D_out, D_in, k] → [len(kept)·D_in, D_out], tap-major rows to match the concatenation;
        # ``x @ W`` rather than F.linear so the INT8 quantiser finds a MatMul with a weight side.
        weight = conv.weight.detach()[:, :, kept].permute(2, 1, 0).reshape(-1, conv.out_channels)
        self.weight = nn.Parameter(weight.contiguous().clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """x [L·B, D] → [min(L, n)·B, D] (n=None: [L·B, D])."""
        taps = [x if s == 0 else F.pad(x, (0, 0, s * batch, -s * batch)) for s in self.shifts]
        taps_cat = taps[0] if len(taps) == 1 else torch.cat(taps, dim=-1)  # [L·B, k·D]
        return _recent(taps_cat, self.n, batch) @ self.weight + self.bias


def _scaled_norm(norm: nn.LayerNorm, scale: float) -> nn.LayerNorm:
    """A copy of ``norm`` whose output is ``scale`` times the original's (scale ≥ 0)."""
    scaled = nn.LayerNorm(norm.normalized_shape, eps=norm.eps)
    with torch.no_grad():
        scaled.weight.copy_(norm.weight * scale)
        scaled.bias.copy_(norm.bias * scale)
    return scaled.requires_grad_(False)


class _NextItNetTailBlock(nn.Module):
    """NextItNetBlock's arithmetic on time-major rows and the windows of :class:`BlockWindow`."""

    def __init__(self, block: NextItNetBlock, window: BlockWindow, max_len: int) -> None:
        super().__init__()
        self.window = window
        self.conv1 = _TimeMajorConv(block.conv1.conv, window.middle, max_len)
        self.conv2 = _TimeMajorConv(block.conv2.conv, window.outputs, max_len)
        self.norm1 = block.norm1
        alpha = float(block.residual.alpha.detach().reshape(()))
        self.subtract = alpha < 0  # α·ReLU(z) = −ReLU(|α|·z)
        self.norm2 = _scaled_norm(block.norm2, abs(alpha))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [L·B, D], mask [L·B, D]) → the same for the block's output window."""
        w = self.window
        h = F.relu(self.norm1(self.conv1(x, batch))) * _recent(mask, w.middle, batch)
        x, mask = _recent(x, w.outputs, batch), _recent(mask, w.outputs, batch)
        h = F.relu(self.norm2(self.conv2(h, batch))) * mask  # |α| is inside norm2
        return (x - h if self.subtract else x + h), mask


class NextItNetLastHidden(nn.Module):
    """item_seq [B, T] → hidden state at the last position [B, D] for NextItNet and GRec."""

    def __init__(self, model: NextItNet, max_len: int, last_position: bool = True) -> None:
        super().__init__()
        self.item_embedding = model.item_embedding
        self.windows = conv_windows(model, max_len, last_position)
        self.blocks = nn.ModuleList(
            _NextItNetTailBlock(b, w, max_len) for b, w in zip(model.blocks, self.windows, strict=True)
        )

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        # Older items than the first block's window cannot reach the last position.
        first = self.windows[0].inputs if self.windows else None
        item_seq = item_seq if first is None else item_seq[:, -first:]
        batch = item_seq.shape[0]
        rows = item_seq.t().reshape(-1)  # [L·B], position-major
        x = self.item_embedding(rows)  # [L·B, D]; padding embeds to 0
        mask = (rows != 0).unsqueeze(-1).to(x.dtype).expand_as(x)  # [L·B, D], materialised once
        for block in self.blocks:
            x, mask = block(x, mask, batch)
        return x[-batch:]  # the last position of every history, in batch order


class SASRecLastHidden(nn.Module):
    """item_seq [B, T] → hidden state at the last position [B, D] for SASRec.

    Every block but the last runs as trained; the last one needs its keys and values over the whole
    history but queries, attention output and feed-forward for the last position only.

    The embedding front is SASRec.encode's, with one change: positions are computed as
    ``(T-1) - arange(T)`` rather than ``arange(T-1, -1, -1)``. ONNX Runtime (1.32, extended
    optimisations) rewrites ``Gather(Range(T-1, -1, -1))`` into ``Slice(end=-1, step=-1)``, where
    −1 means "the last element", and the position embeddings come out empty.
    """

    def __init__(self, model: SASRec, last_position: bool = True) -> None:
        super().__init__()
        self.model = model
        self.last_position = last_position

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        model = self.model
        mask = (item_seq != 0).unsqueeze(-1).to(model.item_embedding.weight.dtype)  # [B, T, 1]
        x = model.item_embedding(item_seq)
        t = x.shape[1]
        positions = (t - 1) - torch.arange(t, device=x.device)  # most recent item is position 0
        x = model.input_norm(x * math.sqrt(x.shape[-1]) + model.position_embedding(positions)) * mask
        real = mask.squeeze(-1) > 0  # [B, T]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        allowed = (causal.unsqueeze(0) & real.unsqueeze(1)).unsqueeze(1)  # [B, 1, T, T]
        blocks = list(model.blocks)
        if self.last_position:
            blocks, last = blocks[:-1], blocks[-1]
        for block in blocks:
            x = block(x, mask, allowed)
        x = self._last_block(last, x, real) if self.last_position else x[:, -1]  # [B, D]
        if model.final_norm is not None:
            x = model.final_norm(x)
        return x

    @staticmethod
    def _last_block(block: SASRecBlock, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """SASRecBlock.forward at the last position; the last position is real in every served row."""
        attention = block.attention
        b, t, d = x.shape
        heads = attention.heads
        source = block.norm1(x) if block.pre_norm else x  # what the attention reads
        w, bias = attention.qkv.weight, attention.qkv.bias  # rows: q, then k, then v
        q = F.linear(source[:, -1], w[:d], bias[:d]).view(b, heads, 1, d // heads)  # [B, H, 1, dh]
        kv = F.linear(source, w[d:], bias[d:]).view(b, t, 2, heads, d // heads).permute(2, 0, 3, 1, 4)
        scores = (q @ kv[0].transpose(-2, -1)) * (1.0 / math.sqrt(d // heads))  # [B, H, 1, T]
        scores = scores.masked_fill(~real[:, None, None, :], -1e9)  # same fill as the trained model
        out = (torch.softmax(scores, dim=-1) @ kv[1]).reshape(b, d)  # [B, D]
        attended = block.residual1(attention.proj(out))
        last = x[:, -1]
        if block.pre_norm:
            a = last + attended
            return a + block.residual2(block._ffn(block.norm2(a)))
        a = block.norm1(last + attended)
        return block.norm2(a + block.residual2(block._ffn(a)))


class PlainLastHidden(nn.Module):
    """The model's own forward at every position, last one kept: the baseline the tail graphs beat."""

    def __init__(self, model: SequentialRecommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        return self.model(item_seq)[:, -1]


class TopKGraph(nn.Module):
    """Last hidden state → scores over all items → exclusions → TopK: the exported function."""

    def __init__(
        self, model: SequentialRecommender, *, max_len: int, max_k: int, last_position: bool
    ) -> None:
        super().__init__()
        if isinstance(model, NextItNet):  # GRec included: same blocks, same inference
            self.encoder: nn.Module = NextItNetLastHidden(model, max_len, last_position)
        elif isinstance(model, SASRec):
            self.encoder = SASRecLastHidden(model, last_position)
        else:
            logger.warning("%s has no last-position graph; exporting its full forward", model.name)
            self.encoder = PlainLastHidden(model)
        self.max_k = min(max_k, model.n_items - 1)
        self.weight = nn.Parameter(model.item_weights.detach().clone(), requires_grad=False)
        bias = model.output_bias.detach().clone()
        bias[0] = -math.inf  # the padding index can never be recommended
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, item_seq: torch.Tensor, exclude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """item_seq [B, T], exclude [B, E] → (items [B, K] int64, scores [B, K] float32)."""
        scores = F.linear(self.encoder(item_seq), self.weight, self.bias)  # [B, n_items]
        scores = scores.scatter(1, exclude, -math.inf)
        values, indices = torch.topk(scores, self.max_k, dim=1)
        return indices, values


def reference_topk(
    model: SequentialRecommender, item_seq: torch.Tensor, exclude: torch.Tensor | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the exported graph must return, computed by the eager model (parity tests, benchmark)."""
    scores = model.score_last(item_seq)
    if exclude is not None:
        scores = scores.scatter(1, exclude, -math.inf)
    values, indices = torch.topk(scores, min(k, model.n_items - 1), dim=1)
    return indices, values


def flops_per_request(model: SequentialRecommender, seq_len: int, *, last_position: bool = True) -> int:
    """Floating-point operations (2 per multiply-add) of one history of ``seq_len`` items.

    Counts the matrix products (convolutions, projections, attention, output layer), which are
    all but a few percent of the work; norms, activations and TopK are left out. With
    ``last_position`` it counts what the exported graph computes, otherwise the full forward.
    """
    d, n_items = model.config.embedding_dim, model.n_items
    macs = d * n_items  # output layer, last position only
    if isinstance(model, NextItNet):
        windows = conv_windows(model, seq_len, last_position)
        for block, window in zip(model.blocks, windows, strict=True):
            k1, k2 = block.conv1.conv.kernel_size[0], block.conv2.conv.kernel_size[0]
            middle = seq_len if window.middle is None else min(window.middle, seq_len)
            outputs = seq_len if window.outputs is None else min(window.outputs, seq_len)
            macs += (middle * k1 + outputs * k2) * d * d
    elif isinstance(model, SASRec):
        ffn = model.config.ffn_dim or d
        for i, _ in enumerate(model.blocks):
            queries = 1 if last_position and i == len(model.blocks) - 1 else seq_len
            macs += seq_len * 2 * d * d + queries * d * d  # k, v over the history; q
            macs += 2 * queries * seq_len * d  # q·kᵀ and weights·v
            macs += queries * (d * d + 2 * d * ffn)  # output projection and feed-forward
    return 2 * macs
