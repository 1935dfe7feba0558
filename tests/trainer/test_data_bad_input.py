"""Bad input is caught when a log is read, with a short sentence a user can act on.

Every fixture is generated here: documents that are no log, other encodings, implausible times,
overlong fields, logs too small to train on, and inputs that used to make messages enormous. Each
test asserts what the user reads: the words, the length bound, and no folder of the server.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trainer.data import DataError, ReadOptions, dataset_stats, load_dataset
from trainer.data.messages import MESSAGE_MAX_CHARS
from trainer.data.readers import MAX_ID_CHARS
from trainer.runs import DataSpec, check_trainable, load_data


def log_text(users: int = 4, items: int = 5, item_prefix: str = "i") -> str:
    """A small CSV with a header: each user visits ``items`` items one second apart."""
    rows = [
        f"u{u},{item_prefix}{(u + i) % items},{1_600_000_000 + 100 * u + i}\n"
        for u in range(users)
        for i in range(items)
    ]
    return "user,item,timestamp\n" + "".join(rows)


def error_of(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(DataError) as err:
        load_dataset(path, options)
    message = str(err.value)
    assert len(message) <= MESSAGE_MAX_CHARS, message
    assert str(path.parent) not in message  # the file is named, never its folder
    return message


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------- documents that are no log


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("log.csv", log_text())
    return buffer.getvalue()


def _tar() -> bytes:
    buffer = io.BytesIO()
    data = log_text().encode()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("log.csv")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _pe() -> bytes:
    header = bytearray(b"MZ" + b"\x90" * 0x3E)
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")
    return bytes(header) + b"\x00" * (0x80 - len(header)) + b"PE\x00\x00" + b"\x4c\x01" * 20


DOCUMENTS = {
    "html": (
        b"<!DOCTYPE html>\n<html><head><title>Log</title></head><body>u1,i1</body></html>\n",
        "an HTML page",
    ),
    "html-utf16": ("<html><body><p>u1 i1 i2</p></body></html>\n".encode("utf-16"), "an HTML page"),
    "json": (
        json.dumps({"events": [{"user": u, "item": u + 1} for u in range(2000)]}).encode(),
        "a JSON document",
    ),
    "json-array": (b'[\n  {"user": 1, "item": 2}\n]\n', "a JSON document"),
    "xml": (b'<?xml version="1.0"?>\n<events><e user="1" item="2"/></events>\n', "an XML document"),
    "zip": (_zip(), "a ZIP archive"),
    "gzip": (gzip.compress(log_text().encode()), "a gzip-compressed file"),
    "bz2": (bz2.compress(log_text().encode()), "a bzip2-compressed file"),
    "xz": (lzma.compress(log_text().encode()), "an xz-compressed file"),
    "7z": (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, "a 7-Zip archive"),
    "rar": (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 40, "a RAR archive"),
    "tar": (_tar(), "a tar archive"),
    "elf": (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56, "an ELF executable"),
    "pe": (_pe(), "a Windows executable"),
    "mach-o": (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 40, "a Mach-O executable"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20, "a PNG image"),
}


@pytest.mark.parametrize("kind", DOCUMENTS, ids=list(DOCUMENTS))
def test_documents_that_are_not_logs_are_refused_as_such(tmp_path, kind):
    data, what = DOCUMENTS[kind]
    msg = error_of(write(tmp_path, "upload.csv", data))
    assert msg.startswith(f"upload.csv: this looks like {what}") and "not an interaction log" in msg
    assert "upload a CSV/TSV, .inter, one-sequence-per-line text or Parquet file" in msg


def test_logs_that_resemble_documents_still_load(tmp_path):
    # Ids that start like a signature ("MZ…", "<…>") are no documents; nor is Parquet's PAR1.
    text = "user,item\n" + "".join(f"MZ{u},<i{(u + i) % 4}>\n" for u in range(3) for i in range(4))
    assert len(load_dataset(write(tmp_path, "angle.csv", text)).sequences) == 3


# ---------------------------------------------------------------------------------- encodings


ENCODED = {
    "utf-8": (lambda t: t.encode("utf-8"), "utf-8"),
    "utf-8-bom": (lambda t: t.encode("utf-8-sig"), "utf-8-sig"),
    "utf-16-le-bom": (lambda t: b"\xff\xfe" + t.encode("utf-16-le"), "utf-16"),
    "utf-16-be-bom": (lambda t: b"\xfe\xff" + t.encode("utf-16-be"), "utf-16"),
    "utf-16-le": (lambda t: t.encode("utf-16-le"), "utf-16-le"),
    "utf-16-be": (lambda t: t.encode("utf-16-be"), "utf-16-be"),
    "latin-1": (lambda t: t.encode("latin-1"), "latin-1"),
    "windows-1252": (lambda t: t.replace("é", "é€").encode("cp1252"), "cp1252"),
}


@pytest.mark.parametrize("encoding", ENCODED, ids=list(ENCODED))
def test_encodings_are_detected_and_read_like_utf8(tmp_path, encoding):
    encode, codec = ENCODED[encoding]
    text = log_text(item_prefix="café-")
    ds = load_dataset(write(tmp_path, "log.csv", encode(text)))
    expected = load_dataset(write(tmp_path, "reference.csv", text.encode()))
    assert ds.sequence_ids == expected.sequence_ids
    suffix = "€" if encoding == "windows-1252" else ""
    assert ds.vocab.raw_ids == tuple(raw.replace("é", "é" + suffix) for raw in expected.vocab.raw_ids)
    np.testing.assert_array_equal(ds.timestamps, expected.timestamps)
    assert dataset_stats(ds)["reading"]["encoding"] == codec


def test_lines_format_in_utf16_reads_its_sequences(tmp_path):
    path = write(tmp_path, "seqs.txt", "1 é1 é2 é3\n2 é2 é3\n3 é1 é3 é2\n".encode("utf-16"))
    ds = load_dataset(path)
    assert ds.sequence_ids == ("1", "2", "3") and ds.vocab.raw_ids[0] == "é1"


def test_undecodable_text_names_the_problem_and_the_encodings_tried(tmp_path):
    msg = error_of(write(tmp_path, "odd.csv", b"user,item\n1,caf\xe9\x02\n"))
    assert msg.startswith("odd.csv, line 2: not text in UTF-8, UTF-16 or Latin-1/Windows-1252")
    msg = error_of(write(tmp_path, "nul.bin", b"user,item\n1,2\n\x00\x01\x02\xff"))
    assert "line 3: binary data" in msg
    late = "user,item\n" + "u1,i1\n" * 20_000  # the first 64 KiB are UTF-8; a byte far below is not
    msg = error_of(write(tmp_path, "late.csv", late.encode() + b"u2,caf\xe9\n"))
    assert "late.csv, line 20002: not UTF-8 text (byte 0xe9" in msg


# --------------------------------------------------------------------------------- timestamps


def test_negative_and_far_future_timestamps_are_an_error_naming_lines(tmp_path):
    text = (
        "user,item,timestamp\nu1,a,-1600020007\nu1,b,1600020000\nu1,c,1600020006000000000\n"
        "u2,a,1600020001\nu2,b,1600020002\nu2,c,99999999999999999999999\n"
    )
    msg = error_of(write(tmp_path, "times.csv", text))
    assert "times.csv: 3 of 6 timestamps in column 'timestamp' are implausible" in msg
    assert "before 1970: line 2 '-1600020007'" in msg
    assert "nanoseconds (year 2020) in a column of seconds: line 4 '1600020006000000000'" in msg
    assert "after 2100 even in nanoseconds: line 7" in msg
    assert "bad_timestamps='drop'" in msg


def test_at_most_five_examples_are_quoted(tmp_path):
    rows = "".join(f"u{u},i{u % 3},-{u + 1}\n" for u in range(500))
    msg = error_of(write(tmp_path, "many.csv", "user,item,timestamp\n" + rows))
    assert "500 of 500 timestamps" in msg and msg.count("line ") == 5


def test_seconds_beside_milliseconds_are_mixed_units(tmp_path):
    rows = [f"u{u},i{i},{(1_600_000_000 + 100 * u + i) * 1000}" for u in range(3) for i in range(4)]
    text = "user,item,timestamp\n" + "\n".join([*rows, "u9,i1,1600000000"]) + "\n"
    msg = error_of(write(tmp_path, "mixed.csv", text))
    assert "seconds (year 2020) in a column of milliseconds: line 14 '1600000000'" in msg


def test_dates_before_1970_or_after_2100_are_implausible(tmp_path):
    text = "user,item,date\nu1,a,1900-01-01\nu1,b,2020-01-01\nu1,c,2020-01-02\nu1,d,2200-01-01\n"
    msg = error_of(write(tmp_path, "dates.csv", text))
    assert "before 1970: line 2 '1900-01-01'" in msg and "after 2100: line 5 '2200-01-01'" in msg


def test_bad_timestamps_drop_removes_those_events_and_reports_the_count(tmp_path):
    text = log_text() + "u0,i9,-5\nu1,i9,1600000000000000000\nu2,i9,yesterday\n"
    path = write(tmp_path, "log.csv", text)
    msg = error_of(path)
    assert "log.csv, line 24: timestamp 'yesterday'" in msg and "not a number" in msg
    ds = load_dataset(path, ReadOptions(bad_timestamps="drop"))
    assert "i9" not in ds.vocab.raw_ids and len(ds.sequences.items) == 20
    assert dataset_stats(ds)["reading"]["dropped_bad_timestamps"] == 3
    assert ds.timestamps.min() >= 1_600_000_000 and ds.timestamps.max() < 1_600_001_000


def test_a_column_entirely_in_milliseconds_is_converted_to_seconds(tmp_path):
    text = "user,item,timestamp\n" + "".join(
        f"u{u},i{i},{(1_600_000_000 + 100 * u + i) * 1000}\n" for u in range(3) for i in range(4)
    )
    ds = load_dataset(write(tmp_path, "ms.csv", text))
    assert ds.timestamps.min() == 1_600_000_000 and ds.timestamps.max() == 1_600_000_203
    assert dataset_stats(ds)["reading"]["time_unit"] == "milliseconds"


def test_bad_timestamps_option_is_validated():
    from trainer.configs import ConfigError

    with pytest.raises(ConfigError, match="bad_timestamps must be one of error, drop"):
        ReadOptions(bad_timestamps="ignore")


# ----------------------------------------------------------------------------- overlong fields


def test_an_overlong_id_names_its_line_and_length_and_is_not_echoed(tmp_path):
    text = log_text() + "u9," + "x" * 5_000_000 + ",1600000000\n"
    msg = error_of(write(tmp_path, "wide.csv", text))
    assert msg.startswith("wide.csv, line 22: the item id is 5,000,000 characters long")
    assert f"at most {MAX_ID_CHARS} characters" in msg and "x" * 30 not in msg
    assert len(load_dataset(write(tmp_path, "ok.csv", log_text() + f"u9,{'y' * 256},1\n")).vocab.raw_ids) == 6


# ------------------------------------------------------------------------------ too small to train


def _too_small(tmp_path: Path, name: str, text: str) -> str:
    ds = load_dataset(write(tmp_path, name, text))
    with pytest.raises(DataError) as err:
        check_trainable(ds)
    return str(err.value)


def test_a_log_too_small_to_train_and_evaluate_says_what_is_missing(tmp_path):
    msg = _too_small(tmp_path, "one-item.csv", "user,item\n" + "u1,i1\n" * 5 + "u2,i1\n" * 4)
    assert msg.startswith("one-item.csv: too small to train and evaluate (1 item, 2 sequences, 9 events)")
    assert "at least 2 distinct items" in msg
    msg = _too_small(tmp_path, "pairs.csv", "user,item\nu1,a\nu1,b\nu2,b\nu2,c\n")
    assert "one sequence of 3 or more events" in msg
    msg = _too_small(tmp_path, "threes.csv", "user,item\nu1,a\nu1,b\nu1,c\nu2,b\nu2,c\nu2,a\n")
    assert "one sequence of 2, or of 4 or more events, to train on" in msg
    msg = _too_small(
        tmp_path, "same.csv", "user,item\n" + "".join(f"u{u},i{i}\n" for u in range(3) for i in range(4))
    )
    assert "all 3 sequences are identical" in msg


def test_the_smallest_trainable_logs_pass(tmp_path):
    for text in ("user,item\nu1,a\nu1,b\nu1,c\nu1,d\n", "user,item\nu1,a\nu1,b\nu2,b\nu2,c\nu2,a\n"):
        check_trainable(load_dataset(write(tmp_path, "small.csv", text)))


def test_the_time_split_is_not_held_to_leave_one_out_minimums(tmp_path):
    text = "user,item,timestamp\n" + "".join(
        f"u{u},i{u % 3},{1_600_000_000 + u}\nu{u},i{(u + 1) % 3},{1_600_000_100 + u}\n" for u in range(10)
    )
    path = write(tmp_path, "pairs.csv", text)
    dataset, _ = load_data(DataSpec(path=str(path), split="time"))
    assert len(dataset.sequences) == 10
    with pytest.raises(DataError, match="one sequence of 3 or more events"):
        load_data(DataSpec(path=str(path)))


# --------------------------------------------------------------------------- messages stay short


def test_messages_are_bounded_whatever_the_input(tmp_path):
    wide_header = "user," + ",".join(f"column{i}" for i in range(4000)) + "\n1," + ",".join("0" * 4000) + "\n"
    msg = error_of(write(tmp_path, "wide.csv", wide_header))
    assert "missing column" in msg and "and 3,996 more" in msg
    ragged = "user,item,timestamp\n1,a,1\n1,b,2," + "y" * 50_000 + "\n"
    assert "line 3: ragged row: 4 fields" in error_of(write(tmp_path, "ragged.csv", ragged))
    huge_value = "user,item,timestamp\n1,a,1\n1,b," + "9" * 20_000 + "z\n"
    msg = error_of(write(tmp_path, "value.csv", huge_value))
    assert "line 3: timestamp '999" in msg and "…'" in msg
    broken = write(tmp_path, "broken.parquet", b"PAR1" + b"not really parquet " * 5_000)
    assert error_of(broken).startswith("broken.parquet: cannot be read")
    assert (
        DataError("x" * 50_000).args[0].endswith("…")
        and len(str(DataError("x" * 50_000))) == MESSAGE_MAX_CHARS
    )


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_a_log_larger_than_the_sample_is_judged_on_whole_lines(tmp_path, codec):
    # 400 lines of 520 bytes, a long note first: the 64 KiB sample ends inside a note, and that half
    # line, without its TABs, made the file look like one sequence per line.
    rows = "".join(f"{'x' * 500}\tu{n // 4}\ti{n % 7}\t{1_600_000_000 + n}\n" for n in range(400))
    path = write(tmp_path, "wide.tsv", ("note\tuser\titem\ttimestamp\n" + rows).encode(codec))
    ds = load_dataset(path)
    assert len(ds.sequences) == 100 and len(ds.sequences.items) == 400
