"""Which text encoding a log is in, and a UTF-8 copy of it for polars, which reads UTF-8 only.

Logs arrive as they were saved: UTF-8 (with or without a byte-order mark) from most tools, UTF-16
from Excel's "Unicode text" and PowerShell, Latin-1 or Windows-1252 from older Windows exports.
The encoding is decided from the first bytes (:data:`trainer.data.sniffing.SAMPLE_BYTES`):

1. a byte-order mark decides (UTF-8, UTF-16 LE/BE; UTF-32 is refused);
2. UTF-16 without a mark is recognised by its NULs: text in Latin script has a NUL in every other
   byte, all on odd offsets (little-endian) or all on even ones (big-endian);
3. any other NUL means binary data;
4. valid UTF-8 is UTF-8;
5. otherwise text without control characters is Windows-1252 when it uses the bytes 0x80–0x9F
   (curly quotes, €), else Latin-1 — the two agree on every other byte.

Anything else is refused with the reason and the encodings tried. A file that is not UTF-8 is
transcoded once, streamed, to a temporary UTF-8 copy (:func:`utf8_copy`) that the readers parse.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trainer.data.types import DataError

log = logging.getLogger(__name__)

TRIED = "UTF-8, UTF-16 or Latin-1/Windows-1252"
UTF8 = ("utf-8", "utf-8-sig")  # what polars reads as it is (it skips the byte-order mark)
CHUNK_BYTES = 1 << 20  # transcoding and checking stream the file in 1 MiB pieces
_UTF16_PROBE = 4096  # bytes inspected for the NUL pattern of UTF-16 without a byte-order mark
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")  # never in a text log (TAB, LF, FF, CR are)
_WINDOWS_1252_ONLY = bytes(range(0x80, 0xA0))  # printable in Windows-1252, control codes in Latin-1
LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with a byte-order mark",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE (no byte-order mark)",
    "utf-16-be": "UTF-16 BE (no byte-order mark)",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1",
}


def detect_encoding(head: bytes, *, complete: bool, name: str) -> str:
    """The codec to read a file starting with ``head`` (``complete``: the whole file); see the module.

    Raises :class:`DataError` naming the line and byte that no accepted encoding explains.
    """
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DataError(f"{name}: UTF-32 text, which is not read; save the file as UTF-8")
    if head.startswith(codecs.BOM_UTF8):
        return _checked(head, "utf-8-sig", complete, name)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _checked(head, "utf-16", complete, name)  # the codec reads the mark and the byte order
    utf16 = utf16_without_bom(head)
    if utf16 is not None:
        return _checked(head, utf16, complete, name)
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(
            f"{name}, line {line_of(head, nul)}: binary data (NUL byte at offset {nul}), "
            f"not text in {TRIED}; expected a text log (CSV/TSV, .inter, one sequence per line) or "
            "a Parquet file"
        )
    try:
        _decode(head, "utf-8", complete)
        return "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    control = _CONTROL.search(head)
    if control is not None:
        bad, at = utf8_error.start, control.start()
        raise DataError(
            f"{name}, line {line_of(head, bad)}: not text in {TRIED}: byte {head[bad]:#04x} at offset "
            f"{bad} is not UTF-8, and control byte {head[at]:#04x} at offset {at} is not Latin-1 text; "
            "save the file as UTF-8"
        )
    if len(head.translate(None, _WINDOWS_1252_ONLY)) < len(head):
        return _checked(head, "cp1252", complete, name)
    return "latin-1"


def utf16_without_bom(head: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` when the NULs of ``head`` follow UTF-16's pattern, else None.

    Clear means: at least half of the bytes on one parity are NUL and almost none (≤ 1 %) on the
    other — Latin-script UTF-16 has a NUL beside every character, binary data NULs anywhere.
    """
    probe = head[: min(len(head), _UTF16_PROBE) // 2 * 2]
    if len(probe) < 4:
        return None
    half = len(probe) // 2
    even, odd = probe[0::2].count(0) / half, probe[1::2].count(0) / half
    if odd >= 0.5 and even <= 0.01:
        return "utf-16-le"
    if even >= 0.5 and odd <= 0.01:
        return "utf-16-be"
    return None


def line_of(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset`` in single-byte or UTF-8 text."""
    return data.count(b"\n", 0, offset) + 1


def decode_head(head: bytes, encoding: str, *, complete: bool) -> str:
    """The text of ``head``; a character cut in two by the end of the sample is left out."""
    return _decode(head, encoding, complete)


def label(encoding: str | None) -> str:
    """How the dataset page and the log name an encoding."""
    return LABELS.get(encoding or "", encoding or "binary (Parquet)")


def _decode(head: bytes, encoding: str, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    return decoder.decode(head, final=complete)


def _checked(head: bytes, encoding: str, complete: bool, name: str) -> str:
    try:
        text = _decode(head, encoding, complete)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: looks like {label(encoding)} but is not valid {label(encoding).split(' ')[0]} "
            f"(byte {head[exc.start]:#04x} at offset {exc.start}); tried {TRIED}; save the file as UTF-8"
        ) from None
    if "\x00" in text:
        raise DataError(f"{name}: binary data (NUL characters in {label(encoding)} text), not a text log")
    return encoding


@contextlib.contextmanager
def utf8_copy(path: Path, encoding: str | None, *, name: str) -> Iterator[Path]:
    """``path`` itself when polars can read it (UTF-8, or binary such as Parquet), else a UTF-8 copy.

    The copy is written streamed, in a temporary folder (``$TMPDIR``) removed on exit; messages
    name the original (``name``), never the copy.
    """
    if encoding is None or encoding in UTF8:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="stackrec-utf8-"))
    try:
        target = folder / "utf8.txt"
        _transcode(path, target, encoding, name)
        log.info("%s: read as %s, transcoded to UTF-8", name, label(encoding))
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _transcode(source: Path, target: Path, encoding: str, name: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    with source.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while True:
            chunk = src.read(CHUNK_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{name}, near line {line}: not valid {label(encoding)} "
                    f"(byte {exc.object[exc.start]:#04x}), though the start of the file is; "
                    "save the whole file in one encoding, preferably UTF-8"
                ) from None
            line += text.count("\n")
            dst.write(text)
            if not chunk:
                return


def find_invalid_utf8(path: Path) -> tuple[int, int, int] | None:
    """``(line, offset, byte)`` of the first byte that is not UTF-8, streamed; None if all is valid.

    Only run to explain a failed parse: the sample was UTF-8, so the bad byte lies further on.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset, line = 0, 1
    with path.open("rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # exc.start counts within the decoder's buffer, which may begin a few bytes earlier.
                held = len(exc.object) - len(chunk)
                start = max(exc.start - held, 0)
                return line + chunk.count(b"\n", 0, start), offset + start, chunk[start] if chunk else 0
            if not chunk:
                return None
            line += chunk.count(b"\n")
            offset += len(chunk)
