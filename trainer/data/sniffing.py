"""What kind of file is this? Decided from the name and the first 64 KiB, before any parsing.

Checking a sample first lets a binary upload or a wrong encoding fail with a sentence naming the
file and line, instead of as a parser exception from deep inside polars; it also keeps detection
cheap on multi-gigabyte files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from trainer.data.columns import looks_like_header_name
from trainer.data.options import ReadOptions
from trainer.data.types import DataError

log = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 200
PARQUET_MAGIC = b"PAR1"
DELIMITERS = ("\t", ",", ";")  # tie-break order: TAB first, since item names may contain commas


@dataclass(frozen=True)
class Sample:
    """The start of a file: raw bytes and, for text files, its first non-blank lines."""

    head: bytes
    lines: list[str]

    @property
    def is_parquet(self) -> bool:
        return self.head.startswith(PARQUET_MAGIC)


def read_sample(path: Path) -> Sample:
    """Read and vet the first 64 KiB: missing, empty, binary or non-UTF-8 files are refused here."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    try:
        with path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
            complete = not f.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head.startswith(PARQUET_MAGIC):
        return Sample(head=head, lines=[])
    if not head.strip():
        raise DataError(f"{path}: the file is empty (no events)")
    if not complete:  # do not judge a multi-byte character cut in half by the sample boundary
        head = head[: head.rfind(b"\n") + 1] or head
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path}, line {line}: binary data (NUL byte at offset {nul}); expected a text log "
            "(CSV/TSV, .inter, one sequence per line) or a Parquet file"
        )
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = head.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte {head[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    lines = [ln for ln in text.lstrip("\ufeff").splitlines() if ln.strip()][:SAMPLE_LINES]
    return Sample(head=head, lines=lines)


def sniff_delimiter(lines: list[str]) -> str | None:
    """The candidate delimiter that splits the first line and keeps its field count on most lines."""
    best, best_share = None, 0.0
    for candidate in DELIMITERS:
        counts = [line.count(candidate) for line in lines]
        if not counts or counts[0] == 0:
            continue
        share = sum(c == counts[0] for c in counts) / len(counts)
        if share > best_share:
            best, best_share = candidate, share
    return best


def detect_header(lines: list[str], delimiter: str) -> bool:
    """First line is a header if it holds a known column name, or text above numeric columns."""
    rows = [split_fields(line, delimiter) for line in lines]
    first, rest = rows[0], rows[1:]
    if any(looks_like_header_name(field) for field in first):
        return True
    for col, value in enumerate(first):
        below = [row[col] for row in rest if col < len(row)]
        if below and not _is_number(value) and all(_is_number(v) for v in below):
            return True
    return False


def split_fields(line: str, delimiter: str) -> list[str]:
    """Fields of one sample line (whitespace runs when the delimiter is a space)."""
    fields = line.split() if delimiter == " " else line.split(delimiter)
    return [f.strip().strip('"') for f in fields]


def detect_format(path: Path, sample: Sample, options: ReadOptions) -> str:
    """The format to read: the option, else extension, magic bytes, then the shape of the lines.

    A TAB, comma or semicolon that splits every sampled line into the same number of fields means
    delimited; whitespace-separated tokens (TABs included) whose count varies from line to line
    mean one sequence per line. A whitespace file whose lines all have the same number of tokens
    is ambiguous; it is read as a space-delimited table only when its first line is a recognisable
    header, otherwise as sequences.
    """
    if options.format != "auto":
        return options.format
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq") or sample.is_parquet:
        return "parquet"
    if suffix == ".inter":
        return "inter"
    if options.delimiter is not None and options.delimiter != " ":
        return "delimited"
    delimiter = sniff_delimiter(sample.lines)
    if delimiter is not None and len({line.count(delimiter) for line in sample.lines}) == 1:
        return "delimited"
    varying = len({len(line.split()) for line in sample.lines}) > 1
    if delimiter in (None, "\t") and varying:
        return "lines"  # whitespace-separated tokens, a different number per line
    if delimiter is not None:
        return "delimited"  # with ragged rows, which the reader reports by line
    return "delimited" if looks_like_whitespace_table(sample.lines) else "lines"


def looks_like_whitespace_table(lines: list[str]) -> bool:
    """Same token count on every line and a header first line: ``user item timestamp`` with spaces."""
    counts = {len(line.split()) for line in lines}
    return len(counts) == 1 and any(looks_like_header_name(t) for t in lines[0].split())


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
