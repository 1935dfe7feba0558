"""Template filters of the dashboard: metric lookups (keys such as "ndcg@10"), durations, timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def metric(values: Any, name: str) -> Any:
    """``values[name]`` for dicts whose keys the template language cannot spell; "" when absent."""
    if not isinstance(values, dict):
        return ""
    value = values.get(name)
    return "" if value is None else value


@register.filter
def to_json(value: Any) -> str:
    """A value as JSON text (e.g. read options in a text box, ready to edit and send back)."""
    return json.dumps(value)


@register.filter
def seconds(value: Any) -> str:
    """A duration in seconds as people read it: "0.8 s", "38 s", "4 min 12 s", "2 h 05 min"."""
    if value is None or value == "":
        return "–"
    s = float(value)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


@register.filter
def unix_time(value: Any) -> str:
    """A log's Unix timestamp (seconds or milliseconds) as a UTC date and time; other numbers as they are."""
    if value is None or value == "":
        return "–"
    number = float(value)
    for scale in (1, 1000):  # 1973-03 … 2100-01 in seconds, then in milliseconds
        if 1e8 * scale <= number <= 4.1e9 * scale:
            return datetime.fromtimestamp(number / scale, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return str(int(number)) if number.is_integer() else f"{number:g}"
