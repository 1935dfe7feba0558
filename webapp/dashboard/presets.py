"""Job configurations the training form offers by name; "custom" sends the JSON typed in the form.

The two presets share the model and training settings, so a StackRec run and a scratch run of the
same dataset are the pair the compare page measures (same final depth, same budget per stage).
"""

from __future__ import annotations

import copy
import json
from typing import Any

CUSTOM = "custom"

_TRAIN = {"epochs": 20, "patience": 3, "batch_size": 64, "lr": 0.001, "device": "auto"}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "stackrec": (
        "StackRec 2→4→8 (adjacent)",
        {
            "model": "nextitnet",
            "schedule": {"start_blocks": 2, "final_blocks": 8, "method": "adjacent", "stage_patience": 2},
            "train": _TRAIN,
        },
    ),
    "scratch": (
        "from scratch, 8 blocks",
        {"model": "nextitnet", "schedule": {"final_blocks": 8, "method": "none"}, "train": _TRAIN},
    ),
}
DEFAULT_PRESET = "stackrec"


def preset_config(name: str) -> dict[str, Any]:
    """A copy of the named preset's configuration (callers may change it)."""
    return copy.deepcopy(PRESETS[name][1])


def preset_choices() -> list[tuple[str, str]]:
    """``(value, label)`` pairs for the form's select, custom last."""
    return [(name, label) for name, (label, _) in PRESETS.items()] + [(CUSTOM, "custom: the JSON below")]


def preset_json() -> dict[str, str]:
    """Each preset as indented JSON, for the page script that shows it in the text box."""
    return {name: json.dumps(config, indent=2) for name, (_, config) in PRESETS.items()}
