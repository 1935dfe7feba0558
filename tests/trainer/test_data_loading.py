"""Reading logs: every real file in ../shared/data, each supported format, and clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trainer.configs import ConfigError
from trainer.data import DataError, ReadOptions, dataset_stats, load_dataset, load_session_pair


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def raw_sequences(ds) -> list[list[str]]:
    """Sequences as raw item ids, so expectations read like the input file."""
    return [ds.vocab.to_raw(ds.sequences.get(i)) for i in range(len(ds.sequences))]


# ------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    ("relpath", "n_seq", "n_items", "n_events", "min_len", "max_len"),
    [
        ("ml-100k/ml-100k.inter", 943, 1682, 100_000, 20, 737),
        ("amazon-Beauty/Beauty.txt", 22_363, 12_101, 198_502, 5, 204),
        ("lastfm/LastFM.txt", 1_090, 3_646, 52_551, 5, 899),
        ("yoochoose-100k-sessionrec/yoochoose-clicks-100k_train_full.txt", 17_794, 2_933, 70_278, 2, 58),
        ("yoochoose-100k-sessionrec/yoochoose-clicks-100k_test.txt", 3_416, 1_771, 13_568, 2, 78),
    ],
)
def test_real_files_have_the_documented_counts(
    shared_data, relpath, n_seq, n_items, n_events, min_len, max_len
):
    ds = load_dataset(shared_data / relpath)
    lengths = ds.sequences.lengths()
    assert (len(ds.sequences), len(ds.vocab.raw_ids), len(ds.sequences.items)) == (n_seq, n_items, n_events)
    assert (lengths.min(), lengths.max()) == (min_len, max_len)
    assert ds.sequences.items.min() == 1 and ds.sequences.items.max() == n_items  # dense, 0 is padding
    assert len(ds.sequence_ids) == n_seq


def test_line_files_read_their_leading_user_id(shared_data):
    beauty = load_dataset(shared_data / "amazon-Beauty" / "Beauty.txt")
    assert beauty.sequence_ids[:3] == ("1", "2", "3")
    assert raw_sequences(beauty)[0] == ["1", "2", "3", "4", "5"]  # line "1 1 2 3 4 5"
    assert beauty.timestamps is None


def test_ml100k_is_time_sorted_stably_like_a_reference_sort(shared_data):
    path = shared_data / "ml-100k" / "ml-100k.inter"
    ds = load_dataset(path)
    ref = (
        pl.read_csv(path, separator="\t", infer_schema=False)
        .with_row_index("row")
        .with_columns(
            pl.col("timestamp:float").cast(pl.Float64),
            pl.col("row").min().over("user_id:token").alias("first_row"),
        )
        .sort(["first_row", "timestamp:float", "row"])
    )
    assert ref["timestamp:float"].is_duplicated().any()  # the file does have ties to break
    assert ds.vocab.to_raw(ds.sequences.items) == ref["item_id:token"].to_list()
    np.testing.assert_array_equal(ds.timestamps, ref["timestamp:float"].to_numpy())
    assert ds.sequence_ids[:2] == ("196", "186")  # first appearance in the file
    assert ds.vocab.raw_ids[0] == "242"  # first item in the file gets index 1


def test_yoochoose_session_pair(shared_data):
    folder = shared_data / "yoochoose-100k-sessionrec"
    train, test = load_session_pair(
        folder / "yoochoose-clicks-100k_train_full.txt", folder / "yoochoose-clicks-100k_test.txt"
    )
    assert (len(train.sequences), len(train.sequences.items), len(train.vocab.raw_ids)) == (
        17_794,
        70_278,
        2_933,
    )
    assert (len(test.sequences), len(test.sequences.items)) == (3_416, 13_568)  # every test item is known
    assert test.vocab is train.vocab
    assert all(len(raw) == 9 for raw in train.vocab.raw_ids[:100])  # raw 9-digit ids kept as text


def test_diginetica_pair_loads_fast_with_documented_counts(shared_data):
    folder = shared_data / "diginetica-gcegnn"
    start = time.perf_counter()
    train, test = load_session_pair(folder / "train_sessions.txt", folder / "test_sessions.txt")
    elapsed = time.perf_counter() - start
    assert (len(train.sequences), len(test.sequences)) == (186_670, 15_963)
    assert len(train.vocab.raw_ids) == 43_097
    assert len(train.sequences.items) + len(test.sequences.items) == 982_961
    assert raw_sequences(train)[:2] == [["1", "2"], ["3", "4", "5"]]  # no leading id: all tokens are items
    assert elapsed < 10, f"diginetica took {elapsed:.1f} s"


# ------------------------------------------------------------------------------- order and ids


def test_equal_timestamps_keep_file_order(tmp_path):
    path = write(tmp_path, "log.csv", "user,item,timestamp\nu1,a,5\nu2,x,1\nu1,b,3\nu1,c,5\nu1,d,3\nu2,y,1\n")
    ds = load_dataset(path)
    assert ds.sequence_ids == ("u1", "u2")
    assert raw_sequences(ds) == [["b", "d", "a", "c"], ["x", "y"]]
    np.testing.assert_array_equal(ds.timestamps, [3, 3, 5, 5, 1, 1])
    assert ds.vocab.raw_ids == ("a", "x", "b", "c", "d", "y")  # first appearance in the file


def test_file_order_without_timestamps(tmp_path):
    path = write(tmp_path, "log.tsv", "session\titem\ns2\tb\ns1\ta\ns2\tc\ns1\tb\n")
    ds = load_dataset(path)
    assert ds.timestamps is None
    assert ds.sequence_ids == ("s2", "s1")
    assert raw_sequences(ds) == [["b", "c"], ["a", "b"]]


def test_uuid_and_nine_digit_ids_map_densely(tmp_path):
    uuids = ["3f2b8c1e-9d4a-4b8e-a1c2-0d9e8f7a6b5c", "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"]
    rows = [("1", "214536502"), ("1", uuids[0]), ("2", "214536502"), ("2", uuids[1]), ("1", "007")]
    path = write(tmp_path, "ids.csv", "user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in rows))
    ds = load_dataset(path)
    assert ds.vocab.raw_ids == ("214536502", uuids[0], uuids[1], "007")  # "007" keeps its zeros
    assert ds.n_items == 5
    assert sorted(set(ds.sequences.items.tolist())) == [1, 2, 3, 4]
    assert ds.vocab.index_map()["214536502"] == 1


def test_iso_dates_and_datetimes_become_unix_seconds(tmp_path):
    text = "user;item;date\n1;a;2020-01-02\n1;b;2020-01-01T00:00:00Z\n1;c;2020-01-01 12:00:00\n"
    ds = load_dataset(write(tmp_path, "dates.csv", text))
    assert raw_sequences(ds) == [["b", "c", "a"]]
    np.testing.assert_array_equal(ds.timestamps, [1577836800, 1577836800 + 43200, 1577836800 + 86400])


# ---------------------------------------------------------------------------------- columns


def test_columns_mapped_by_name(tmp_path):
    path = write(tmp_path, "log.csv", "when,what,who\n2,b,u\n1,a,u\n")
    ds = load_dataset(path, ReadOptions(user_col="who", item_col="What", time_col="when"))
    assert raw_sequences(ds) == [["a", "b"]]


def test_columns_mapped_by_position_without_header(tmp_path):
    path = write(tmp_path, "log.csv", "b,2,u\na,1,u\nc,3,v\n")
    ds = load_dataset(path, ReadOptions(user_col=2, item_col=0, time_col=1, has_header=False))
    assert ds.sequence_ids == ("u", "v")
    assert raw_sequences(ds) == [["a", "b"], ["c"]]


def test_headerless_files_follow_user_item_time_convention(tmp_path):
    two = load_dataset(write(tmp_path, "two.csv", "u1,i1\nu1,i2\n"))
    assert raw_sequences(two) == [["i1", "i2"]] and two.timestamps is None
    three = load_dataset(write(tmp_path, "three.tsv", "u1\ti1\t1600000002\nu1\ti2\t1600000001\n"))
    assert raw_sequences(three) == [["i2", "i1"]]


def test_headerless_file_with_unclear_columns_asks_for_a_mapping(tmp_path):
    path = write(tmp_path, "ratings.csv", "196,242,3\n186,302,3\n196,377,1\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    msg = str(err.value)
    assert "ratings.csv" in msg and "ambiguous" in msg and "user_col" in msg and "#2 (e.g. '3')" in msg
    ds = load_dataset(path, ReadOptions(user_col=0, item_col=1))  # mapped: no time column
    assert ds.timestamps is None and len(ds.sequences) == 2


def test_semicolon_delimiter_and_recbole_typed_header(tmp_path):
    ds = load_dataset(
        write(tmp_path, "log.csv", "user_id:token;item_id:token;timestamp:float\n1;5;2\n1;6;1\n")
    )
    assert raw_sequences(ds) == [["6", "5"]]
    inter = write(
        tmp_path, "x.inter", "session_id:token\titem_id:token\trating:float\n1\t9\t1.0\n1\t8\t2.0\n"
    )
    assert raw_sequences(load_dataset(inter)) == [["9", "8"]]


def test_space_separated_table_with_header(tmp_path):
    ds = load_dataset(write(tmp_path, "log.txt", "user item timestamp\nu a 2\nu b 1\n"))
    assert raw_sequences(ds) == [["b", "a"]]


def test_lines_format_detects_leading_user_ids_conservatively(tmp_path):
    with_ids = load_dataset(write(tmp_path, "a.txt", "1 10 11 12\n2 11 13\n3 14 10\n"))
    assert with_ids.sequence_ids == ("1", "2", "3") and raw_sequences(with_ids)[1] == ["11", "13"]
    # Unique but not consecutive first tokens (a session file numbered by first appearance): all items.
    sessions = load_dataset(write(tmp_path, "b.txt", "1 2\n3 4 5\n6 7\n"))
    assert raw_sequences(sessions) == [["1", "2"], ["3", "4", "5"], ["6", "7"]]
    assert sessions.sequence_ids == ("1", "2", "3")  # line numbers
    forced = load_dataset(tmp_path / "b.txt", ReadOptions(lines_have_user=True))
    assert forced.sequence_ids == ("1", "3", "6") and raw_sequences(forced)[1] == ["4", "5"]


def test_lines_format_with_tabs_or_an_explicit_delimiter(tmp_path):
    tabs = load_dataset(write(tmp_path, "tabs.txt", "a\tb\tc\nd\te\n"))  # varying counts: sequences
    assert raw_sequences(tabs) == [["a", "b", "c"], ["d", "e"]]
    commas = load_dataset(
        write(tmp_path, "commas.txt", "a, b,c\nd,e\n"), ReadOptions(format="lines", delimiter=",")
    )
    assert raw_sequences(commas) == [["a", "b", "c"], ["d", "e"]]


def test_parquet_round_trip(tmp_path):
    frame = pl.DataFrame(
        {
            "visitor": [7, 7, 8, 8],
            "product": ["p2", "p1", "p3", "p1"],
            "event_time": pl.Series([2, 1, 3, 4]).cast(pl.Datetime("ms")),
        }
    )
    frame.write_parquet(tmp_path / "log.parquet")
    ds = load_dataset(tmp_path / "log.parquet")
    assert ds.sequence_ids == ("7", "8")
    assert raw_sequences(ds) == [["p1", "p2"], ["p3", "p1"]]
    np.testing.assert_allclose(ds.timestamps, [0.001, 0.002, 0.003, 0.004])
    frame.write_parquet(tmp_path / "noext")  # detected by magic bytes, too
    assert raw_sequences(load_dataset(tmp_path / "noext")) == raw_sequences(ds)


# ---------------------------------------------------------------------------------- filtering


def test_drop_consecutive_duplicates(tmp_path):
    path = write(tmp_path, "log.txt", "a a b b a\nc c\n")
    assert raw_sequences(load_dataset(path, ReadOptions(drop_consecutive_duplicates=True))) == [
        ["a", "b", "a"],
        ["c"],
    ]
    assert raw_sequences(load_dataset(path))[0] == ["a", "a", "b", "b", "a"]


def test_k_core_iterates_until_stable(tmp_path):
    path = write(tmp_path, "log.csv", "user,item\n1,a\n1,b\n1,c\n2,a\n2,b\n3,c\n3,d\n")
    # Dropping d shortens user 3 below 2, which drops the last other c, which shortens user 1.
    core = load_dataset(path, ReadOptions(k_core=2))
    assert core.sequence_ids == ("1", "2") and raw_sequences(core) == [["a", "b"], ["a", "b"]]
    assert core.vocab.raw_ids == ("a", "b")
    once = load_dataset(path, ReadOptions(min_item_count=2, min_sequence_length=2))
    assert raw_sequences(once) == [["a", "b", "c"], ["a", "b"]]  # one pass each, as named


def test_stats_are_plain_json_types(tmp_path):
    path = write(tmp_path, "log.csv", "user,item,ts\n1,a,1600000000\n1,b,1600000001\n2,a,1600000005\n")
    stats = dataset_stats(load_dataset(path))
    assert stats == {
        "n_sequences": 2,
        "n_items": 2,
        "n_events": 3,
        "length": {"min": 1, "median": 1.5, "mean": 1.5, "max": 2},
        "length_histogram": [{"lo": 1, "hi": 1, "count": 1}, {"lo": 2, "hi": 4, "count": 1}],
        "time_range": {"min": 1600000000.0, "max": 1600000005.0},
        "reading": {"encoding": "utf-8", "time_unit": "seconds", "dropped_bad_timestamps": 0},
    }


# ------------------------------------------------------------------------------------ errors


def error_of(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(DataError) as err:
        load_dataset(path, options)
    return str(err.value)


def test_missing_column_lists_the_columns_found(tmp_path):
    msg = error_of(write(tmp_path, "log.csv", "user_id,colour,size\n1,red,3\n"))
    assert "log.csv" in msg and "missing column" in msg and "item" in msg
    assert "'user_id', 'colour', 'size'" in msg
    msg = error_of(tmp_path / "log.csv", ReadOptions(item_col="product_code"))
    assert "missing column 'product_code'" in msg and "'colour'" in msg


def test_non_numeric_timestamp_names_value_and_line(tmp_path):
    msg = error_of(write(tmp_path, "log.csv", "user,item,timestamp\n1,a,100\n1,b,1O1\n"))
    assert "log.csv, line 3" in msg and "'1O1'" in msg and "not a number" in msg
    msg = error_of(write(tmp_path, "dates.csv", "user,item,date\n1,a,2020-01-01\n1,b,yesterday\n"))
    assert "dates.csv, line 3" in msg and "'yesterday'" in msg


def test_empty_files(tmp_path):
    assert "empty" in error_of(write(tmp_path, "zero.csv", ""))
    assert "empty" in error_of(write(tmp_path, "blank.txt", "\n  \n"))
    msg = error_of(write(tmp_path, "header_only.csv", "user,item\n"))
    assert "header_only.csv" in msg and "empty" in msg


def test_binary_garbage_is_refused_before_parsing(tmp_path):
    nul = tmp_path / "model.bin"
    nul.write_bytes(b"user,item\n1,2\n\x00\x01\x02\xff")
    msg = error_of(nul)
    assert "model.bin, line 3" in msg and "binary" in msg
    control = tmp_path / "control.csv"
    control.write_bytes(b"user,item\n1,caf\xe9\x01\n")  # neither UTF-8 nor Latin-1 text
    msg = error_of(control)
    assert "control.csv, line 2" in msg and "UTF-8, UTF-16 or Latin-1" in msg


def test_ragged_rows_name_the_line(tmp_path):
    msg = error_of(write(tmp_path, "long.csv", "user,item,timestamp\n1,a,1\n1,b,2,9\n"))
    assert "long.csv, line 3" in msg and "ragged" in msg and "4 fields" in msg
    msg = error_of(write(tmp_path, "short.csv", "user,item,timestamp\n1,a,1\n1,b\n"))
    assert "short.csv, line 3" in msg and "ragged" in msg and "2 fields" in msg
    msg = error_of(write(tmp_path, "hole.csv", "user,item\n1,a\n1,\n"))
    assert "hole.csv, line 3" in msg and "empty value in column 'item'" in msg


def test_too_few_events_after_filtering_says_what_was_removed(tmp_path):
    path = write(tmp_path, "log.csv", "user,item\n1,a\n1,b\n2,a\n")
    msg = error_of(path, ReadOptions(min_sequence_length=10))
    assert "log.csv" in msg and "too few events" in msg and "min_sequence_length=10 removed 3 events" in msg
    msg = error_of(write(tmp_path, "single.txt", "a\nb\n"))
    assert "too few events" in msg and "no filtering" in msg


def test_parser_failures_become_data_errors(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"not really parquet" * 10)
    msg = error_of(broken)
    assert "broken.parquet" in msg
    assert "no such file" in error_of(tmp_path / "missing.csv")


def test_read_options_are_validated():
    with pytest.raises(ConfigError, match="format"):
        ReadOptions(format="xlsx")
    with pytest.raises(ConfigError, match="k_core"):
        ReadOptions(k_core=-1)
    with pytest.raises(ConfigError, match="delimiter"):
        ReadOptions(delimiter="||")
    with pytest.raises(ConfigError, match="different columns"):
        ReadOptions(user_col=0, item_col=0)
    with pytest.raises(ConfigError, match="unknown key"):
        ReadOptions.from_dict({"min_items": 5})
    assert ReadOptions.from_dict({"k_core": 5, "time_col": "ts"}).to_dict()["k_core"] == 5
