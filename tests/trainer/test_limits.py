"""Bounded runs: every numeric setting has a range the CLI and the web app enforce alike, the table in
docs/limits.md is the code's, and a run's wall-time limit ends it with the best model so far."""

from __future__ import annotations

import dataclasses
import math
import re
import time
import typing

import pytest

from tests.conftest import REPO
from tests.trainer.test_training import toy_split
from trainer.cli import LIMITED_CONFIGS, limits_table, main
from trainer.configs import ConfigError
from trainer.export import ExportConfig
from trainer.models import model_config
from trainer.runs import DataSpec
from trainer.schedule import StackingSchedule, TimeLimitError, duration_words, run_schedule
from trainer.training import TrainConfig

MODEL = model_config("nextitnet", {"embedding_dim": 16})


def test_every_numeric_setting_has_a_range_with_a_reason():
    for cls, _ in LIMITED_CONFIGS:
        hints = typing.get_type_hints(cls)
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if hints[f.name] in (int, float) or typing.get_origin(hints[f.name]) is tuple
        }
        bounds = cls.bounds()
        assert set(defaults) <= set(bounds), (
            f"{cls.__name__}: no range for {sorted(set(defaults) - set(bounds))}"
        )
        for name, default in defaults.items():
            assert bounds[name].why, f"{cls.__name__}.{name} has no reason"
            values = default if isinstance(default, tuple) else (default,)
            assert all(bounds[name].contains(v) for v in values), f"{cls.__name__}.{name}'s default"


BUILDERS = {
    "train": TrainConfig.from_dict,
    "schedule": StackingSchedule.from_dict,
    "export": ExportConfig.from_dict,
    "split": lambda data: DataSpec(path="x", **data),
    "nextitnet": lambda data: model_config("nextitnet", data),
    "grec": lambda data: model_config("grec", data),
    "sasrec": lambda data: model_config("sasrec", data),
}


@pytest.mark.parametrize(
    ("config", "data", "message"),
    [
        ("train", {"epochs": 10**12}, "train.epochs must be between 1 and 1000, got 1000000000000"),
        # JSON's 1e12 is a float: refused as one, with the range
        ("train", {"epochs": 1e12},
         "train.epochs must be a whole number between 1 and 1000, got 1000000000000.0"),
        ("train", {"epochs": 3.0}, "train.epochs must be a whole number between 1 and 1000, got 3.0"),
        ("train", {"batch_size": True},
         "train.batch_size must be a whole number between 1 and 8192, got true"),
        ("train", {"lr": math.nan}, "train.lr must be a finite number greater than 0 and at most 1, got nan"),
        ("train", {"lr": -math.inf},
         "train.lr must be a finite number greater than 0 and at most 1, got -inf"),
        ("train", {"lr": "0.1"}, "train.lr must be a number greater than 0 and at most 1, got '0.1'"),
        ("train", {"max_steps": 10**8}, "train.max_steps must be between 0 and 10,000,000, got 100000000"),
        ("train", {"bucket": 1}, "train.bucket must be true or false, got 1"),
        ("nextitnet", {"embedding_dim": 10**7},
         "model_options.embedding_dim must be between 8 and 1024, got 10000000"),
        ("nextitnet", {"dilations": [1, 2.5]},
         "each of model_options.dilations must be a whole number between 1 and 256, got 2.5"),
        ("nextitnet", {"dropout": 1}, "model_options.dropout must be at least 0 and below 1, got 1"),
        ("sasrec", {"heads": 0}, "model_options.heads must be between 1 and 64, got 0"),
        ("grec", {"mask_share": 0}, "model_options.mask_share must be greater than 0 and at most 1, got 0"),
        ("schedule", {"final_blocks": 1000}, "schedule.final_blocks must be between 1 and 128, got 1000"),
        ("schedule", {"time_limit_s": -1}, "schedule.time_limit_s must be between 0 and 2,592,000, got -1"),
        ("export", {"max_k": 10**6}, "export.max_k must be between 1 and 1000, got 1000000"),
        ("split", {"test_share": 1.0}, "split.test_share must be strictly between 0 and 1, got 1"),
    ],
)  # fmt: skip
def test_a_value_out_of_range_is_refused_naming_the_field_the_value_and_the_range(config, data, message):
    with pytest.raises(ConfigError) as excinfo:
        BUILDERS[config](data)
    assert str(excinfo.value) == message


def test_accepted_values_are_kept_as_their_type():
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)
    assert model_config("nextitnet", {"dilations": [1, 2, 4]}).dilations == (1, 2, 4)
    assert TrainConfig(epochs=1000, batch_size=8192, max_len=1024).epochs == 1000  # the ends are in range


def test_the_limits_table_in_the_docs_is_the_codes():
    doc = (REPO / "docs" / "limits.md").read_text()
    found = re.search(r"<!-- ranges: .*? -->\n(.*?)<!-- end of ranges -->", doc, re.S)
    assert found, "docs/limits.md lost its generated block"
    assert found.group(1) == limits_table(), "regenerate it: python -m trainer limits"


def test_the_cli_refuses_out_of_range_values_before_reading_any_data(capsys):
    for flags, words in (
        (["--epochs", "1000000000000"], "train.epochs must be between 1 and 1000, got 1000000000000"),
        (["--dim", "10000000"], "model_options.embedding_dim must be between 8 and 1024, got 10000000"),
        (["--lr", "nan"], "train.lr must be a finite number greater than 0 and at most 1, got nan"),
        (["--blocks", "4096"], "schedule.final_blocks must be between 1 and 128, got 4096"),
        (["--time-limit", "-5"], "schedule.time_limit_s must be between 0 and 2,592,000, got -5"),
    ):
        assert main(["train", "--data", "never-read.csv", *flags]) == 2
        assert words in capsys.readouterr().err


def test_the_wall_time_limit_ends_the_run_with_the_best_model_so_far():
    split = toy_split()
    config = TrainConfig(epochs=1000, batch_size=16, lr=5e-3, patience=0, device="cpu", threads=1)
    # Stage 1 ends after 5 steps (a process's first step alone may take a second); stage 2 would
    # train 1000 epochs, a minute: the limit cuts whichever stage is training when it comes.
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, grow="fixed", stage_steps=5, time_limit_s=2.0)
    started = time.perf_counter()
    result = run_schedule("nextitnet", MODEL, split, config, schedule)
    took = time.perf_counter() - started
    assert result.time_limited and not result.cancelled
    assert took < 6
    assert result.stages[-1].stopped_by == "time_limit"
    assert all(s.stopped_by == "max_steps" for s in result.stages[:-1])
    assert result.growth.startswith("stopped at the wall-time limit of 2 s; kept the best model so far")
    assert result.kept.best and len(result.model.blocks) == result.kept.blocks


def test_a_limit_reached_before_any_stage_was_validated_is_an_error_not_a_model():
    schedule = StackingSchedule(start_blocks=1, final_blocks=2, time_limit_s=1e-9)
    with pytest.raises(TimeLimitError, match="stopped at the wall-time limit of 1e-09 s before any stage"):
        run_schedule("nextitnet", MODEL, toy_split(), TrainConfig(device="cpu"), schedule)


def test_durations_read_as_a_person_says_them():
    seconds = (0.5, 40, 25 * 60, 2 * 3600, 5400, 3 * 86400, 690 * 86400)
    assert [duration_words(s) for s in seconds] == [
        "0.5 s",
        "40 s",
        "25 min",
        "2 h",
        "1.5 h",
        "3 days",
        "690 days",
    ]
