"""Template filters of the dashboard: metric lookups (keys such as "ndcg@10"), counts, durations, times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

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
def thousands(value: Any) -> Any:
    """A count with thousands separators ("1,234,567"): event counts, steps, bytes.

    Whole numbers only (a float that is one, e.g. a count read back from JSON); anything else,
    including "" and None, is returned as it is, so ``default`` filters still apply after it.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else value


@register.filter
def when(value: Any) -> SafeString | str:
    """A moment as ``<time datetime="…">2026-12-01 13:05 UTC</time>``: the site's time zone named, the
    exact instant for machines, and how long ago as the tooltip."""
    if not isinstance(value, datetime):
        return "–"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    shown = local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")
    ago = f"{timesince(value)} ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), ago, shown.strip())


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
    """A log's Unix timestamp (seconds or milliseconds) as a date and time named UTC; other numbers as they
    are. Always UTC (not the site's zone): a log's times belong to the log, wherever it was recorded."""
    if value is None or value == "":
        return "–"
    number = float(value)
    for scale in (1, 1000):  # 1973-03 … 2100-01 in seconds, then in milliseconds
        if 1e8 * scale <= number <= 4.1e9 * scale:
            return datetime.fromtimestamp(number / scale, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(int(number)) if number.is_integer() else f"{number:g}"
