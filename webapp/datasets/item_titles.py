"""Item titles of a dataset: an optional two-column table ``item id → title`` a user uploads.

A log names items by id (``i3``, ``242``); people recognise them by title. A titles file is a small
CSV or TSV, with or without a header: the item id in the first column, the title in the second.
A header, when there is one, may name more columns (a RecBole ``.item`` file:
``item_id:token  movie_title:token_seq  release_year:token …``); the title is then the column whose
name says "title" (or "name"). Without a header a row must hold exactly two cells, so a CSV title
with an unquoted comma is refused instead of being cut silently.

Ids the dataset does not know are counted, not refused (a catalogue is often larger than the part of
it a log touches); a file in which no id is the dataset's is refused as the wrong file. Titles are
cut at :data:`TITLE_MAX_CHARS`; only the dataset's own ids are kept, so at most its item count.
:func:`item_titles_parse` is pure; the service stores the result beside the dataset's events.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl

from trainer.data import DataError
from trainer.data.encoding import detect_encoding
from trainer.data.messages import bound_message, quote
from trainer.data.sniffing import document_kind
from webapp.core.storage import StorageError, storage_read

TITLES_FILE = "item_titles.json"  # beside the dataset's events.tsv
TITLE_MAX_CHARS = 200  # longer titles are cut: a results table shows one line per item
TITLES_MAX_BYTES = 16 * 1024**2  # ~200,000 titles of 80 characters; a catalogue, not a log
TITLES_MAX_ROWS = 1_000_000
HEADER_IDS = {"id", "item", "item_id", "itemid", "item id", "movie_id", "product_id", "asin", "sku"}
EXAMPLES = 3  # unknown ids quoted in a refusal


@dataclass(frozen=True)
class ItemTitles:
    """A parsed titles file: the dataset's ids with their titles, and what was left out and why."""

    titles: dict[str, str]  # raw item id → title, only ids the dataset knows
    rows: int  # data rows read (header and empty lines not counted)
    unknown: int  # rows whose id is no item of the dataset
    cut: int  # titles cut at TITLE_MAX_CHARS
    duplicates: int  # rows repeating an id already read (the first title is kept)
    empty: int  # rows without a title
    header: bool  # the first row named the columns

    def summary(self) -> dict[str, int | bool]:
        """The counts the dataset page and the API show (``titles``: how many items have one)."""
        return {
            "titles": len(self.titles),
            "rows": self.rows,
            "unknown": self.unknown,
            "cut": self.cut,
            "duplicates": self.duplicates,
            "empty": self.empty,
            "header": self.header,
        }


def item_titles_sentence(summary: dict, n_items: int | None = None) -> str:
    """What an upload stored, in one line: "titles for 1,650 of 1,682 items from ml-100k.item; …"."""
    of = f" of {n_items:,}" if n_items else ""
    parts = [f"titles for {summary['titles']:,}{of} items from {summary.get('source', 'the file')}"]
    left_out = (
        ("unknown", "ids not in this dataset, left out"),
        ("duplicates", "repeated ids, the first title kept"),
        ("empty", "rows without a title"),
        ("cut", f"titles cut at {TITLE_MAX_CHARS} characters"),
    )
    parts += [f"{summary[key]:,} {what}" for key, what in left_out if summary.get(key)]
    return "; ".join(parts)


class ItemTitlesError(ValueError):
    """A titles file that cannot be read as ``item id → title``; the message says why, in a line."""


def item_titles_parse(data: bytes, *, known: set[str], name: str) -> ItemTitles:
    """Read a titles file's bytes against the dataset's raw item ids ``known``; see the module docstring.

    Raises :class:`ItemTitlesError` with a short message naming ``name`` (the file as uploaded).
    """
    if not data.strip():
        raise ItemTitlesError(f"{name} is empty")
    if len(data) > TITLES_MAX_BYTES:
        raise ItemTitlesError(f"{name} is {len(data):,} bytes; a titles file may hold {TITLES_MAX_BYTES:,}")
    text = _decode(data, name).lstrip("\ufeff")
    titles: dict[str, str] = {}
    unknown: list[str] = []
    counts = {"rows": 0, "cut": 0, "duplicates": 0, "empty": 0}
    header = False
    id_col, title_col, width = 0, 1, 2
    for line, row in _rows(text, name):
        if not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if line == 1 and _is_header(cells, known):
            header = True
            title_col, width = _title_column(cells), len(cells)
            continue
        _check_width(cells, width, header, line, name)
        counts["rows"] += 1
        if counts["rows"] > TITLES_MAX_ROWS:
            raise ItemTitlesError(f"{name} has more than {TITLES_MAX_ROWS:,} rows")
        item, title = cells[id_col], " ".join(cells[title_col].split())
        if item not in known:
            unknown.append(item)
        elif not title:
            counts["empty"] += 1
        elif item in titles:
            counts["duplicates"] += 1
        else:
            if len(title) > TITLE_MAX_CHARS:
                counts["cut"] += 1
                title = title[: TITLE_MAX_CHARS - 1] + "…"
            titles[item] = title
    if not counts["rows"]:
        raise ItemTitlesError(f"{name} has no rows of item id and title")
    if not titles:
        if unknown:
            examples = ", ".join(quote(i) for i in unknown[:EXAMPLES])
            raise ItemTitlesError(
                f"none of the {len(unknown):,} ids in {name} is an item of this dataset (first: {examples}); "
                "the first column must hold the item ids of the log"
            )
        raise ItemTitlesError(f"{name} has no titles: the second column is empty")
    return ItemTitles(titles=titles, unknown=len(unknown), header=header, **counts)


