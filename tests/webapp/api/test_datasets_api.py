"""Dataset endpoints: multipart upload (streamed, size-limited), detail with stats, retry, increments."""

from __future__ import annotations

import io
import logging.handlers
from pathlib import Path

import pytest

from tests.webapp.conftest import synthetic_log
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_parse

pytestmark = pytest.mark.django_db


def _post(api, url, text, name="clicks.csv", **fields):
    body = {"file": io.BytesIO(text.encode() if isinstance(text, str) else text), **fields}
    body["file"].name = name
    return api.post(url, body, format="multipart")


def test_upload_then_parse_then_detail(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(
            api, "/api/v1/datasets", synthetic_log(), name="log.csv", read_options='{"time_col": "timestamp"}'
        )
    assert response.status_code == 202, response.json()
    created = response.json()
    assert created["status"] == "PENDING" and created["name"] == "log.csv" and created["owner"] == "alice"
    assert created["read_options"] == {"time_col": "timestamp"}
    assert len(callbacks) == 1
    dataset_parse(dataset_id=created["id"])
    detail = api.get(f"/api/v1/datasets/{created['id']}").json()
    assert detail["status"] == "READY" and detail["stats"]["n_sequences"] == 40
    assert detail["preview"]["events"][0] == {
        "user": "u0",
        "item": detail["preview"]["events"][0]["item"],
        "timestamp": 1_600_000_000.0,
    }


def test_upload_over_the_limit_is_refused_in_words(api, settings):
    settings.STUDIO_UPLOAD_MAX_BYTES = 1000
    response = _post(api, "/api/v1/datasets", synthetic_log())
    assert response.status_code == 413
    assert response.json() == {
        "message": "the file is larger than the upload limit of 1,000 bytes",
        "extra": {"limit": 1000},
    }
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"read_options": '{"user_column": "u"}'}, 400, "unknown key(s) user_column"),
        ({"read_options": "{not json"}, 400, "read_options"),
        ({"read_options": '["a"]'}, 400, "JSON object"),
        ({"read_options": '{"format": "xlsx"}'}, 400, "format must be one of"),
    ],
)
def test_bad_mapping_options_are_refused(api, fields, status, words):
    response = _post(api, "/api/v1/datasets", synthetic_log(), **fields)
    assert response.status_code == status
    assert words in response.json()["message"], response.json()


def test_missing_and_empty_files_are_refused(api):
    response = api.post("/api/v1/datasets", {"name": "x"}, format="multipart")
    assert response.status_code == 400 and response.json()["message"].startswith("file:")
    response = _post(api, "/api/v1/datasets", b"")
    assert response.status_code == 400 and "empty" in response.json()["message"]


def test_retry_parse_with_a_new_mapping(api, django_capture_on_commit_callbacks):
    text = "who;what\n" + "".join(f"u{i // 5};i{i % 7}\n" for i in range(50))
    with django_capture_on_commit_callbacks():
        created = _post(api, "/api/v1/datasets", text, read_options='{"user_col": "user"}').json()
    failed = dataset_parse(dataset_id=created["id"])
    assert failed.status == "FAILED" and "has_header" in failed.error  # the reader says what to set
    response = api.post(
        f"/api/v1/datasets/{created['id']}/parse",
        {"read_options": {"user_col": "who", "item_col": "what", "has_header": True}},
        format="json",
    )
    assert response.status_code == 202 and response.json()["status"] == "PENDING"
    assert dataset_parse(dataset_id=created["id"]).status == "READY"
    conflict = api.post(f"/api/v1/datasets/{created['id']}/parse", {"read_options": []}, format="json")
    assert conflict.status_code == 400 and "JSON object" in conflict.json()["message"]


def test_increment_upload(api, ready_dataset, django_capture_on_commit_callbacks):
    more = "user,item,timestamp\nu0,i1,1700000000\nnew,i2,1700000001\nnew,i3,1700000002\n"
    with django_capture_on_commit_callbacks():
        response = _post(api, f"/api/v1/datasets/{ready_dataset.pk}/increments", more, name="more.csv")
    assert response.status_code == 202, response.json()
    assert response.json()["parent"] == ready_dataset.pk
    assert dataset_parse(dataset_id=response.json()["id"]).stats["n_sequences"] == 41


