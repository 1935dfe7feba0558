"""StackRec's stacking operators: a trained model in, a model with twice the blocks out.

Paper: Wang, Yuan et al., "StackRec: Efficient Training of Very Deep Sequential Recommender
Models by Iterative Stacking" (SIGIR 2021); reference code wangjiachun0426/StackRec.

From L trained blocks B₀…B_{L−1} to 2L blocks N₀…N_{2L−1}:

- adjacent-block: N_j ← B_{⌊j/2⌋}   (B₀, B₀, B₁, B₁, …)
- cross-block:    N_j ← B_{j mod L}  (B₀ … B_{L−1}, B₀ … B_{L−1})

Two families:

- **paper-faithful** (``adjacent``, ``cross``): as the reference code does — the item embedding
  and each block's weights (NextItNet/GRec convolutions; SASRec attention and feed-forward
  layers) are copied; every block's layer norms and every α are re-initialised (α = 0, originals
  included), the output layer too, and the optimiser restarts. Right after stacking the deeper
  network does not compute what the shallow one did; it recovers as α grows.
- **function-preserving** (``preserving``, our own): cross-block order, so the originals keep their
  positions (and, for NextItNet, their dilations); every trained parameter is kept and only the
  copies start at α = 0, which makes each copy the identity. The deeper model's outputs equal the
  shallow one's at the moment of stacking, and Adam's moments carry over for every parameter that
  existed before. Needs ReZero α (``rezero=True``) and, for SASRec, pre-LN blocks.

Dilations belong to block positions, not to copied weights: block j of the deeper NextItNet uses
``dilations[j mod len(dilations)]`` whatever it was copied from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.configs import ConfigError
from trainer.models import build_model, model_config
from trainer.models.base import ResidualScale, SequentialRecommender


def adjacent_sources(n_blocks: int) -> list[int]:
    """Source block of each new block for adjacent-block stacking: 0, 0, 1, 1, …"""
    return [j // 2 for j in range(2 * n_blocks)]


def cross_sources(n_blocks: int) -> list[int]:
    """Source block of each new block for cross-block stacking: 0 … L−1, 0 … L−1."""
    return [j % n_blocks for j in range(2 * n_blocks)]


@dataclass(frozen=True)
class StackMethod:
    name: str
    sources: Callable[[int], list[int]]
    function_preserving: bool
    description: str


METHODS: dict[str, StackMethod] = {
    m.name: m
    for m in (
        StackMethod(
            "adjacent", adjacent_sources, False, "paper-faithful adjacent-block stacking (1,1,2,2,…)"
        ),
        StackMethod("cross", cross_sources, False, "paper-faithful cross-block stacking (1,…,L,1,…,L)"),
        StackMethod(
            "preserving", cross_sources, True, "function-preserving: originals kept, copies start at α=0"
        ),
    )
}


def get_method(name: str) -> StackMethod:
    if name not in METHODS:
        raise ConfigError(f"unknown stacking method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def stackable_options(model_name: str, options: dict[str, Any], method: str) -> dict[str, Any]:
    """``options`` completed so that ``method`` can stack the model, checked before any training.

    Function-preserving stacking of SASRec needs pre-LN blocks, so they are its default under that
    method; an explicit post-LN choice (or α switched off) is refused here, with the reason,
    instead of failing at the first stack after a whole stage of training.
    """
    if method not in METHODS or not METHODS[method].function_preserving:
        return options
    options = dict(options)
    if model_name == "sasrec":
        options.setdefault("norm_position", "pre")
    _check_preservable(model_config(model_name, options))
    return options


def _check_preservable(config: Any) -> None:
    if not config.rezero:
        raise ConfigError("function-preserving stacking needs learnable α (rezero=True) to start copies at 0")
    if getattr(config, "norm_position", "pre") != "pre":
        raise ConfigError(
            "function-preserving stacking of SASRec needs pre-LN blocks (model option norm_position='pre'): "
            "a post-LN block is not the identity even with α = 0"
        )


def stack(model: SequentialRecommender, method: str) -> SequentialRecommender:
    """A new model with twice ``model``'s blocks, built by ``method``; ``model`` is left untouched."""
    spec = get_method(method)
    if spec.function_preserving:
        _check_preservable(model.config)
    n = len(model.blocks)
    sources = spec.sources(n)
    config = dataclasses.replace(model.config, blocks=2 * n)
    device = next(model.parameters()).device
    deeper = build_model(model.name, config, model.n_items).to(device)

    # Everything outside the blocks (embeddings, output layer, final norms) carries over by name.
    outside = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")}
    deeper.load_state_dict(outside, strict=False)
    for j, src in enumerate(sources):
        deeper.blocks[j].load_state_dict(model.blocks[src].state_dict())

    with torch.no_grad():
        if spec.function_preserving:
            seen: set[int] = set()
            for j, src in enumerate(sources):
                if src in seen:  # a copy: start as the identity
                    _zero_alphas(deeper.blocks[j])
                seen.add(src)
        else:
            for block in deeper.blocks:
                _zero_alphas(block)
                for module in block.modules():
                    if isinstance(module, nn.LayerNorm):
                        module.reset_parameters()
            deeper.reset_output_layer()
    deeper.train(model.training)
    return deeper


def _zero_alphas(block: nn.Module) -> None:
    for module in block.modules():
        if isinstance(module, ResidualScale) and isinstance(module.alpha, nn.Parameter):
            module.alpha.zero_()


def carry_optimizer_state(
    old: SequentialRecommender, old_state: dict[str, Any], new: SequentialRecommender, method: str
) -> dict[str, Any] | None:
    """Adam state for ``new``: each surviving parameter keeps its moments, copies start empty.

    Only function-preserving stacking carries state (the reference restarts the optimiser); for
    the paper-faithful methods this returns None.
    """
    if not get_method(method).function_preserving or not old_state:
        return None
    old_index = {name: i for i, (name, _) in enumerate(old.named_parameters())}
    n_old = len(old.blocks)
    state: dict[int, Any] = {}
    new_names = [name for name, _ in new.named_parameters()]
    for i, name in enumerate(new_names):
        if name.startswith("blocks.") and int(name.split(".")[1]) >= n_old:
            continue  # a copy (cross order puts the originals first): fresh moments
        source = old_index.get(name)
        if source is not None and source in old_state["state"]:
            state[i] = old_state["state"][source]
    groups = [dict(group, params=list(range(len(new_names)))) for group in old_state["param_groups"][:1]]
    return {"state": state, "param_groups": groups}
