"""File → raw events, in four steps, the same for every format.

1. **detect** (:mod:`.sniffing`): from the name and the first 64 KiB, what the file is — refused if it
   is a document that is no log, binary data or in no accepted encoding — and its format;
2. **read the table**: one reader per format (delimited text, one sequence per line, Parquet), all
   parsing UTF-8 (a file in another encoding is read from a UTF-8 copy, see :mod:`.encoding`);
3. **resolve the columns** (:mod:`.columns`): which is the user, the item and the time;
4. **check the events**: ids no longer than :data:`MAX_ID_CHARS`, times converted to seconds and
   checked (:mod:`.timestamps`).

The result has one row per event in file order with columns ``seq`` and ``item`` (text, so that
``42``, ``"042"`` and UUIDs all survive unchanged), ``line`` (1-based line, or row for Parquet, for
error messages) and, when the log has one, ``ts`` (float64 unix seconds). Ordering, filtering and
indexing happen later in :mod:`trainer.data.loading`, the same for every format.

Every value is read as text and converted once, column-wise, so a bad value can be reported with
its line instead of turning into a silent null or a parser exception. Messages name the file as the
user knows it (``name``), never the folder it is stored in, nor the UTF-8 copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trainer.data.columns import ColumnChoice, resolve_columns, values_look_like_time
from trainer.data.encoding import find_invalid_utf8, label, utf8_copy
from trainer.data.messages import quote, shorten
from trainer.data.options import ReadOptions
from trainer.data.sniffing import (
    Sample,
    detect_format,
    detect_header,
    looks_like_whitespace_table,
    read_sample,
    sniff_delimiter,
)
from trainer.data.timestamps import read_times
from trainer.data.types import DataError, ReadReport

log = logging.getLogger(__name__)

# Longest user/session or item id accepted. Real ids (numbers, UUIDs, SKUs, URLs) fit well within;
# a longer "id" is a wrong delimiter or column, and would be copied into every page that shows it.
MAX_ID_CHARS = 256
_REASON_CHARS = 160  # a parser's own explanation, quoted in our message


@dataclass(frozen=True)
class RawEvents:
    """A log's events in file order (see the module docstring), and what reading decided."""

    frame: pl.DataFrame
    report: ReadReport


@dataclass(frozen=True)
class _Source:
    """One log being read: the UTF-8 file to parse, how messages name it, and its sample."""

    path: Path  # the file itself, or its UTF-8 copy
    name: str
    sample: Sample


@dataclass(frozen=True)
class _Table:
    """A format reader's events (``line``, ``seq``, ``item`` and the time column as read, ``ts``)."""

    events: pl.DataFrame
    time_column: str | None  # the time column's name, for messages
    where: str  # "line" (text) or "row" (Parquet)


def read_events(path: Path, options: ReadOptions, name: str | None = None) -> RawEvents:
    """Detect the format of ``path`` and read its events; ``name``: how messages call the file."""
    name = name or path.name
    sample = read_sample(path, name)
    fmt = detect_format(path, sample, options)
    log.info("%s: reading as %s (%s)", name, fmt, label(sample.encoding))
    with utf8_copy(path, sample.encoding, name=name) as readable:
        source = _Source(path=readable, name=name, sample=sample)
        try:
            if fmt == "parquet":
                table = _read_parquet(source, options)
            elif fmt == "lines":
                table = _read_lines(source, options)
            else:
                table = _read_delimited(source, options, fmt)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{name}: cannot be read as {fmt}: {polars_reason(exc)}") from None
    return _checked_events(table, name, options, sample.encoding)


def polars_reason(exc: BaseException) -> str:
    """The first line of a parser exception, shortened: they can quote whole rows of the file."""
    return shorten((str(exc).strip().splitlines() or [type(exc).__name__])[0], _REASON_CHARS)


