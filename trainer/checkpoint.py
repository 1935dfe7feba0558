"""Checkpoints that rebuild a model and resume its training.

A checkpoint is a plain dict of tensors and JSON-like values, so ``torch.load(weights_only=True)``
reads it without unpickling arbitrary objects. It holds everything needed to rebuild: the model's
name and config, the item vocabulary, the training config, the model (and optimiser) state, and
the loop's progress. Files are written under a temporary name and renamed, so a crash mid-write
never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.data.types import Vocabulary
from trainer.models import build_model, model_config
from trainer.models.base import SequentialRecommender

SCHEMA_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the code reading it."""


@dataclass
class Checkpoint:
    model: SequentialRecommender
    vocab: Vocabulary
    train_config: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    progress: dict[str, Any] = field(default_factory=dict)  # step, epoch, history, best, …
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the stacking schedule's stage list


def save_checkpoint(
    path: str | Path,
    *,
    model: SequentialRecommender,
    vocab: Vocabulary,
    train_config: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    progress: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temp file + rename) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "model_name": model.name,
        "model_config": model.config.to_dict(),
        "n_items": model.n_items,
        "vocab": list(vocab.raw_ids),
        "train_config": dict(train_config),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "progress": progress or {},
        "extra": extra or {},
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild the model (on ``device``) and return it with everything else the file holds."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CheckpointError(f"checkpoint {path} has schema {version}, this code reads {SCHEMA_VERSION}")
    config = model_config(payload["model_name"], payload["model_config"])
    model = build_model(payload["model_name"], config, payload["n_items"]).to(device)
    model.load_state_dict(payload["model_state"])
    return Checkpoint(
        model=model,
        vocab=Vocabulary(tuple(payload["vocab"])),
        train_config=payload["train_config"],
        optimizer_state=payload["optimizer_state"],
        progress=payload["progress"],
        extra=payload["extra"],
    )
