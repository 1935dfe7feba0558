"""Dataset services: upload → parse → stats and preview; bad uploads fail in words and can be retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webapp.conftest import synthetic_log
from webapp.core.exceptions import ApplicationError, ConflictError, PayloadTooLargeError
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_create, dataset_parse, dataset_parse_retry


def _create(user, upload, capture, **kwargs) -> tuple[Dataset, list]:
    with capture() as callbacks:
        dataset = dataset_create(owner=user, upload=upload, **kwargs)
    return dataset, callbacks


def test_upload_is_stored_and_parse_queued_on_commit(user, upload, django_capture_on_commit_callbacks):
    dataset, callbacks = _create(user, upload(), django_capture_on_commit_callbacks)
    assert dataset.status == Dataset.Status.PENDING
    assert Path(dataset.file.path).read_text() == synthetic_log()
    assert dataset.name == "clicks.csv" and dataset.size_bytes == len(synthetic_log())
    assert len(callbacks) == 1  # the parse task, sent only once the row is committed


def test_parse_gives_stats_preview_and_events_file(ready_dataset):
    dataset = ready_dataset
    assert dataset.status == Dataset.Status.READY, dataset.error
    stats = dataset.stats
    assert stats["n_sequences"] == 40 and stats["n_items"] <= 30
    assert stats["n_events"] == synthetic_log().count("\n") - 1
    assert stats["time_range"]["min"] >= 1_600_000_000 and stats["has_timestamps"]
    assert sum(b["count"] for b in stats["length_histogram"]) == 40
    assert dataset.preview["lines"][0] == "user,item,timestamp"
    assert dataset.preview["events"][0]["user"] == "u0"
    header = dataset.events_path.read_text().splitlines()[0]
    assert header.split("\t") == ["user_id", "item_id", "timestamp"]


def test_parse_twice_does_nothing_the_second_time(ready_dataset):
    assert dataset_parse(dataset_id=ready_dataset.pk) is None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00\x01\x02binary\x00garbage" * 10, "binary"),
        ("user,item\nu1,i1\nu2,i2\n", "too few events"),
        ("user,item,timestamp\nu1,i1,yesterday\nu1,i2,today\n", "timestamp"),
        ("a;b\n", "too few events"),
    ],
    ids=["binary", "single-events", "bad-timestamp", "one-line"],
)
def test_bad_uploads_fail_with_a_reason_and_keep_the_file(
    user, upload, django_capture_on_commit_callbacks, content, words
):
    dataset, _ = _create(user, upload(content, name="bad.csv"), django_capture_on_commit_callbacks)
    dataset = dataset_parse(dataset_id=dataset.pk)
    assert dataset.status == Dataset.Status.FAILED
    assert words in dataset.error.lower(), dataset.error
    assert "/" not in dataset.error.split(":")[0]  # the file is named, not the server's path
    assert Path(dataset.file.path).is_file()


def test_wrong_mapping_fails_then_retry_with_fixed_mapping_succeeds(
    user, upload, django_capture_on_commit_callbacks
):
    text = "who,what,when\n" + "\n".join(line for line in synthetic_log().splitlines()[1:]) + "\n"
    dataset, _ = _create(
        user,
        upload(text),
        django_capture_on_commit_callbacks,
        read_options={"user_col": "user", "item_col": "what"},
    )
    failed = dataset_parse(dataset_id=dataset.pk)
    assert failed.status == Dataset.Status.FAILED and "user" in failed.error
    with django_capture_on_commit_callbacks() as callbacks:
        dataset_parse_retry(
            dataset=failed, read_options={"user_col": "who", "item_col": "what", "time_col": "when"}
        )
    assert len(callbacks) == 1
    ready = dataset_parse(dataset_id=dataset.pk)
    assert ready.status == Dataset.Status.READY, ready.error
    assert ready.stats["n_sequences"] == 40


def test_retry_while_parsing_is_a_conflict(user, upload, django_capture_on_commit_callbacks):
    dataset, _ = _create(user, upload(), django_capture_on_commit_callbacks)
    with pytest.raises(ConflictError):
        dataset_parse_retry(dataset=dataset)


def test_unknown_read_option_is_rejected_before_storing(user, upload):
    with pytest.raises(ApplicationError, match="unknown key"):
        dataset_create(owner=user, upload=upload(), read_options={"user_column": "x"})
    assert not Dataset.objects.exists()


def test_empty_and_too_large_uploads_are_refused(user, upload, settings):
    with pytest.raises(ApplicationError, match="empty"):
        dataset_create(owner=user, upload=upload(""))
    settings.STUDIO_UPLOAD_MAX_BYTES = 100
    with pytest.raises(PayloadTooLargeError, match="limit is 100 bytes"):
        dataset_create(owner=user, upload=upload())


def test_increment_appends_new_events_to_the_parent(
    ready_dataset, upload, django_capture_on_commit_callbacks
):
    # New users and single new clicks of known users: the new file alone is not a trainable log.
    new = [*synthetic_log(users=5, start_user=100).splitlines()[1:], "u0,i99,1700000000"]
    increment, _ = _create(
        ready_dataset.owner,
        upload("user,item,timestamp\n" + "\n".join(new) + "\n", name="more.csv"),
        django_capture_on_commit_callbacks,
        parent=ready_dataset,
    )
    increment = dataset_parse(dataset_id=increment.pk)
    assert increment.status == Dataset.Status.READY, increment.error
    assert increment.parent == ready_dataset
    assert increment.stats["n_sequences"] == 45
    assert increment.stats["n_events"] == ready_dataset.stats["n_events"] + len(new)
    assert increment.stats["n_items"] == ready_dataset.stats["n_items"] + 1  # i99 is new


def test_increment_needs_a_ready_parent(user, upload, django_capture_on_commit_callbacks):
    parent, _ = _create(user, upload(), django_capture_on_commit_callbacks)
    with pytest.raises(ConflictError, match="ready"):
        dataset_create(owner=user, upload=upload(), parent=parent)


def _parquet_bytes() -> bytes:
    import io

    import polars as pl

    rows = [line.split(",") for line in synthetic_log().splitlines()[1:]]
    frame = pl.DataFrame(
        {"user": [r[0] for r in rows], "item": [r[1] for r in rows], "timestamp": [int(r[2]) for r in rows]}
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["lines", "parquet", "tsv-no-header"])
def test_other_formats_parse_to_the_same_normalised_events(
    user, upload, django_capture_on_commit_callbacks, fmt
):
    from trainer.data import ReadOptions, load_dataset
    from webapp.datasets.events import normalised_read_options

    if fmt == "lines":
        content, name = (
            "".join(f"{' '.join(f'i{(u + t) % 9}' for t in range(5))}\n" for u in range(12)),
            "seqs.txt",
        )
    elif fmt == "parquet":
        content, name = _parquet_bytes(), "log.parquet"
    else:
        content, name = (
            "\n".join(line.replace(",", "\t") for line in synthetic_log().splitlines()[1:]),
            "log.tsv",
        )
    dataset, _ = _create(user, upload(content, name=name), django_capture_on_commit_callbacks)
    dataset = dataset_parse(dataset_id=dataset.pk)
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.preview["lines"] == ([] if fmt == "parquet" else dataset.preview["lines"])
    options = ReadOptions.from_dict(normalised_read_options(dataset.stats["has_timestamps"]))
    reread = load_dataset(dataset.events_path, options)
    assert len(reread.sequences.items) == dataset.stats["n_events"]
    assert len(reread.sequences) == dataset.stats["n_sequences"]
    assert dataset.stats["has_timestamps"] == (fmt != "lines")