def _checked_events(table: _Table, name: str, options: ReadOptions, encoding: str | None) -> RawEvents:
    """Step 4: ids within :data:`MAX_ID_CHARS`, times in seconds and plausible (or dropped)."""
    events = table.events
    for role, what in (("seq", "user/session id"), ("item", "item id")):
        lengths = events[role].str.len_chars()
        too_long = (lengths > MAX_ID_CHARS).arg_true()
        if len(too_long):
            i = int(too_long[0])
            raise DataError(
                f"{name}, {table.where} {events['line'][i]}: the {what} is {lengths[i]:,} characters long "
                f"(it starts {quote(events[role][i], 24)}); ids may have at most {MAX_ID_CHARS} characters "
                f"({len(too_long):,} such value{'s' if len(too_long) > 1 else ''}; is the delimiter or the "
                "column mapping right?)"
            )
    if "ts" not in events.columns:
        return RawEvents(events, ReadReport(encoding=encoding))
    times = read_times(
        events["ts"],
        events["line"],
        source=name,
        column=table.time_column or "time",
        where=table.where,
        bad_timestamps=options.bad_timestamps,
    )
    events = events.with_columns(ts=pl.Series("ts", times.seconds, dtype=pl.Float64))
    dropped = int(times.bad.sum())
    if dropped:
        events = events.filter(pl.Series(~times.bad))
        log.warning(
            "%s: dropped %d of %d events whose timestamp is unreadable or implausible (bad_timestamps=drop)",
            name,
            dropped,
            len(times.bad),
        )
        if events.is_empty():
            raise DataError(
                f"{name}: every one of the {dropped:,} timestamps is unreadable or implausible, so "
                "bad_timestamps='drop' left no events; is time_col the right column?"
            )
    report = ReadReport(encoding=encoding, time_unit=times.unit, dropped_bad_timestamps=dropped)
    return RawEvents(events, report)


# ---------------------------------------------------------------------------------------------- lines


def _read_lines(source: _Source, options: ReadOptions) -> _Table:
    """One sequence per line, tokens separated by whitespace (or ``options.delimiter``)."""
    tokens = _tokenise(_text_lines(source), options.delimiter)
    frame = pl.DataFrame({"line": pl.int_range(1, len(tokens) + 1, eager=True), "tokens": tokens})
    frame = frame.filter(pl.col("tokens").list.len() > 0)
    if frame.is_empty():
        raise DataError(f"{source.name}: the file is empty (no events)")
    have_user = options.lines_have_user
    if have_user is None:
        have_user = lines_start_with_user(frame["tokens"])
        log.info(
            "%s: %s",
            source.name,
            "first token of each line runs 1, 2, 3…: reading it as the sequence id "
            "(set lines_have_user=False if it is an item)"
            if have_user
            else "every token is an item (set lines_have_user=True if lines start with a user id)",
        )
    if have_user:
        seq = pl.col("tokens").list.first()
        items = pl.col("tokens").list.slice(1)
    else:
        seq = pl.col("line").cast(pl.String)
        items = pl.col("tokens")
    events = frame.select("line", seq.alias("seq"), items.alias("item")).explode("item")
    empty = events["item"].null_count()
    if empty:
        log.warning("%s: %d line(s) hold a sequence id but no items; skipped", source.name, empty)
        events = events.drop_nulls("item")
    return _Table(events, time_column=None, where="line")


def lines_start_with_user(tokens: pl.Series) -> bool:
    """Whether the first tokens of the lines are sequence ids, judged conservatively.

    Yes only when there are at least two lines, every line has at least two tokens, and the first
    tokens are consecutive integers k, k+1, k+2, … in line order — the S3Rec/ICLRec convention
    (Beauty, LastFM) of numbering users by line. Merely unique first tokens are not enough: in a
    small slice of a session file whose items are numbered by first appearance (diginetica), each
    line's first item is often new, hence unique. Reading an item as a user id would silently drop
    one real event per line, so anything short of the strong pattern is read as items.
    """
    if len(tokens) < 2 or tokens.list.len().min() < 2:
        return False
    first = tokens.list.first().cast(pl.Int64, strict=False)
    if first.null_count():
        return False
    return bool((first.diff().drop_nulls() == 1).all())


