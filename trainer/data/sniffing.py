"""What kind of file is this? Decided from the name and the first 64 KiB, before any parsing.

Checking a sample first lets a document that is no log (an HTML page, a zip archive, a JSON
export), binary data or an unknown encoding fail with one sentence naming the file, instead of as
a parser exception from deep inside polars, or worse, as a "dataset" of one odd sequence; it also
keeps detection cheap on multi-gigabyte files. The web app runs the same check on an upload before
storing it (:func:`refuse_document`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from trainer.data.columns import looks_like_header_name
from trainer.data.encoding import decode_head, detect_encoding, label, utf16_without_bom
from trainer.data.options import ReadOptions
from trainer.data.types import DataError

log = logging.getLogger(__name__)

SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 200
PARQUET_MAGIC = b"PAR1"
DELIMITERS = ("\t", ",", ";")  # tie-break order: TAB first, since item names may contain commas
ACCEPTED = "upload a CSV/TSV, .inter, one-sequence-per-line text or Parquet file"

_ARCHIVE = "unpack it and upload the log inside"
# Leading bytes of files that are never interaction logs; (magic, what it is, what to do instead).
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or an Office file such as .xlsx)", _ARCHIVE + ", or save it as CSV"),
    (b"PK\x05\x06", "an empty ZIP archive", ""),
    (b"\x1f\x8b", "a gzip-compressed file", _ARCHIVE),
    (b"BZh", "a bzip2-compressed file", _ARCHIVE),
    (b"\xfd7zXZ\x00", "an xz-compressed file", _ARCHIVE),
    (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file", _ARCHIVE),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", _ARCHIVE),
    (b"Rar!\x1a\x07", "a RAR archive", _ARCHIVE),
    (b"\x7fELF", "an ELF executable", ""),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable", ""),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable", ""),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable", ""),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable", ""),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal executable or Java class file", ""),
    (b"%PDF-", "a PDF document", ""),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", ""),
    (b"\xff\xd8\xff", "a JPEG image", ""),
    (b"GIF87a", "a GIF image", ""),
    (b"GIF89a", "a GIF image", ""),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls/.doc)", "save it as CSV"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
)
_TAR_MAGIC = (257, b"ustar")
_HTML_TAG = re.compile(r"<(html|head|body|meta|title|script|div|table|p)[\s>/]")


@dataclass(frozen=True)
class Sample:
    """The start of a file: raw bytes, its encoding and, for text files, its first non-blank lines."""

    head: bytes
    lines: list[str]
    encoding: str | None = None  # None: binary (Parquet)

    @property
    def is_parquet(self) -> bool:
        return self.head.startswith(PARQUET_MAGIC)


def read_sample(path: Path, name: str | None = None) -> Sample:
    """Read and vet the first 64 KiB: missing, empty, non-log documents, binary or undecodable files
    are refused here. ``name`` is how messages call the file (default: its name, never its folder)."""
    name = name or path.name
    if not path.exists():
        raise DataError(f"{name}: no such file")
    if not path.is_file():
        raise DataError(f"{name}: not a regular file")
    try:
        with path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
            complete = not f.read(1)
    except OSError as exc:
        raise DataError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return sample_of(head, complete=complete, name=name)


def sample_of(head: bytes, *, complete: bool, name: str) -> Sample:
    """The vetted :class:`Sample` of a file starting with ``head`` (``complete``: that is all of it)."""
    if head.startswith(PARQUET_MAGIC):
        return Sample(head=head, lines=[])
    if not head.strip():
        raise DataError(f"{name}: the file is empty (no events)")
    refuse_document(head, name, complete=complete)
    encoding = detect_encoding(head, complete=complete, name=name)
    if encoding not in ("utf-8", "latin-1"):
        log.info("%s: text encoding %s", name, label(encoding))
    text = decode_head(head, encoding, complete=complete)
    if not complete:  # the sample ends inside a line: judging that half line would skew detection
        text = text[: text.rfind("\n") + 1] or text
    lines = [ln for ln in text.lstrip("\ufeff").splitlines() if ln.strip()][:SAMPLE_LINES]
    if not lines:
        raise DataError(f"{name}: the file is empty (no events)")
    return Sample(head=head, lines=lines, encoding=encoding)


def refuse_document(head: bytes, name: str, *, complete: bool = False) -> None:
    """Raise :class:`DataError` when ``head`` starts a document that is no interaction log.

    Parquet (``PAR1``) is a log format and passes. Used by :func:`read_sample` and by the web app's
    upload, which refuses such files before storing them.
    """
    found = document_kind(head, complete=complete)
    if found is not None:
        kind, hint = found
        raise DataError(
            f"{name}: this looks like {kind}, not an interaction log; {hint + '; ' if hint else ''}{ACCEPTED}"
        )


def document_kind(head: bytes, *, complete: bool = False) -> tuple[str, str] | None:
    """``(what it is, what to do)`` for a file starting with ``head`` that is a known non-log document.

    Binary formats are told by their magic bytes; HTML, XML and JSON by their first characters,
    once decoded (a UTF-16 HTML page is still a page).
    """
    if head.startswith(PARQUET_MAGIC):
        return None
    for magic, kind, hint in SIGNATURES:
        if head.startswith(magic):
            return kind, hint
    offset, magic = _TAR_MAGIC
    if head[offset : offset + len(magic)] == magic:
        return "a tar archive", _ARCHIVE
    if _is_windows_executable(head):
        return "a Windows executable", ""
    return _markup_kind(_leading_text(head, complete))


def _is_windows_executable(head: bytes) -> bool:
    """``MZ`` alone could start a user id; a PE file also has ``PE\\0\\0`` where its header points."""
    if not head.startswith(b"MZ") or len(head) < 0x40:
        return False
    offset = int.from_bytes(head[0x3C:0x40], "little")
    return head[offset : offset + 4] == b"PE\x00\x00"


def _leading_text(head: bytes, complete: bool) -> str:
    """The first characters of ``head`` as text, in whichever accepted encoding decodes them."""
    probe = head[:4096]
    whole = complete and len(head) <= len(probe)
    for encoding in (_bom_encoding(probe) or utf16_without_bom(probe), "utf-8", "cp1252"):
        if encoding is None:
            continue
        try:
            return decode_head(probe, encoding, complete=whole).lstrip("\ufeff \t\r\n")
        except UnicodeDecodeError:
            continue
    return ""


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else None


def _markup_kind(text: str) -> tuple[str, str] | None:
    start = text[:1024].lower()
    if start.startswith("<!doctype html") or start.startswith("<html"):
        return "an HTML page", ""
    if start.startswith("<?xml") or start.startswith("<svg"):
        return ("an SVG image" if "<svg" in start else "an XML document"), ""
    if start.startswith("<") and (_HTML_TAG.search(start) or "</" in start):
        return "an HTML or XML document", ""
    if start.startswith("{\\rtf"):
        return "an RTF document", "save it as plain text or CSV"
    if start.startswith("{") or re.match(r"\[\s*([{\[\"\]]|$)", start) or _json_line(text):
        return "a JSON document", "export the events as CSV"
    return None


def _json_line(text: str) -> bool:
    """Whether the first line is a JSON array, e.g. ``[1, 2, 3]`` (no log format looks like that)."""
    first = text.split("\n", 1)[0].strip()
    if not first.startswith("["):
        return False
    try:
        return isinstance(json.loads(first), list)
    except ValueError:
        return False


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
