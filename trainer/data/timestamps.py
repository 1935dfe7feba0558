"""A time column → unix seconds, refusing (or dropping) times that no real log holds.

Events are ordered by their time, so one wrong value silently moves an event: a negative time puts
it first in its sequence, a value in nanoseconds among seconds puts it last (a tester's log read
"-1600020007 – 1600020006000000000" as its time range). Times are therefore checked once parsed:

* every time lies from 1970-01-01 to 2100-01-01 (UTC), i.e. 0 ≤ unix seconds < 4,102,444,800;
* a numeric column is in one unit. The unit is read from magnitudes: a value below 4.1e9 is
  seconds, below 4.1e12 milliseconds, below 4.1e15 microseconds, below 4.1e18 nanoseconds (each
  the year 2100 in that unit). The unit most values have is the column's; a column entirely in
  milliseconds, microseconds or nanoseconds is converted to seconds (and the log says so), while a
  value of another unit than the rest — a second beside milliseconds — is an error, because no
  conversion can place both correctly.

Implausible and unreadable times are an error naming a few lines and values, or, with
``ReadOptions.bad_timestamps="drop"``, their events are dropped and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from trainer.data.messages import MAX_EXAMPLES, MESSAGE_MAX_CHARS, quote
from trainer.data.types import DataError

log = logging.getLogger(__name__)

LATEST = 4_102_444_800.0  # 2100-01-01T00:00:00Z in unix seconds; the earliest is 0 (1970)
UNITS = (("seconds", 1.0), ("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9))
_DATE_ROUNDS = 3  # how many distinct date formats one column may mix (e.g. dates and datetimes)
_FIX = "fix them, or set bad_timestamps='drop' to drop those events"


@dataclass(frozen=True)
class TimeColumn:
    """A parsed time column: seconds per event, which events' times are bad, and the unit read."""

    seconds: np.ndarray  # float64 unix seconds, NaN where bad
    bad: np.ndarray  # bool: unreadable or implausible (only ever True under bad_timestamps="drop")
    unit: str  # "seconds", "milliseconds", "microseconds", "nanoseconds", or "dates"


def read_times(
    values: pl.Series, lines: pl.Series, *, source: str, column: str, where: str, bad_timestamps: str
) -> TimeColumn:
    """Text, numeric or temporal column → unix seconds, checked as the module docstring says.

    The first value decides the kind: numeric columns must be numeric throughout (a stray word is
    reported with its line); otherwise values are parsed as ISO dates/datetimes, allowing a few
    formats in one column (e.g. ``2020-01-01`` beside ``2020-01-01T10:00:00Z``). Naive datetimes are
    taken as UTC.
    """
    numbers, unreadable, kind = _parse(values, source, column)
    at = _Where(values, lines, where)
    if unreadable.any() and bad_timestamps == "error":
        i = int(np.flatnonzero(unreadable)[0])
        if kind == "numbers":
            first = quote(values[0])
            why = f"is not a number (the column's first value {first} is numeric, so all values must be)"
        else:
            why = (
                "is neither a number (unix seconds) nor an ISO date/datetime such as 2020-01-31 or "
                "2020-01-31T12:00:00"
            )
        more = int(unreadable.sum()) - 1
        raise DataError(
            f"{source}, {at.line(i)}: timestamp {at.value(i)} in column {quote(column)} {why}"
            + (f"; {more:,} more such values" if more else "")
            + "; fix them, or set bad_timestamps='drop' to drop their events"
        )
    if kind == "numbers":
        unit, factor, reasons = _unit_of(numbers, ~unreadable)
        seconds = numbers / factor
    else:
        unit, seconds = "dates", numbers
        reasons = np.where(seconds < 0, 1, np.where(seconds >= LATEST, 2, 0))
        reasons[unreadable] = 0
    implausible = reasons > 0
    if implausible.any() and bad_timestamps == "error":
        raise DataError(_implausible_message(reasons, numbers, unit, at, source, column))
    if unit not in ("seconds", "dates"):
        log.info("%s: time column %s is in %s; converted to seconds", source, column, unit)
    bad = unreadable | implausible
    return TimeColumn(seconds=np.where(bad, np.nan, seconds), bad=bad, unit=unit)