def test_list_is_paginated(api, user, upload, django_capture_on_commit_callbacks):
    from webapp.datasets.services import dataset_create

    with django_capture_on_commit_callbacks():
        for _ in range(3):
            dataset_create(owner=user, upload=upload())
    page = api.get("/api/v1/datasets?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert api.get("/api/v1/datasets/999").json() == {
        "message": "dataset 999 not found",
        "extra": {"dataset": 999},
    }


def test_uploads_stream_to_a_temporary_file_that_is_moved_into_place(api, monkeypatch):
    """Never in memory: the handler writes every upload to disk, and the service moves that file."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from webapp.datasets import apis, services

    seen = {}
    original = services.dataset_create

    def spy(**kwargs):
        upload = kwargs["upload"]
        seen["type"], seen["path"] = type(upload), upload.temporary_file_path()
        return original(**kwargs)

    monkeypatch.setattr(apis, "dataset_create", spy)
    response = _post(api, "/api/v1/datasets", synthetic_log())
    assert response.status_code == 202
    assert seen["type"] is TemporaryUploadedFile
    assert not Path(seen["path"]).exists()  # moved, not copied
    assert Path(Dataset.objects.get().file.path).read_text() == synthetic_log()


class _ClientGoneAway:
    """A request body that breaks off after ``sent`` bytes, as when the uploader closes the tab."""

    def __init__(self, body: bytes, sent: int) -> None:
        self.body, self.sent, self.offset = body, sent, 0

    def read(self, size: int = -1) -> bytes:
        if self.offset >= self.sent:
            raise OSError("the client closed the connection")
        size = len(self.body) if size is None or size < 0 else size
        chunk = self.body[self.offset : min(self.offset + size, self.sent)]
        self.offset += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def test_an_upload_broken_off_mid_way_leaves_no_temporary_file(user, settings, tmp_path):
    from django.core.handlers.wsgi import WSGIHandler
    from rest_framework.authtoken.models import Token

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + b"user,item\n"
        + b"u1,i1\n" * 400_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/datasets",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": _ClientGoneAway(body, sent=len(body) // 2),  # half of 2.4 MB, then nothing
        "wsgi.errors": __import__("io").StringIO(),
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}",
    }
    # Error reporting keeps the failure (its traceback, and with it the upload's open file), as a
    # buffering log handler or an error tracker does: the file must go all the same.
    kept = logging.handlers.BufferingHandler(capacity=100)
    logging.getLogger("webapp.core.exceptions").addHandler(kept)
    statuses = []
    try:
        WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    finally:
        logging.getLogger("webapp.core.exceptions").removeHandler(kept)
    assert kept.buffer and statuses and not statuses[0].startswith("2")  # refused: nothing stored
    assert list((tmp_path / "uploads").iterdir()) == []  # and no half-written temporary file


def test_the_cleanup_removes_an_upload_left_half_written_whatever_keeps_it(rf, settings, tmp_path):
    """However the body's reading ended (a client gone, an error in a view), a file that never
    arrived whole is deleted when the request ends, not when its last reference is dropped."""
    from webapp.datasets.uploads import LimitedTemporaryFileUploadHandler, UploadCleanupMiddleware

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    request = rf.post("/api/v1/datasets")
    handler = LimitedTemporaryFileUploadHandler(request)
    request._upload_handlers = [handler]
    handler.new_file("file", "big.csv", "text/csv", 10_000_000)
    handler.receive_data_chunk(b"user,item\n" * 1000, 0)
    half_written = Path(handler.file.temporary_file_path())
    assert half_written.is_file()

    def view(request):
        raise OSError("the client closed the connection")

    with pytest.raises(OSError):
        UploadCleanupMiddleware(view)(request)
    assert not half_written.exists()
