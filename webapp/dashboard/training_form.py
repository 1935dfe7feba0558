"""The dataset page's training form: the settings a user changes most, as fields, over a JSON config.

The fields cover the keys people tune (model, depths, growth, budgets, learning rate, loss, split);
everything else stays reachable in the "advanced (JSON)" box, which the page script keeps equal to
the fields both ways. What is trained: a preset's configuration when a preset is picked (the page
script sends one only while the user has not edited anything), else the JSON box; then every field
that holds a value, over it. An empty field means "the default", so a field never pins a value the
user did not type. The trainer's own config classes judge the result, and an error is shown next to
the field it is about (the JSON box for keys without a field), in the words a user typed it in: the
ranges come from the trainer's bounds, so the form and the API refuse the same values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms

from trainer.configs import ConfigError, number_words
from trainer.models import MODELS
from trainer.schedule import DEFAULT_CEILING, GROW_MODES, NO_STACKING, START_BLOCKS, StackingSchedule
from trainer.stacking import METHODS
from trainer.training import TrainConfig
from webapp.dashboard import presets
from webapp.training.configs import SPLITS, job_config_build

MODEL_WORDS = {
    "nextitnet": "NextItNet: dilated causal convolutions (the StackRec paper's main model)",
    "grec": "GRec: NextItNet's encoder–decoder with gap filling",
    "sasrec": "SASRec: causal self-attention",
}
GROW_WORDS = {
    "auto": "auto: stack again only while a deeper stage beats its source by min_gain",
    "fixed": "fixed: every stage up to the maximum depth, as in the paper",
}
METHOD_WORDS = {
    "preserving": "function-preserving: copies start silent, so a stacked model begins where the shallow one "
    "stopped",
    "adjacent": "adjacent (paper): each block copied next to itself, 1 1 2 2 …",
    "cross": "cross (paper): the whole stack copied on top of itself, 1 … L 1 … L",
    NO_STACKING: "none: train the maximum depth from scratch (the baseline)",
}
LOSS_WORDS = {
    "full": "full softmax over the whole catalogue",
    "sampled": "sampled softmax: the target against sampled negatives (for large catalogues)",
}
SPLIT_WORDS = {
    "leave_one_out": "leave one out: each user's last item is the test case, the one before it validation",
    "time": "by time: the newest events are the test and validation cases",
}
assert set(METHOD_WORDS) == {*METHODS, NO_STACKING} and set(GROW_WORDS) == set(GROW_MODES)
assert set(MODEL_WORDS) == set(MODELS) and set(SPLIT_WORDS) == set(SPLITS)


@dataclass(frozen=True)
class ConfigField:
    """A form field and the configuration key it edits; ``scale`` converts the field's unit to the key's."""

    name: str
    key: str  # dotted: "train.lr"
    scale: float = 1.0

    def read(self, config: dict[str, Any]) -> Any:
        section, _, leaf = self.key.rpartition(".")
        holder = config.get(section) if section else config
        if not isinstance(holder, dict) or leaf not in holder:
            return None
        value = holder[leaf]
        if self.scale != 1 and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value / self.scale
        return value

    def write(self, config: dict[str, Any], value: Any) -> None:
        section, _, leaf = self.key.rpartition(".")
        holder = config
        if section:
            if not isinstance(config.get(section), dict):
                config[section] = {}
            holder = config[section]
        if value is None:
            holder.pop(leaf, None)
        else:
            holder[leaf] = value * self.scale if self.scale != 1 else value


CONFIG_FIELDS = (
    ConfigField("model", "model"),
    ConfigField("start_blocks", "schedule.start_blocks"),
    ConfigField("final_blocks", "schedule.final_blocks"),
    ConfigField("grow", "schedule.grow"),
    ConfigField("method", "schedule.method"),
    ConfigField("epochs", "train.epochs"),
    ConfigField("patience", "train.patience"),
    ConfigField("time_limit_min", "schedule.time_limit_s", scale=60.0),
    ConfigField("lr", "train.lr"),
    ConfigField("loss", "train.loss"),
    ConfigField("negatives", "train.negatives"),
    ConfigField("split", "split.split"),
)
FIELD_BY_KEY = {f.key: f for f in CONFIG_FIELDS}


def _choices(words: dict[str, str]) -> list[tuple[str, str]]:
    """A select's options: the short name before each sentence's colon (the sentence is the help line)."""
    return [("", "default"), *((value, text.split(":")[0]) for value, text in words.items())]


def _select(label: str, words: dict[str, str]) -> forms.ChoiceField:
    return forms.ChoiceField(
        required=False,
        label=label,
        choices=_choices(words),
        error_messages={"invalid_choice": f"%(value)r is not a {label}: choose one of the list"},
    )


def _explained(field: forms.ChoiceField, words: dict[str, str], default: str) -> None:
    """The help line says what the chosen option does; the page script swaps it as the choice changes."""
    field.widget.attrs["data-words"] = json.dumps({"": words[default] + " (the default)", **words})


def _number(kind: type, bound: Any, label: str, help_text: str, scale: float = 1.0) -> forms.Field:
    """A number field whose browser-side range is the trainer's bound (in the field's unit)."""
    field_cls = forms.IntegerField if kind is int else forms.FloatField
    attrs = {"min": number_words(bound.lo / scale), "max": number_words(bound.hi / scale)}
    if kind is float:
        attrs["step"] = "any"
    return field_cls(
        required=False,
        label=label,
        help_text=help_text,
        widget=forms.NumberInput(attrs=attrs),
        error_messages={"invalid": "a whole number, please" if kind is int else "a number, please"},
    )


_TRAIN_BOUNDS = TrainConfig.bounds()
_SCHEDULE_BOUNDS = StackingSchedule.bounds()
_TRAIN_DEFAULTS = TrainConfig()


class TrainingForm(forms.Form):
    """A training job for one dataset; :meth:`job_config` is the configuration to send to the service."""

    dataset = forms.IntegerField(widget=forms.HiddenInput)
    preset = forms.ChoiceField(
        required=False,
        label="preset",
        error_messages={"invalid_choice": "unknown preset %(value)r: pick one of the list"},
    )
    model = _select("model", MODEL_WORDS)
    start_blocks = _number(
        int,
        _SCHEDULE_BOUNDS["start_blocks"],
        "start depth (blocks)",
        "the shallow model the run begins with; default "
        + ", ".join(f"{m} {n}" for m, n in START_BLOCKS.items()),
    )
    final_blocks = _number(
        int,
        _SCHEDULE_BOUNDS["final_blocks"],
        "maximum depth (blocks)",
        "a ceiling when growth is auto; default " + ", ".join(f"{m} {n}" for m, n in DEFAULT_CEILING.items()),
    )
    grow = _select("growth", GROW_WORDS)
    method = _select("stacking method", METHOD_WORDS)
    epochs = _number(
        int,
        _TRAIN_BOUNDS["epochs"],
        "epochs",
        f"passes over the data per stage; default {_TRAIN_DEFAULTS.epochs}",
    )
    patience = _number(
        int,
        _TRAIN_BOUNDS["patience"],
        "patience",
        "validations without gain before a stage stops; 0 never stops early; "
        f"default {_TRAIN_DEFAULTS.patience}",
    )
    time_limit_min = _number(
        float,
        _SCHEDULE_BOUNDS["time_limit_s"],
        "time budget (minutes)",
        "for the whole run; the best model so far is kept when it runs out; empty or 0: none",
        scale=60.0,
    )
    lr = _number(
        float, _TRAIN_BOUNDS["lr"], "learning rate", f"Adam's step size; default {_TRAIN_DEFAULTS.lr:g}"
    )
    loss = _select("loss", LOSS_WORDS)
    negatives = _number(
        int,
        _TRAIN_BOUNDS["negatives"],
        "negatives",
        "sampled items per step for the sampled loss; default 0: 20 % of the catalogue",
    )
    split = _select("split", SPLIT_WORDS)
    config = forms.CharField(
        required=False,
        label="advanced (JSON)",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="the whole configuration; the fields above edit the same keys",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["preset"].choices = presets.preset_choices()
        if not self.is_bound:
            config = presets.preset_config(presets.DEFAULT_PRESET)
            self.initial = {
                **{f.name: f.read(config) for f in CONFIG_FIELDS},
                "preset": presets.DEFAULT_PRESET,
                "config": json.dumps(config, indent=2),
                **self.initial,
            }
        for name, words, default in (
            ("model", MODEL_WORDS, "nextitnet"),
            ("grow", GROW_WORDS, StackingSchedule.grow),
            ("method", METHOD_WORDS, StackingSchedule.method),
            ("loss", LOSS_WORDS, TrainConfig.loss),
            ("split", SPLIT_WORDS, "leave_one_out"),
        ):
            _explained(self.fields[name], words, default)
            # not self[name]: a bound field copies its help text when first made, before this line
            chosen = (self.data.get(name) if self.is_bound else self.initial.get(name)) or ""
            self.fields[name].help_text = json.loads(self.fields[name].widget.attrs["data-words"]).get(
                chosen, ""
            )
        for field in CONFIG_FIELDS:
            widget = self.fields[field.name].widget
            widget.attrs["data-key"] = field.key
            if field.scale != 1:
                widget.attrs["data-scale"] = number_words(field.scale)

    def clean_time_limit_min(self) -> float | None:
        """The budget's range in the field's unit (the trainer's bound is in seconds)."""
        minutes = self.cleaned_data.get("time_limit_min")
        bound = _SCHEDULE_BOUNDS["time_limit_s"]
        if minutes is not None and not bound.contains(minutes * 60):
            raise forms.ValidationError(
                f"must be between 0 and {bound.hi / 60:,.0f} minutes (30 days); 0 means none"
            )
        return minutes

    def job_config(self) -> dict[str, Any] | None:
        """The configuration to train with, or ``None`` with the errors added to their fields."""
        if not self.is_valid():
            return None
        values = self.cleaned_data
        preset = values.get("preset") or presets.CUSTOM
        config = presets.preset_config(preset) if preset in presets.PRESETS else self._typed_config()
        if config is None:
            return None
        for field in CONFIG_FIELDS:
            value = values.get(field.name)
            if value not in (None, ""):
                field.write(config, value)
        try:
            job_config_build(config)
        except ConfigError as exc:
            self.add_config_error(exc)
            return None
        return config

    def _typed_config(self) -> dict[str, Any] | None:
        """The JSON box as an object (empty: ``{}``), or ``None`` with the reason beside the box."""
        text = (self.cleaned_data.get("config") or "").strip()
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            self.add_error("config", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
            return None
        if not isinstance(value, dict):
            self.add_error("config", "the configuration must be a JSON object: {…}")
            return None
        return value

    def focus_first_error(self) -> None:
        """Autofocus the first field in error, so the page comes back scrolled to it (the non-field
        errors sit above the first field); without the fragment a form action would carry into the
        new job's URL."""
        names = [name for name in self.fields if name in self.errors] or ["model"]
        self.fields[names[0]].widget.attrs["autofocus"] = True

    def add_config_error(self, exc: ConfigError) -> None:
        """``exc`` next to the field it is about (its key without the section prefix), else by the JSON."""
        field = FIELD_BY_KEY.get(exc.key or "")
        if field is None:
            self.add_error("config", str(exc))
            return
        self.add_error(field.name, str(exc).removeprefix(f"{exc.key} "))


def training_form_for(dataset: Any) -> TrainingForm:
    """The empty form for ``dataset``: the default preset's values in the fields and the JSON box."""
    return TrainingForm(initial={"dataset": dataset.pk})
