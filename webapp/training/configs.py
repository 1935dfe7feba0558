"""A training job's configuration: plain JSON validated by building the trainer's own config objects.

::

    {
      "model": "nextitnet",                      # nextitnet | grec | sasrec
      "model_options": {"embedding_dim": 64},    # the model's config fields, except blocks
      "schedule": {"start_blocks": 2, "final_blocks": 16,  # start: 2 (SASRec 1); final: a ceiling
                   "method": "preserving",               # preserving | adjacent | cross | none
                   "grow": "auto",                       # auto: stack while a stage gains min_gain
                   "min_gain": 0.01, "keep": "best",     # keep: best over all stages | final
                   "stage_epochs": 0, "stage_steps": 0, "stage_patience": 2},
      "train": {"epochs": 30, "patience": 5, "batch_size": 64, "lr": 0.001, "device": "auto", ...,
                "gpus": 1},                        # > 1: one process per GPU (DDP), on one worker's host
      "split": {"split": "leave_one_out", "test_share": 0.1, "valid_share": 0.1},
      "export": {"max_k": 100, ...},
      "warm_start": false                        # start from the parent dataset's active version
    }

Every section is optional; unknown keys anywhere are rejected with the list of valid ones, and every
number must lie in its range (docs/limits.md; the trainer's config classes hold the ranges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainer.configs import ConfigError
from trainer.export import ExportConfig
from trainer.models import MODELS, model_config
from trainer.models.base import ModelConfig
from trainer.runs import DataSpec
from trainer.schedule import DEFAULT_CEILING, NO_STACKING, START_BLOCKS, StackingSchedule
from trainer.stacking import stackable_options
from trainer.training import TrainConfig

SECTIONS = ("model", "model_options", "schedule", "train", "split", "export", "warm_start")
SPLITS = ("leave_one_out", "time")  # the sessions split needs a second file, which uploads do not carry
SPLIT_KEYS = ("split", "test_share", "valid_share")


@dataclass(frozen=True)
class JobConfig:
    model: str
    model_config: ModelConfig
    schedule: StackingSchedule
    train: TrainConfig
    split: dict[str, Any]
    export: ExportConfig
    warm_start: bool

    def to_dict(self) -> dict[str, Any]:
        """The complete configuration with every default filled in (what the job row stores)."""
        options = self.model_config.to_dict()
        options.pop("blocks")
        return {
            "model": self.model,
            "model_options": options,
            "schedule": self.schedule.to_dict(),
            "train": self.train.to_dict(),
            "split": dict(self.split),
            "export": self.export.to_dict(),
            "warm_start": self.warm_start,
        }


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def job_config_build(data: Any) -> JobConfig:
    """Validate ``data`` by building the trainer's configs; :class:`ConfigError` says what is wrong."""
    if not isinstance(data, dict):
        raise ConfigError(f"the job configuration must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SECTIONS)}")
    model = data.get("model", "nextitnet")
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    schedule_data = _section(data, "schedule")
    schedule_data.setdefault("final_blocks", DEFAULT_CEILING[model])
    if "start_blocks" not in schedule_data:
        final = schedule_data["final_blocks"]
        stacking = schedule_data.get("method") != NO_STACKING
        start = START_BLOCKS[model] if stacking else final
        schedule_data["start_blocks"] = min(start, final) if isinstance(final, int) else start
    schedule = StackingSchedule.from_dict(schedule_data)
    options = _section(data, "model_options")
    if "blocks" in options:
        raise ConfigError("model_options.blocks is set by the schedule: use schedule.final_blocks")
    options = stackable_options(model, options, schedule.method)
    built_model = model_config(model, {**options, "blocks": schedule.final_blocks})
    train = TrainConfig.from_dict(_section(data, "train"))
    split = _section(data, "split")
    unknown = sorted(set(split) - set(SPLIT_KEYS))
    if unknown:
        raise ConfigError(f"split: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPLIT_KEYS)}")
    split = {"split": "leave_one_out", "test_share": 0.1, "valid_share": 0.1, **split}
    if split["split"] not in SPLITS:
        raise ConfigError(f"split.split must be one of {', '.join(SPLITS)}, got {split['split']!r}")
    for name, bound in DataSpec.bounds().items():  # the trainer's own ranges for the split's shares
        split[name] = bound.check(DataSpec.label(name), split[name])
    export = ExportConfig.from_dict(_section(data, "export"))
    warm_start = data.get("warm_start", False)
    if not isinstance(warm_start, bool):
        raise ConfigError(f"warm_start must be true or false, got {warm_start!r}")
    if warm_start and schedule.method == NO_STACKING:
        raise ConfigError("warm_start stacks the deployed model deeper; choose a stacking method")
    return JobConfig(model, built_model, schedule, train, split, export, warm_start)
