"""Moving a trained network to another item catalogue.

- :func:`remap_items` — the same catalogue, grown (continual learning: new items arrived): rows
  of items the model knew are carried over by raw id, new items start fresh.
- :func:`transfer_blocks` — a different catalogue (transfer learning): only what does not depend
  on items (the residual blocks, position embeddings, final norms) is carried; the item
  embedding and output layer are new.
"""

from __future__ import annotations

import numpy as np
import torch

from trainer.data.types import Vocabulary
from trainer.models import build_model
from trainer.models.base import SequentialRecommender

ITEM_PARAMETERS = ("item_embedding.weight", "output_weight", "output_bias")


def remap_items(model: SequentialRecommender, old: Vocabulary, new: Vocabulary) -> SequentialRecommender:
    """A copy of ``model`` over vocabulary ``new``; known items keep their learned rows."""
    if old == new:
        return model
    fresh = build_model(model.name, model.config, new.n_items).to(next(model.parameters()).device)
    old_index = old.index_map()
    # new index → old index (0 = unknown to the old model)
    mapping = np.array([0, *(old_index.get(raw, 0) for raw in new.raw_ids)], dtype=np.int64)
    known_new = torch.from_numpy(np.flatnonzero(mapping))
    known_old = torch.from_numpy(mapping[mapping > 0])
    state = model.state_dict()
    target = fresh.state_dict()
    for name, value in state.items():
        if name in ITEM_PARAMETERS:
            target[name][known_new] = value[known_old]
        else:
            target[name] = value
    fresh.load_state_dict(target)
    return fresh


def transfer_blocks(model: SequentialRecommender, n_items: int) -> SequentialRecommender:
    """A model for another catalogue of ``n_items`` that starts from ``model``'s item-free weights."""
    fresh = build_model(model.name, model.config, n_items).to(next(model.parameters()).device)
    carried = {k: v for k, v in model.state_dict().items() if k not in ITEM_PARAMETERS}
    fresh.load_state_dict(carried, strict=False)
    return fresh