def _tokenise(lines: pl.Series, delimiter: str | None) -> pl.Series:
    if delimiter is None or delimiter == " ":
        return lines.str.extract_all(r"\S+")
    token = pl.element().str.strip_chars()
    return lines.str.split(delimiter).list.eval(token.filter(token != ""))


def _text_lines(source: _Source) -> pl.Series:
    """The whole file as a series of lines, after a full NUL and UTF-8 check (lines are cheap)."""
    data = source.path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{source.name}, line {line}: binary data (NUL byte at offset {nul}); expected a text log"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(_not_utf8(source, line, exc.start, data[exc.start])) from None
    del data
    return pl.Series("text", text.lstrip("\ufeff").split("\n"))


# ------------------------------------------------------------------------------------------ delimited


def _read_delimited(source: _Source, options: ReadOptions, fmt: str) -> _Table:
    """CSV/TSV/semicolon text and RecBole ``.inter`` files (TAB with a typed header)."""
    sample, name = source.sample, source.name
    delimiter = options.delimiter or ("\t" if fmt == "inter" else sniff_delimiter(sample.lines))
    if delimiter is None:
        if sample.lines and looks_like_whitespace_table(sample.lines):
            delimiter = " "
        else:
            raise DataError(
                f"{name}: no delimiter found (looked for TAB, ',' and ';' on the first line "
                f"{quote(sample.lines[0])}); set delimiter, or format='lines' for one sequence per line"
            )
    has_header = options.has_header
    if has_header is None:
        has_header = fmt == "inter" or detect_header(sample.lines, delimiter)
    if delimiter == " ":
        table = _read_whitespace_table(source, has_header)
    else:
        table = _read_csv(source, delimiter, has_header)
    first_line = 2 if has_header else 1
    table = table.with_columns(line=pl.int_range(first_line, first_line + table.height, dtype=pl.Int64))
    names = table.columns[:-1]
    blank = pl.all_horizontal(pl.col(names).is_null())  # blank lines parse as all-null rows
    table = table.filter(~blank)
    if table.is_empty():
        raise DataError(f"{name}: the file is empty (no events{' below the header' if has_header else ''})")
    first_row = [str(v) for v in table.row(0)[:-1]]
    time_like = None
    if not has_header:
        time_like = [values_look_like_time(table[column]) for column in names]
    choice = resolve_columns(
        name, list(names), named=has_header, options=options, first_row=first_row, time_like=time_like
    )
    return _select_events(source, table, names, choice, delimiter)


