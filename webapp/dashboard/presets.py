"""Job configurations the training form offers by name; "custom" sends the JSON typed in the form.

The default grows automatically and exports the best stage; the paper's fixed schedule and the
scratch run share the model and training settings and the final depth, so they are the pair the
compare page measures. Whatever a run exports still passes the promotion gate before it serves.
"""

from __future__ import annotations

import copy
import json
from typing import Any

CUSTOM = "custom"

_TRAIN = {"epochs": 20, "patience": 3, "batch_size": 64, "lr": 0.001, "device": "auto"}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "auto": (
        "StackRec, grows while it pays (default): 2 → at most 16 blocks, function-preserving",
        {
            "model": "nextitnet",
            "schedule": {"start_blocks": 2, "final_blocks": 16, "method": "preserving", "grow": "auto"},
            "train": _TRAIN,
        },
    ),
    "paper": (
        "StackRec as in the paper: 2 → 4 → 8 blocks, adjacent stacking, every stage",
        {
            "model": "nextitnet",
            "schedule": {"start_blocks": 2, "final_blocks": 8, "method": "adjacent", "grow": "fixed"},
            "train": _TRAIN,
        },
    ),
    "scratch": (
        "from scratch, 8 blocks",
        {"model": "nextitnet", "schedule": {"final_blocks": 8, "method": "none"}, "train": _TRAIN},
    ),
}
DEFAULT_PRESET = "auto"


def preset_config(name: str) -> dict[str, Any]:
    """A copy of the named preset's configuration (callers may change it)."""
    return copy.deepcopy(PRESETS[name][1])


def preset_choices() -> list[tuple[str, str]]:
    """``(value, label)`` pairs for the form's select, custom last."""
    return [(name, label) for name, (label, _) in PRESETS.items()] + [
        (CUSTOM, "custom: the fields and the JSON below")
    ]


def preset_json() -> dict[str, str]:
    """Each preset as indented JSON, for the page script that shows it in the text box."""
    return {name: json.dumps(config, indent=2) for name, (_, config) in PRESETS.items()}
