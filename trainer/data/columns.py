"""Which column is the user, the item and the time (turning times into seconds: :mod:`.timestamps`).

Logs come with every naming convention (``user_id``, ``SessionId``, ``visitorid``, RecBole's
``user_id:token``) and sometimes with none (no header). Detection is deliberately narrow: a known
alias, or for headerless files the ``user, item[, …]`` convention plus a column whose values look
like times. Anything else is an error that lists the columns found and names the option to set,
because a wrong guess (ratings read as timestamps) would train a model on nonsense without a sound.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import polars as pl

from trainer.data.messages import MAX_EXAMPLES, examples, quote
from trainer.data.options import ColumnRef, ReadOptions
from trainer.data.types import DataError

log = logging.getLogger(__name__)

# Normalised names (lower case, no "_", "-" or spaces, RecBole ":type" suffix removed).
USER_ALIASES = ("userid", "user", "sessionid", "session", "visitorid", "visitor", "customerid", "uid")
ITEM_ALIASES = ("itemid", "item", "productid", "product", "movieid", "movie", "artistid", "artist", "iid")
TIME_ALIASES = ("timestamp", "time", "ts", "datetime", "date", "eventtime", "unixtime")

# Unix seconds from 1973 to 5138: wide enough for any real log, narrow enough that ratings, counts
# and small ids are never mistaken for a time column.
_UNIX_SECONDS = (1e8, 1e11)
_TYPED_NAME = re.compile(r"^[^:\s]+:[a-z_]+$")


def normalise_name(name: str) -> str:
    """Header name → comparison key: ``"User_ID:token"`` and ``"userid"`` compare equal."""
    name = name.strip().strip('"').lstrip("\ufeff")
    if ":" in name:
        name = name.rsplit(":", 1)[0]
    return re.sub(r"[\s_\-]", "", name).lower()


def looks_like_header_name(name: str) -> bool:
    """A field that is a known alias or has a RecBole ``name:type`` form can only be a header."""
    key = normalise_name(name)
    known = key in USER_ALIASES or key in ITEM_ALIASES or key in TIME_ALIASES
    return known or bool(_TYPED_NAME.match(name.strip().lstrip("\ufeff")))


@dataclass(frozen=True)
class ColumnChoice:
    """Positions of the columns to read (``time`` is None when the log has no time column)."""

    user: int
    item: int
    time: int | None


def describe_columns(names: list[str], named: bool, first_row: list[str] | None) -> str:
    """The column listing used in every "which column?" error: the first few, each shortened.

    A document that is no log can have thousands of "columns" (a JSON export read as one header);
    listing them all once made a message of 9,000 characters.
    """
    if named:
        return f"columns found: {examples((quote(n) for n in names), len(names))}"
    values = first_row or [""] * len(names)
    shown = examples((f"#{i} (e.g. {quote(v)})" for i, v in enumerate(values)), len(values), MAX_EXAMPLES)
    return f"columns found (no header, 0-based positions): {shown}"


def resolve_columns(
    source: str,
    names: list[str],
    *,
    named: bool,
    options: ReadOptions,
    first_row: list[str] | None = None,
    time_like: list[bool] | None = None,
) -> ColumnChoice:
    """Pick the user, item and time columns from the options, the header, or the values.

    ``time_like[i]`` says whether column i's values look like timestamps; it is only consulted for
    headerless files, where names cannot help.
    """
    listing = describe_columns(names, named, first_row)

    def by_ref(ref: ColumnRef, field: str) -> int | None:
        if ref is None:
            return None
        if isinstance(ref, int):
            if ref >= len(names):
                raise DataError(
                    f"{source}: {field}={ref} is out of range, the file has {len(names)} columns; {listing}"
                )
            return ref
        if not named:
            raise DataError(
                f"{source}: {field}={quote(ref)} names a column, but the file has no header; give a 0-based "
                f"position instead, or set has_header=True if the first line is a header; {listing}"
            )
        if ref in names:
            return names.index(ref)
        keys = [normalise_name(n) for n in names]
        if normalise_name(ref) in keys:
            return keys.index(normalise_name(ref))
        raise DataError(f"{source}: missing column {quote(ref)} (set by {field}); {listing}")

    def by_alias(aliases: tuple[str, ...]) -> int | None:
        keys = [normalise_name(n) for n in names]
        for alias in aliases:  # alias order is preference order ("user_id" before "session")
            if alias in keys:
                return keys.index(alias)
        return None

    user = by_ref(options.user_col, "user_col")
    item = by_ref(options.item_col, "item_col")
    time = by_ref(options.time_col, "time_col")

    if named:
        user = user if user is not None else by_alias(USER_ALIASES)
        item = item if item is not None else by_alias(ITEM_ALIASES)
        if time is None:
            time = by_alias(TIME_ALIASES)
        for role, found, field in (("user/session", user, "user_col"), ("item", item, "item_col")):
            if found is None:
                raise DataError(
                    f"{source}: missing column: no {role} column found among the header names; {listing}; "
                    f"set {field} to its name or 0-based position"
                )
    else:
        mapped = user is not None and item is not None
        if user is None and item is None and len(names) >= 2:
            user, item = 0, 1
        if user is None or item is None:
            raise DataError(
                f"{source}: cannot tell the user and item columns apart without a header; set both "
                f"user_col and item_col; {listing}"
            )
        if time is None:
            looks = time_like or [False] * len(names)
            candidates = [i for i in range(len(names)) if i not in (user, item) and looks[i]]
            if len(candidates) == 1:
                time = candidates[0]
            elif len(candidates) > 1 or (not mapped and len(names) > 2):
                found = (
                    f"columns {candidates} look like timestamps"
                    if candidates
                    else "no column looks like time"
                )
                raise DataError(
                    f"{source}: ambiguous columns in a file without a header ({found}); map them with "
                    f"user_col, item_col and time_col (0-based positions); {listing}"
                )
    assert user is not None and item is not None
    if len({user, item, time} - {None}) < (3 if time is not None else 2):
        raise DataError(f"{source}: user, item and time must be different columns; {listing}")
    log.info(
        "%s: user column %s, item column %s, time column %s",
        source,
        names[user],
        names[item],
        names[time] if time is not None else "none (file order)",
    )
    return ColumnChoice(user=user, item=item, time=time)


def values_look_like_time(values: pl.Series) -> bool:
    """Whether a text column holds unix seconds or ISO dates (used only for headerless files)."""
    values = values.drop_nulls().str.strip_chars()
    if values.is_empty():
        return False
    numbers = values.cast(pl.Float64, strict=False)
    if numbers.null_count() == 0:
        lo, hi = _UNIX_SECONDS
        return bool(((numbers >= lo) & (numbers < hi)).all())
    try:
        parsed = values.head(100).str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.PolarsError:
        return False
    return parsed.null_count() == 0