def _read_csv(source: _Source, delimiter: str, has_header: bool) -> pl.DataFrame:
    try:
        return pl.read_csv(
            source.path,
            separator=delimiter,
            has_header=has_header,
            infer_schema=False,  # keep ids as written; timestamps are parsed with line-level errors
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        if "utf-8" in str(exc).lower():
            bad = find_invalid_utf8(source.path)
            if bad is not None:
                raise DataError(_not_utf8(source, *bad)) from None
        ragged = _find_ragged_line(source, delimiter)
        if ragged is not None:
            line, found, expected = ragged
            raise DataError(
                f"{source.name}, line {line}: ragged row: {found} fields where the first line has "
                f"{expected} (delimiter {delimiter!r}; for one sequence per line set format='lines')"
            ) from None
        raise DataError(f"{source.name}: cannot be parsed as delimited text: {polars_reason(exc)}") from None


def _not_utf8(source: _Source, line: int, offset: int, byte: int) -> str:
    """The file was taken for UTF-8 from its start, and a later byte is not."""
    return (
        f"{source.name}, line {line}: not UTF-8 text (byte {byte:#04x} at offset {offset}), although the "
        "start of the file is; save the whole file in one encoding, preferably UTF-8"
    )


def _read_whitespace_table(source: _Source, has_header: bool) -> pl.DataFrame:
    tokens = _tokenise(_text_lines(source), None)
    counts = tokens.list.len()
    width = counts.filter(counts > 0)[0]
    bad = ((counts != width) & (counts > 0)).arg_true()
    if len(bad):
        line = int(bad[0]) + 1
        raise DataError(
            f"{source.name}, line {line}: ragged row: {counts[line - 1]} fields where the first line "
            f"has {width}"
        )
    if has_header:
        names, tokens = [str(t) for t in tokens[0]], tokens.slice(1)
    else:
        names = [f"column_{i + 1}" for i in range(width)]
    return pl.DataFrame({"t": tokens}).select(
        pl.col("t").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(names)
    )


def _find_ragged_line(source: _Source, delimiter: str) -> tuple[int, int, int] | None:
    """First line whose field count differs from the first line's (only run once parsing failed).

    Counting delimiters ignores quoting, which is why this only explains a failure and never
    replaces the parser.
    """
    lines = _text_lines(source)
    counts = lines.str.count_matches(delimiter, literal=True) + 1
    bad = ((counts != counts[0]) & (lines.str.strip_chars() != "")).arg_true()
    if not len(bad):
        return None
    i = int(bad[0])
    return i + 1, int(counts[i]), int(counts[0])


def _select_events(
    source: _Source, table: pl.DataFrame, names: list[str], choice: ColumnChoice, delimiter: str
) -> _Table:
    roles = {"seq": choice.user, "item": choice.item}
    if choice.time is not None:
        roles["ts"] = choice.time
    events = table.select(
        "line",
        *(pl.col(names[i]).str.strip_chars().replace("", None).alias(role) for role, i in roles.items()),
    )
    for role, i in roles.items():
        missing = events[role].is_null().arg_true()
        if len(missing):
            line = int(events["line"][int(missing[0])])
            reason = _missing_value_reason(source, line, names, i, delimiter)
            raise DataError(f"{source.name}, line {line}: {reason}")
    time_column = names[choice.time] if choice.time is not None else None
    return _Table(events, time_column=time_column, where="line")


def _missing_value_reason(source: _Source, line: int, names: list[str], column: int, delimiter: str) -> str:
    """Tell a short (ragged) row from an empty field; reads the file again, but only on error."""
    text = str(_text_lines(source)[line - 1])
    fields = len(text.split()) if delimiter == " " else text.count(delimiter) + 1
    if fields < len(names):
        return f"ragged row: {fields} fields where the first line has {len(names)}: {quote(text)}"
    return f"empty value in column {quote(names[column])}"


# -------------------------------------------------------------------------------------------- parquet


def _read_parquet(source: _Source, options: ReadOptions) -> _Table:
    """Parquet via polars; ids of any type become text, time columns may be numbers or datetimes."""
    schema = pl.read_parquet_schema(source.path)
    names = list(schema)
    choice = resolve_columns(source.name, names, named=True, options=options)
    roles = {"seq": choice.user, "item": choice.item}
    if choice.time is not None:
        roles["ts"] = choice.time
    table = pl.read_parquet(source.path, columns=[names[i] for i in roles.values()])
    if table.is_empty():
        raise DataError(f"{source.name}: the file is empty (no events)")
    columns = [pl.int_range(1, table.height + 1, dtype=pl.Int64).alias("line")]
    for role, i in roles.items():
        column = pl.col(names[i])
        columns.append((column if role == "ts" else _as_text(column, schema[names[i]])).alias(role))
    table = table.select(columns)
    for role in roles:
        missing = table[role].is_null().arg_true()
        if len(missing):
            column = names[roles[role]]
            row = int(missing[0]) + 1
            raise DataError(f"{source.name}, row {row}: missing value in column {quote(column)}")
    time_column = names[choice.time] if choice.time is not None else None
    return _Table(table, time_column=time_column, where="row")


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return column.str.strip_chars().replace("", None)
    return column.cast(pl.String)
