"""Sequential recommenders sharing one interface (see :mod:`trainer.models.base`)."""

from __future__ import annotations

from typing import Any

from trainer.configs import ConfigError
from trainer.models.base import GAP, ModelConfig, SequentialRecommender
from trainer.models.grec import GRec, GRecConfig
from trainer.models.nextitnet import NextItNet, NextItNetConfig
from trainer.models.sasrec import SASRec, SASRecConfig

MODELS: dict[str, type[SequentialRecommender]] = {
    NextItNet.name: NextItNet,
    GRec.name: GRec,
    SASRec.name: SASRec,
}


def model_config(name: str, options: dict[str, Any] | None = None) -> ModelConfig:
    """The config dataclass of model ``name`` from plain options (unknown keys rejected)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name].config_cls.from_dict(options)


def build_model(name: str, config: ModelConfig, n_items: int) -> SequentialRecommender:
    """A freshly initialised model."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](config, n_items)


__all__ = [
    "GAP",
    "MODELS",
    "GRec",
    "GRecConfig",
    "ModelConfig",
    "NextItNet",
    "NextItNetConfig",
    "SASRec",
    "SASRecConfig",
    "SequentialRecommender",
    "build_model",
    "model_config",
]
