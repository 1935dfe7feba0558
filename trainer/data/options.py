"""How to read an interaction log: file format, which columns mean what, and what to filter.

Everything defaults to "detect", so a typical CSV, RecBole ``.inter``, one-sequence-per-line text or
Parquet file loads with no options at all; each field exists for the file where detection guesses
wrong, and the loader's error messages name the field to set.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.configs import ConfigError, ConfigMixin
from trainer.data.messages import quote

FORMATS = ("auto", "delimited", "inter", "lines", "parquet")
BAD_TIMESTAMPS = ("error", "drop")  # what to do with events whose time is unreadable or implausible
MAX_COLUMN_NAME_CHARS = 256  # a column name longer than any id (see readers.MAX_ID_CHARS) is a mistake

ColumnRef = str | int | None


def _check_column(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(
            f"ReadOptions.{name} must be a column name, a 0-based position or None, got {quote(value)}"
        )
    if isinstance(value, int) and value < 0:
        raise ConfigError(f"ReadOptions.{name} is a 0-based column position and cannot be negative ({value})")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"ReadOptions.{name} is an empty column name; use None to detect the column")
    if isinstance(value, str) and len(value) > MAX_COLUMN_NAME_CHARS:
        raise ConfigError(
            f"ReadOptions.{name} is a column name of {len(value):,} characters; "
            f"the limit is {MAX_COLUMN_NAME_CHARS}"
        )


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"ReadOptions.{name} must be a whole number ≥ 0, got {quote(value)}")


@dataclass(frozen=True)
class ReadOptions(ConfigMixin):
    """Format, column mapping and filtering for :func:`trainer.data.load_dataset`.

    Filters run after the events are put in order, in this sequence: consecutive duplicates are
    dropped first (so that a double click does not count twice towards ``min_item_count``), then
    the item and sequence-length filters (repeated until stable when ``k_core`` is set).
    """

    format: str = "auto"  # auto | delimited | inter | lines | parquet
    user_col: ColumnRef = None  # user or session column: header name or 0-based position; None = detect
    item_col: ColumnRef = None
    time_col: ColumnRef = None  # None = detect; a file without a time column keeps file order
    delimiter: str | None = None  # None = sniff among "," TAB ";" (whitespace for the lines format)
    has_header: bool | None = None  # None = detect from the first line
    lines_have_user: bool | None = None  # lines format: first token is the sequence id; None = detect
    drop_consecutive_duplicates: bool = False
    min_item_count: int = 0  # drop items with fewer events than this
    min_sequence_length: int = 0  # drop sequences with fewer events than this
    k_core: int = 0  # repeat item and sequence filtering until both have at least k events
    # Events whose time is unreadable, before 1970, after 2100 or in another unit than the column's:
    # "error" refuses the log naming a few of them, "drop" drops them and counts them in the report.
    bad_timestamps: str = "error"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"ReadOptions.format must be one of {', '.join(FORMATS)}, got {quote(self.format)}"
            )
        for name in ("user_col", "item_col", "time_col"):
            _check_column(name, getattr(self, name))
        if self.delimiter is not None and (not isinstance(self.delimiter, str) or len(self.delimiter) != 1):
            raise ConfigError(
                "ReadOptions.delimiter must be a single character such as ',' or '\\t', "
                f"got {quote(self.delimiter)}"
            )
        if self.delimiter is not None and self.delimiter in '\n\r"':
            raise ConfigError(
                f"ReadOptions.delimiter cannot be a newline or quote character ({quote(self.delimiter)})"
            )
        for name in ("has_header", "lines_have_user"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ConfigError(
                    f"ReadOptions.{name} must be true, false or null (detect), got {quote(value)}"
                )
        if not isinstance(self.drop_consecutive_duplicates, bool):
            raise ConfigError(
                "ReadOptions.drop_consecutive_duplicates must be true or false, "
                f"got {quote(self.drop_consecutive_duplicates)}"
            )
        for name in ("min_item_count", "min_sequence_length", "k_core"):
            _check_count(name, getattr(self, name))
        if self.bad_timestamps not in BAD_TIMESTAMPS:
            raise ConfigError(
                f"ReadOptions.bad_timestamps must be one of {', '.join(BAD_TIMESTAMPS)}, "
                f"got {quote(self.bad_timestamps)}"
            )
        refs = [v for v in (self.user_col, self.item_col, self.time_col) if v is not None]
        if len(refs) != len(set(refs)):
            raise ConfigError(
                "ReadOptions: user_col, item_col and time_col must name different columns, got "
                f"user_col={quote(self.user_col)}, item_col={quote(self.item_col)}, "
                f"time_col={quote(self.time_col)}"
            )

    @property
    def filters(self) -> bool:
        """Whether any count filter is set (the loader skips the filtering pass otherwise)."""
        return bool(self.min_item_count or self.min_sequence_length or self.k_core)
