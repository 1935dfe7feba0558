"""Bad uploads as a user meets them: refused at upload (400) or parsed to FAILED, in short words.

Documents that are no log never reach storage; implausible times, overlong ids and logs too small
to train on end the parse FAILED with a message the dataset page shows, bounded and naming the
file as it was uploaded, never the server's folder. Lists of datasets stay small whatever was
uploaded. Every fixture is generated here.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from tests.webapp.conftest import synthetic_log
from trainer.data.messages import MESSAGE_MAX_CHARS
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_parse

pytestmark = pytest.mark.django_db

HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form></form></body></html>\n"


def _post(api, url, data: bytes, name: str, **fields):
    body = {"file": io.BytesIO(data), **fields}
    body["file"].name = name
    return api.post(url, body, format="multipart")


def _stored_files(media_root: Path) -> list[Path]:
    return [p for p in Path(media_root).rglob("*") if p.is_file()]


def _parsed(api, data: bytes, name: str, capture, **fields) -> Dataset:
    with capture():
        response = _post(api, "/api/v1/datasets", data, name, **fields)
    assert response.status_code == 202, response.json()
    return dataset_parse(dataset_id=response.json()["id"])


def _assert_user_message(message: str, media_root: Path) -> None:
    assert len(message) <= MESSAGE_MAX_CHARS, len(message)
    assert str(media_root) not in message and "/datasets/" not in message


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (HTML, "export.csv", "export.csv: this looks like an HTML page, not an interaction log"),
        (json.dumps([{"user": u, "item": u} for u in range(3000)]).encode(), "log.json", "a JSON document"),
        (gzip.compress(synthetic_log().encode()), "log.csv.gz", "a gzip-compressed file"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200, "tool", "an ELF executable"),
    ],
    ids=["html", "json", "gzip", "elf"],
)
def test_documents_are_refused_at_upload_and_nothing_is_stored(api, media_root, data, name, words):
    response = _post(api, "/api/v1/datasets", data, name)
    assert response.status_code == 400
    body = response.json()
    assert words in body["message"] and body["extra"] == {"field": "file"}
    assert "upload a CSV/TSV, .inter, one-sequence-per-line text or Parquet file" in body["message"]
    _assert_user_message(body["message"], media_root)
    assert not Dataset.objects.exists() and not _stored_files(media_root)


def test_a_document_as_an_increment_is_refused_too(api, ready_dataset, media_root):
    before = set(_stored_files(media_root))
    response = _post(api, f"/api/v1/datasets/{ready_dataset.pk}/increments", HTML, "more.csv")
    assert response.status_code == 400 and "an HTML page" in response.json()["message"]
    assert Dataset.objects.count() == 1 and set(_stored_files(media_root)) == before


def test_the_dashboard_upload_form_says_why_a_document_is_refused(client, user, media_root):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.login(username="alice", password="alice-password")
    response = client.post(
        "/datasets/upload", {"file": SimpleUploadedFile("page.html", HTML), "next": "/datasets/"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("page.html: this looks like an HTML page") for m in shown), shown
    assert not Dataset.objects.exists() and not _stored_files(media_root)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            b"user,item,timestamp\nu1,a,-1600020007\nu1,b,1600020000\nu1,c,1600020006000000000\n"
            + "".join(f"u2,i{i},{1600020001 + i}\n" for i in range(5)).encode(),
            ["clicks.csv: 2 of 8 timestamps", "before 1970: line 2", "nanoseconds (year 2020)"],
        ),
        (
            b"user,item\nu1,a\nu1,b\nu2,b\nu2,c\n",
            ["clicks.csv: too small to train and evaluate (3 items, 2 sequences, 4 events)", "at least one"],
        ),
        (
            synthetic_log().encode() + b"u1," + b"z" * 5_000_000 + b",1600000000\n",
            ["clicks.csv, line", "the item id is 5,000,000 characters long", "at most 256 characters"],
        ),
    ],
    ids=["timestamps", "too-small", "long-field"],
)
def test_bad_logs_end_failed_with_the_reason_on_the_dataset_page(
    api, client, media_root, django_capture_on_commit_callbacks, data, words
):
    dataset = _parsed(api, data, "clicks.csv", django_capture_on_commit_callbacks)
    assert dataset.status == Dataset.Status.FAILED
    for word in words:
        assert word in dataset.error, dataset.error
    _assert_user_message(dataset.error, media_root)
    assert api.get(f"/api/v1/datasets/{dataset.pk}").json()["error"] == dataset.error
    client.login(username="alice", password="alice-password")
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="dataset-error"' in page and words[0] in page
    assert len(page) < 100_000  # the 5 MB field appears nowhere, not even in the preview


def test_bad_timestamps_drop_is_reported_in_the_stats(api, django_capture_on_commit_callbacks):
    text = synthetic_log() + "u0,i1,-5\nu1,i2,1600000000000000000\n"
    dataset = _parsed(
        api, text.encode(), "clicks.csv", django_capture_on_commit_callbacks,
        read_options='{"bad_timestamps": "drop"}',
    )  # fmt: skip
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.stats["reading"]["dropped_bad_timestamps"] == 2
    assert dataset.stats["n_events"] == synthetic_log().count("\n") - 1
    assert dataset.stats["time_range"]["max"] < 1_700_000_000


def test_a_utf16_upload_parses_and_says_how_it_was_read(api, client, django_capture_on_commit_callbacks):
    text = synthetic_log().replace("\nu", "\nü")  # user ids ü0, ü1, …
    dataset = _parsed(api, text.encode("utf-16"), "excel.txt", django_capture_on_commit_callbacks)
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.stats["reading"]["encoding"] == "utf-16" and dataset.stats["n_sequences"] == 40
    assert dataset.preview["lines"][1].startswith("ü0,") and dataset.preview["events"][0]["user"] == "ü0"
    client.login(username="alice", password="alice-password")
    assert "utf-16" in client.get(f"/datasets/{dataset.pk}/").content.decode()


def test_lists_carry_no_preview_and_stay_small_whatever_was_uploaded(
    api, client, django_capture_on_commit_callbacks
):
    # A 5 MB note in a column the reader does not use: the dataset is fine, its first line is huge.
    rows = synthetic_log().splitlines()
    big = "\n".join([rows[0] + ",note", rows[1] + "," + "n" * 5_000_000, *(r + ",-" for r in rows[2:])])
    ready = _parsed(api, big.encode(), "notes.csv", django_capture_on_commit_callbacks)
    assert ready.status == Dataset.Status.READY, ready.error
    failed = _parsed(
        api, b"user,item\nu1," + b"z" * 5_000_000 + b"\nu1,b\n", "z.csv", django_capture_on_commit_callbacks
    )
    assert failed.status == Dataset.Status.FAILED

    listing = api.get("/api/v1/datasets")
    assert listing.status_code == 200 and len(listing.content) < 10_000
    assert all("preview" not in row for row in listing.json()["results"])
    detail = api.get(f"/api/v1/datasets/{ready.pk}")
    assert detail.json()["preview"]["lines"][1].startswith("u0,") and len(detail.content) < 20_000
    client.login(username="alice", password="alice-password")
    assert len(client.get("/datasets/").content) < 50_000


def test_read_options_echoes_are_bounded(api, media_root):
    response = _post(api, "/api/v1/datasets", synthetic_log().encode(), "log.csv",
                     read_options=json.dumps({"format": "x" * 100_000}))  # fmt: skip
    assert response.status_code == 400 and "format must be one of" in response.json()["message"]
    assert len(response.json()["message"]) <= MESSAGE_MAX_CHARS
    response = _post(api, "/api/v1/datasets", synthetic_log().encode(), "log.csv",
                     read_options=json.dumps({"user_col": "u" * 1000}))  # fmt: skip
    assert response.status_code == 400 and "the limit is 256" in response.json()["message"]


def test_a_job_on_a_log_too_small_fails_fast_without_a_server_path(
    ready_dataset, tiny_config, media_root, django_capture_on_commit_callbacks
):
    from webapp.training.attempts import training_job_run
    from webapp.training.services import training_job_create

    # A dataset parsed before the minimums existed: its events file holds two sequences of two events.
    rows = "u1\ta\t1600000000\nu1\tb\t1600000001\nu2\tb\t1600000002\nu2\tc\t1600000003\n"
    ready_dataset.events_path.write_text("user_id\titem_id\ttimestamp\n" + rows)
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk)
    assert done.status == "FAILED" and "too small to train and evaluate" in done.error, done.error
    assert len(done.error) <= MESSAGE_MAX_CHARS and str(media_root) not in done.error
