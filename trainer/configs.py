"""Typed configuration: dataclasses that refuse keys they do not know and numbers out of range.

A web form, a JSON job spec and the CLI all end up here; rejecting unknown keys with the list of
valid ones turns a typo ("lerning_rate") into a clear error instead of a silently ignored setting.

Every numeric field of a config carries a :class:`Bound` in its class's ``BOUNDS`` table (a
subclass adds to its parents'), and :meth:`ConfigMixin.__post_init__` checks every field against
its annotation and bound before the class's own checks run: a float where a whole number is meant,
a boolean given as a number, NaN or infinity, and a value outside the range are refused with the
field, the value and the range ("train.epochs must be between 1 and 1000, got 1000000000000"). The
bounds live on the trainer's dataclasses, so the CLI and the web app refuse the same values, and
``python -m trainer limits`` prints them as the table in docs/limits.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Self


class ConfigError(ValueError):
    """A configuration value or key that cannot be used, with the reason in words."""

    @property
    def key(self) -> str | None:
        """The dotted field the message is about (``train.epochs``), or ``None`` for a whole section.

        Every field check names its field first (:meth:`ConfigMixin.label`), so a form can put the
        message beside the field without a second channel for it.
        """
        match = _LEADING_KEY.match(str(self))
        return match.group(1) if match else None


_LEADING_KEY = re.compile(r"(?:each of )?([a-z_]+\.[a-z_]+)\b")


def number_words(value: float, *, grouped: bool = False) -> str:
    """A number as a user wrote it: ``1000`` not ``1000.0``, ``0.001``, ``1e+12``; ``grouped``
    writes large whole numbers with thousands separators (``10,000,000``), as the ranges are shown."""
    if isinstance(value, bool):
        return str(value).lower()
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        whole = int(value)
        return f"{whole:,}" if grouped and abs(whole) >= 10_000 else str(whole)
    return f"{value:.6g}"


@dataclass(frozen=True)
class Bound:
    """The range a numeric field accepts, inclusive unless ``lo_open``/``hi_open``, and why."""

    lo: float
    hi: float
    why: str
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def words(self) -> str:
        """The range in words: between 1 and 1000, greater than 0 and at most 1, at least 0 and below 1."""
        lo, hi = number_words(self.lo, grouped=True), number_words(self.hi, grouped=True)
        if self.lo_open and self.hi_open:
            return f"strictly between {lo} and {hi}"
        if self.lo_open:
            return f"greater than {lo} and at most {hi}"
        if self.hi_open:
            return f"at least {lo} and below {hi}"
        return f"between {lo} and {hi}"

    def interval(self) -> str:
        """The range in interval notation for the limits table: ``[1, 1000]``, ``(0, 1]``."""
        lo, hi = number_words(self.lo, grouped=True), number_words(self.hi, grouped=True)
        return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"

    def check(self, label: str, value: Any, kind: type = float) -> Any:
        """``value`` if it is a ``kind`` (int or float) inside the range; :class:`ConfigError` otherwise."""
        whole = kind is int
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (whole and not isinstance(value, int)):
            what = "a whole number" if whole else "a number"
            shown = str(value).lower() if isinstance(value, bool) else repr(value)  # a float shows its point
            raise ConfigError(f"{label} must be {what} {self.words()}, got {shown}")
        if not whole and not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number {self.words()}, got {value}")
        if not self.contains(value):
            raise ConfigError(f"{label} must be {self.words()}, got {number_words(value)}")
        return value if whole else float(value)


def between(lo: float, hi: float, why: str, *, lo_open: bool = False, hi_open: bool = False) -> Bound:
    return Bound(lo, hi, why, lo_open, hi_open)


class ConfigMixin:
    """``from_dict``/``to_dict`` for flat dataclass configs, and the type and range check of every field."""

    # The key a job configuration holds this config under ("train"): error messages name the field
    # as ``section.field``, the way a user writes it.
    section: ClassVar[str] = ""
    BOUNDS: ClassVar[dict[str, Bound]] = {}

    def __post_init__(self) -> None:
        """Check each field against its annotation and bound (subclasses call this first)."""
        bounds = type(self).bounds()
        for name, kind in _field_kinds(type(self)).items():
            value = getattr(self, name)
            checked = _check_value(self.label(name), kind, value, bounds.get(name))
            if checked is not value:
                object.__setattr__(self, name, checked)  # 1 → 1.0 for a float, a list → a tuple

    @classmethod
    def bounds(cls) -> dict[str, Bound]:
        """Every field's bound, the class's own over its parents'."""
        merged: dict[str, Bound] = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("BOUNDS", {}))
        return merged

    @classmethod
    def label(cls, name: str) -> str:
        return f"{cls.section}.{name}" if cls.section else name

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Self:
        """Build from a plain dict; unknown keys raise :class:`ConfigError` naming the valid ones."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()  # type: ignore[call-overload]
        }


@functools.cache
def _field_kinds(cls: type) -> dict[str, Any]:
    """Each dataclass field's annotation, resolved (the modules use postponed annotations)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_value(label: str, kind: Any, value: Any, bound: Bound | None) -> Any:
    """``value`` checked against the annotation ``kind`` (and ``bound``), possibly converted."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {value!r}")
        return value
    if kind in (int, float):
        if bound is None:  # every numeric field has a bound; a test checks it
            return value
        return bound.check(label, value, kind)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be a string, got {value!r}")
        return value
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[:1] == (int,):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label} must be a list of whole numbers, got {value!r}")
        items = tuple(value)
        if bound is not None:
            for item in items:
                bound.check(f"each of {label}", item, int)
        elif any(isinstance(i, bool) or not isinstance(i, int) for i in items):
            raise ConfigError(f"{label} must be a list of whole numbers, got {value!r}")
        return items
    return value  # unions, dicts: the class's own checks
