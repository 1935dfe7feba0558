"""GRec as StackRec's reference code trains it: NextItNet blocks with a gap-filling objective.

Paper: Yuan et al., "Future Data Helps Training: Modeling Future Contexts for Session-based
Recommendation" (WWW 2020). The original GRec is an encoder–decoder; StackRec's reference code
(wangjiachun0426/StackRec, ``deep_GRec.py``) instead keeps the causal α-blocks of NextItNet and
changes only the training task, which is what this file does:

- in every training window a share (default 20 %, at least 1, at most 50) of the target positions
  is chosen;
- the loss is the next-item loss at the chosen positions only, and the input item right after
  each chosen position (the item being predicted) is hidden from the rest of the window, so later
  positions learn to predict across gaps.

Inference is NextItNet's: the next item from the last position of an unmasked history.
Deviation: hidden inputs use a dedicated gap id that embeds to zero (the reference feeds the
padding id), so a gap is not confused with padding by our padding mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from trainer.configs import Bound, between
from trainer.models.base import GAP
from trainer.models.nextitnet import NextItNet, NextItNetConfig


@dataclass(frozen=True)
class GRecConfig(NextItNetConfig):
    mask_share: float = 0.2  # share of target positions trained per window (reference: 0.2)
    max_masked: int = 50  # cap per window (reference: max_predictions_per_seq = 50)

    BOUNDS: ClassVar[dict[str, Bound]] = {
        "mask_share": between(0, 1, "a share of the window's positions", lo_open=True),
        "max_masked": between(1, 1024, "at most every position of the longest window (train.max_len)"),
    }


class GRec(NextItNet):
    name = "grec"
    config_cls = GRecConfig

    def training_inputs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pick the trained positions per row, hide the items they predict, drop other targets."""
        config: GRecConfig = self.config  # type: ignore[assignment]
        valid = targets > 0  # [B, T]
        lengths = valid.sum(dim=1)  # [B]
        n_pick = (lengths.float() * config.mask_share).round().clamp(min=1, max=config.max_masked)
        n_pick = torch.minimum(n_pick, lengths.float()).long()  # [B]
        # Random ranks among real positions: the n_pick smallest keys are chosen. Hidden inputs
        # sit one step later, so a window's first input item is never hidden (as in the reference).
        keys = torch.rand(targets.shape, generator=generator, device=targets.device)
        keys = keys.masked_fill(~valid, 2.0)
        order = keys.argsort(dim=1).argsort(dim=1)  # rank of each position's key within its row
        chosen = order < n_pick.unsqueeze(1)  # [B, T]
        new_targets = targets.masked_fill(~chosen, 0)
        # The item predicted at position t is the input at t + 1: hide it there.
        hide = torch.zeros_like(chosen)
        hide[:, 1:] = chosen[:, :-1]
        new_inputs = inputs.masked_fill(hide & (inputs > 0), GAP)
        return new_inputs, new_targets