def _rows(text: str, name: str) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` of each row. Comma-separated text is read with CSV quoting, strictly (a quote
    left open is refused, not read to the end of the file); tab-separated text too, unless its quotes
    do not parse as CSV quoting, in which case they are part of the titles (TSV is often unquoted)."""
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    options = [{"strict": True}] + ([{"quoting": csv.QUOTE_NONE}] if delimiter == "\t" else [])
    for attempt, option in enumerate(options):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, **option)
        try:
            return [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            if attempt == len(options) - 1:
                raise ItemTitlesError(f"{name}, line {reader.line_num}: {exc} (a quote left open?)") from None
    raise AssertionError("unreachable")


def _decode(data: bytes, name: str) -> str:
    found = document_kind(data[:65536], complete=len(data) <= 65536)
    if found is not None:
        raise ItemTitlesError(f"{name} looks like {found[0]}, not a table of item ids and titles")
    try:
        encoding = detect_encoding(data, complete=True, name=name)
    except DataError as exc:
        if "binary data" in str(exc):
            raise ItemTitlesError(f"{name} is binary data, not a CSV or TSV of item ids and titles") from None
        raise ItemTitlesError(bound_message(str(exc), 300)) from None
    return data.decode(encoding)


def _column_name(cell: str) -> str:
    """``"movie_title:token_seq"`` → ``"movie_title"`` (RecBole types its columns after a colon)."""
    return cell.split(":", 1)[0].strip().lower()


def _is_header(cells: list[str], known: set[str]) -> bool:
    if cells[0] in known:
        return False
    names = [_column_name(c) for c in cells]
    return names[0] in HEADER_IDS or (len(names) > 1 and ("title" in names[1] or "name" in names[1]))


def _title_column(cells: list[str]) -> int:
    names = [_column_name(c) for c in cells]
    for word in ("title", "name"):
        for index, column in enumerate(names[1:], start=1):
            if word in column:
                return index
    return 1


def _check_width(cells: list[str], width: int, header: bool, line: int, name: str) -> None:
    if len(cells) < 2:
        raise ItemTitlesError(f"{name}, line {line}: one column; expected two, item id and title")
    if header and len(cells) != width:
        raise ItemTitlesError(f"{name}, line {line}: {len(cells)} columns where the header names {width}")
    if not header and len(cells) != 2:
        raise ItemTitlesError(
            f"{name}, line {line}: {len(cells)} columns; expected two, item id and title "
            "(quote a title that holds the delimiter, or add a header naming the title column)"
        )


# -- the stored file ------------------------------------------------------------------------------


def item_ids_of_events(events_path: Path) -> set[str]:
    """The raw item ids of a parsed dataset, as its normalised events file spells them."""
    frame = pl.read_csv(events_path, separator="\t", columns=["item_id"], infer_schema_length=0)
    return set(frame["item_id"].unique().to_list())


def item_titles_write(titles: dict[str, str], path: Path) -> Path:
    """Write ``titles`` as JSON (temporary file, then renamed: readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(titles, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def item_titles_read(path: Path) -> dict[str, str]:
    """The stored titles of ``path`` (re-read only when the file changed); {} when it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _read_cached(path: str, mtime_ns: int, size: int) -> dict[str, str]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=16)
def item_titles_read_stored(name: str, stamp: str) -> dict[str, str]:
    """The titles stored as ``name`` in an object store, read once per upload (``stamp``: when it
    was uploaded); {} when it is gone or unreadable."""
    try:
        return json.loads(storage_read(name, limit=4 * TITLES_MAX_BYTES).decode("utf-8"))
    except (StorageError, ValueError):
        return {}
