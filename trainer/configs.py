"""Typed configuration: dataclasses that refuse keys they do not know.

A web form, a JSON job spec and the CLI all end up here; rejecting unknown keys with the list of
valid ones turns a typo ("lerning_rate") into a clear error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class ConfigError(ValueError):
    """A configuration value or key that cannot be used, with the reason in words."""


class ConfigMixin:
    """``from_dict``/``to_dict`` for flat dataclass configs."""

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