# Why a time is implausible: 0 fine, 1 before 1970, 2 after 2100, 3 + k: in unit k, unlike the column.
def _unit_of(numbers: np.ndarray, readable: np.ndarray) -> tuple[str, float, np.ndarray]:
    """The column's unit (that of most plausible values), its factor, and a reason code per value."""
    bounds = np.array([LATEST * factor for _, factor in UNITS])
    with np.errstate(invalid="ignore"):
        cls = np.searchsorted(bounds, np.where(readable, numbers, 0), side="right")
        negative = readable & (numbers < 0)
    usable = readable & ~negative & (cls < len(UNITS))
    counts = np.bincount(cls[usable], minlength=len(UNITS))
    unit = int(counts.argmax()) if usable.any() else 0
    reasons = np.zeros(len(numbers), dtype=np.int64)
    reasons[usable & (cls != unit)] = 3 + cls[usable & (cls != unit)]
    reasons[readable & (cls >= len(UNITS))] = 2
    reasons[negative] = 1
    name, factor = UNITS[unit]
    return name, factor, reasons


def _implausible_message(
    reasons: np.ndarray, numbers: np.ndarray, unit: str, at: _Where, source: str, column: str
) -> str:
    """What is wrong, with as many of the first bad values (grouped by reason) as fit the bound."""
    bad = np.flatnonzero(reasons)
    groups: dict[str, list[str]] = {}
    for i in bad[: MAX_EXAMPLES * 4]:
        reason = _reason_text(int(reasons[i]), numbers[i], unit)
        groups.setdefault(reason, []).append(f"{at.line(int(i))} {at.value(int(i))}")
    verb = "is" if len(bad) == 1 else "are"
    for limit in range(MAX_EXAMPLES, 0, -1):
        listing, budget = [], limit
        for reason, cases in groups.items():
            if budget > 0:
                listing.append(f"{reason}: {', '.join(cases[:budget])}")
                budget -= len(cases[:budget])
        message = (
            f"{source}: {len(bad):,} of {len(reasons):,} timestamps in column {quote(column)} {verb} "
            f"implausible ({'; '.join(listing)}); times must lie from 1970 to 2100, in one unit per column "
            f"(seconds, or milli-, micro- or nanoseconds); {_FIX}"
        )
        if len(message) <= MESSAGE_MAX_CHARS:
            break
    return message


def _reason_text(reason: int, number: float, unit: str) -> str:
    if reason == 1:
        return "before 1970"
    if reason == 2:
        return "after 2100" + (" even in nanoseconds" if unit != "dates" else "")
    name, factor = UNITS[reason - 3]
    year = datetime.fromtimestamp(number / factor, tz=UTC).year
    return f"{name} (year {year}) in a column of {unit}"


@dataclass(frozen=True)
class _Where:
    """Line numbers and values as messages quote them."""

    values: pl.Series
    lines: pl.Series
    where: str  # "line" (text) or "row" (Parquet)

    def line(self, i: int) -> str:
        return f"{self.where} {self.lines[i]}"

    def value(self, i: int) -> str:
        return quote(self.values[i], 24)  # a time in nanoseconds has 19 digits


def _parse(values: pl.Series, source: str, column: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(numbers, unreadable, kind)``: raw numbers (kind "numbers") or seconds (kind "dates")."""
    dtype = values.dtype
    if dtype == pl.Datetime:
        return _dates_from(values.dt.epoch("us").cast(pl.Float64) / 1e6)
    if dtype == pl.Date:
        return _dates_from(values.dt.epoch("s").cast(pl.Float64))
    if dtype.is_numeric():
        numbers = values.cast(pl.Float64)
    elif dtype == pl.String:
        values = values.str.strip_chars()
        numbers = values.cast(pl.Float64, strict=False)
        if numbers[0] is None:
            return _parse_dates(values)
    else:
        raise DataError(f"{source}: time column {quote(column)} has type {dtype}, expected numbers or dates")
    array = numbers.to_numpy().astype(np.float64)
    return array, ~np.isfinite(array), "numbers"


def _dates_from(seconds: pl.Series) -> tuple[np.ndarray, np.ndarray, str]:
    array = seconds.to_numpy().astype(np.float64)
    return array, np.isnan(array), "dates"


def _parse_dates(values: pl.Series) -> tuple[np.ndarray, np.ndarray, str]:
    seconds = np.full(len(values), np.nan)
    todo = np.arange(len(values))
    for _ in range(_DATE_ROUNDS):
        subset = values.gather(todo)
        try:  # the format is inferred from the subset's first value
            parsed = subset.str.to_datetime(strict=False, time_unit="us")
        except pl.exceptions.PolarsError:
            break
        ok = parsed.is_not_null().to_numpy()
        if not ok.any():
            break
        seconds[todo[ok]] = parsed.dt.epoch("us").to_numpy()[ok] / 1e6
        todo = todo[~ok]
        if not len(todo):
            break
    return seconds, np.isnan(seconds), "dates"
