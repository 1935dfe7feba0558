"""File → raw events, one reader per format, all returning the same polars frame.

The frame has one row per event in file order with columns ``seq`` and ``item`` (text, so that
``42``, ``"042"`` and UUIDs all survive unchanged), ``line`` (1-based line, or row for Parquet, for
error messages) and, when the log has one, ``ts`` (float64 unix seconds). Ordering, filtering and
indexing happen later in :mod:`trainer.data.loading`, the same for every format.

Every value is read as text and converted once, column-wise, so a bad value can be reported with
its line instead of turning into a silent null or a parser exception.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from trainer.data.columns import (
    ColumnChoice,
    parse_timestamps,
    resolve_columns,
    values_look_like_time,
)
from trainer.data.options import ReadOptions
from trainer.data.sniffing import (
    Sample,
    detect_format,
    detect_header,
    looks_like_whitespace_table,
    read_sample,
    sniff_delimiter,
)
from trainer.data.types import DataError

log = logging.getLogger(__name__)


def read_events(path: Path, options: ReadOptions) -> pl.DataFrame:
    """Detect the format of ``path`` and read its events (see the module docstring for the frame)."""
    sample = read_sample(path)
    fmt = detect_format(path, sample, options)
    log.info("%s: reading as %s", path, fmt)
    try:
        if fmt == "parquet":
            return _read_parquet(path, options)
        if fmt == "lines":
            return _read_lines(path, options)
        return _read_delimited(path, sample, options, fmt)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: cannot be read as {fmt}: {_first_line(exc)}") from None


# ---------------------------------------------------------------------------------------------- lines


def _read_lines(path: Path, options: ReadOptions) -> pl.DataFrame:
    """One sequence per line, tokens separated by whitespace (or ``options.delimiter``)."""
    tokens = _tokenise(_text_lines(path), options.delimiter)
    frame = pl.DataFrame({"line": pl.int_range(1, len(tokens) + 1, eager=True), "tokens": tokens})
    frame = frame.filter(pl.col("tokens").list.len() > 0)
    if frame.is_empty():
        raise DataError(f"{path}: the file is empty (no events)")
    have_user = options.lines_have_user
    if have_user is None:
        have_user = lines_start_with_user(frame["tokens"])
        log.info(
            "%s: %s",
            path,
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
        log.warning("%s: %d line(s) hold a sequence id but no items; skipped", path, empty)
        events = events.drop_nulls("item")
    return events


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


def _text_lines(path: Path) -> pl.Series:
    """The whole file as a series of lines, after a full NUL and UTF-8 check (lines are cheap)."""
    data = path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(f"{path}, line {line}: binary data (NUL byte at offset {nul}); expected a text log")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None
    del data
    return pl.Series("text", text.lstrip("\ufeff").split("\n"))


# ------------------------------------------------------------------------------------------ delimited


def _read_delimited(path: Path, sample: Sample, options: ReadOptions, fmt: str) -> pl.DataFrame:
    """CSV/TSV/semicolon text and RecBole ``.inter`` files (TAB with a typed header)."""
    delimiter = options.delimiter or ("\t" if fmt == "inter" else sniff_delimiter(sample.lines))
    if delimiter is None:
        if sample.lines and looks_like_whitespace_table(sample.lines):
            delimiter = " "
        else:
            raise DataError(
                f"{path}: no delimiter found (looked for TAB, ',' and ';' on the first line "
                f"{sample.lines[0][:80]!r}); set delimiter, or format='lines' for one sequence per line"
            )
    has_header = options.has_header
    if has_header is None:
        has_header = fmt == "inter" or detect_header(sample.lines, delimiter)
    if delimiter == " ":
        table = _read_whitespace_table(path, has_header)
    else:
        table = _read_csv(path, delimiter, has_header)
    first_line = 2 if has_header else 1
    table = table.with_columns(line=pl.int_range(first_line, first_line + table.height, dtype=pl.Int64))
    names = table.columns[:-1]
    blank = pl.all_horizontal(pl.col(names).is_null())  # blank lines parse as all-null rows
    table = table.filter(~blank)
    if table.is_empty():
        raise DataError(f"{path}: the file is empty (no events{' below the header' if has_header else ''})")
    first_row = [str(v) for v in table.row(0)[:-1]]
    time_like = None
    if not has_header:
        time_like = [values_look_like_time(table[name]) for name in names]
    choice = resolve_columns(
        str(path), list(names), named=has_header, options=options, first_row=first_row, time_like=time_like
    )
    return _select_events(path, table, names, choice, delimiter)


def _read_csv(path: Path, delimiter: str, has_header: bool) -> pl.DataFrame:
    try:
        return pl.read_csv(
            path,
            separator=delimiter,
            has_header=has_header,
            infer_schema=False,  # keep ids as written; timestamps are parsed with line-level errors
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        ragged = _find_ragged_line(path, delimiter)
        if ragged is not None:
            line, found, expected = ragged
            raise DataError(
                f"{path}, line {line}: ragged row: {found} fields where the first line has {expected} "
                f"(delimiter {delimiter!r}; for one sequence per line set format='lines')"
            ) from None
        raise DataError(f"{path}: cannot be parsed as delimited text: {_first_line(exc)}") from None


def _read_whitespace_table(path: Path, has_header: bool) -> pl.DataFrame:
    tokens = _tokenise(_text_lines(path), None)
    counts = tokens.list.len()
    width = counts.filter(counts > 0)[0]
    bad = ((counts != width) & (counts > 0)).arg_true()
    if len(bad):
        line = int(bad[0]) + 1
        raise DataError(
            f"{path}, line {line}: ragged row: {counts[line - 1]} fields where the first line has {width}"
        )
    if has_header:
        names, tokens = [str(t) for t in tokens[0]], tokens.slice(1)
    else:
        names = [f"column_{i + 1}" for i in range(width)]
    return pl.DataFrame({"t": tokens}).select(
        pl.col("t").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(names)
    )


def _find_ragged_line(path: Path, delimiter: str) -> tuple[int, int, int] | None:
    """First line whose field count differs from the first line's (only run once parsing failed).

    Counting delimiters ignores quoting, which is why this only explains a failure and never
    replaces the parser.
    """
    lines = _text_lines(path)
    counts = lines.str.count_matches(delimiter, literal=True) + 1
    bad = ((counts != counts[0]) & (lines.str.strip_chars() != "")).arg_true()
    if not len(bad):
        return None
    i = int(bad[0])
    return i + 1, int(counts[i]), int(counts[0])


def _select_events(
    path: Path, table: pl.DataFrame, names: list[str], choice: ColumnChoice, delimiter: str
) -> pl.DataFrame:
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
            raise DataError(f"{path}, line {line}: {_missing_value_reason(path, line, names, i, delimiter)}")
    if choice.time is not None:
        ts = parse_timestamps(events["ts"], events["line"], str(path), names[choice.time], "line")
        events = events.with_columns(ts)
    return events


def _missing_value_reason(path: Path, line: int, names: list[str], column: int, delimiter: str) -> str:
    """Tell a short (ragged) row from an empty field; reads the file again, but only on error."""
    text = str(_text_lines(path)[line - 1])
    fields = len(text.split()) if delimiter == " " else text.count(delimiter) + 1
    if fields < len(names):
        return f"ragged row: {fields} fields where the first line has {len(names)}: {text[:80]!r}"
    return f"empty value in column {names[column]!r}"


# -------------------------------------------------------------------------------------------- parquet


def _read_parquet(path: Path, options: ReadOptions) -> pl.DataFrame:
    """Parquet via polars; ids of any type become text, time columns may be numbers or datetimes."""
    schema = pl.read_parquet_schema(path)
    names = list(schema)
    choice = resolve_columns(str(path), names, named=True, options=options)
    roles = {"seq": choice.user, "item": choice.item}
    if choice.time is not None:
        roles["ts"] = choice.time
    table = pl.read_parquet(path, columns=[names[i] for i in roles.values()])
    if table.is_empty():
        raise DataError(f"{path}: the file is empty (no events)")
    columns = [pl.int_range(1, table.height + 1, dtype=pl.Int64).alias("line")]
    for role, i in roles.items():
        column = pl.col(names[i])
        columns.append((column if role == "ts" else _as_text(column, schema[names[i]])).alias(role))
    table = table.select(columns)
    for role in roles:
        missing = table[role].is_null().arg_true()
        if len(missing):
            column = names[roles[role]]
            raise DataError(f"{path}, row {int(missing[0]) + 1}: missing value in column {column!r}")
    if choice.time is not None:
        ts = parse_timestamps(table["ts"], table["line"], str(path), names[choice.time], "row")
        table = table.with_columns(ts)
    return table


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return column.str.strip_chars().replace("", None)
    return column.cast(pl.String)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
