"""The storage layer on both backends: the local folder (the default) and an S3 API over HTTP."""

from __future__ import annotations

import os

import pytest
from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from tests.webapp.storage.conftest import free_port
from webapp.core.storage import (
    StorageError,
    Workspace,
    storage_copy,
    storage_download,
    storage_exists,
    storage_is_local,
    storage_list,
    storage_open,
    storage_read,
    storage_read_tail,
    storage_size,
    storage_upload,
    storages_setting,
)


def test_an_empty_url_is_the_media_folder_and_s3_urls_name_bucket_and_prefix():
    assert storages_setting("") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    s3 = storages_setting("s3://models/studio/prod", endpoint_url="http://minio:9000", region="eu-west-1")
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    options = s3["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("models", "studio/prod")
    assert options["endpoint_url"] == "http://minio:9000" and options["addressing_style"] == "path"
    assert "addressing_style" not in storages_setting("s3://models")["OPTIONS"]  # AWS: virtual hosts
    for wrong in ("models", "file:///data", "s3://"):
        with pytest.raises(ImproperlyConfigured, match="s3://bucket"):
            storages_setting(wrong)


def test_local_storage_is_the_media_folder_itself_and_a_workspace_copies_nothing(media_root, tmp_path):
    assert storage_is_local()
    (media_root / "datasets" / "a").mkdir(parents=True)
    (media_root / "datasets" / "a" / "log.csv").write_text("u,i\n")
    with Workspace("parse") as workspace:
        assert workspace.root == media_root
        assert workspace.fetch("datasets/a/log.csv") == media_root / "datasets" / "a" / "log.csv"
        workspace.path("datasets/a/events.tsv").write_text("user_id\titem_id\n")
        workspace.push("datasets/a/events.tsv")  # nothing to do: it is stored already
    assert [f.basename for f in storage_list("datasets/a")] == ["events.tsv", "log.csv"]
    assert media_root.is_dir() and (media_root / "datasets" / "a" / "events.tsv").is_file()
    with pytest.raises(StorageError, match="is not in storage"):
        Workspace().fetch("datasets/a/missing.csv")


@pytest.mark.parametrize("name", ["../settings.py", "/etc/passwd", "a/../../b", ""])
def test_names_outside_the_storage_are_refused(name):
    with pytest.raises(StorageError, match="not a storage name"):
        storage_exists(name)


def test_a_large_file_goes_up_in_parts_and_comes_down_whole_without_the_media_folder(s3_storage, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:  # above boto3's 8 MiB multipart threshold
        for i in range(10):
            f.write(os.urandom(1 << 20) if i % 3 == 0 else bytes([i]) * (1 << 20))
    assert not storage_is_local()
    storage_upload(src, "jobs/1/attempt-1/final.pt")
    stored = s3_storage.get("jobs/1/attempt-1/final.pt")
    assert stored["ContentLength"] == 10 << 20
    assert stored["ETag"].strip('"').endswith("-2")  # a multipart upload's ETag counts its parts
    out = storage_download("jobs/1/attempt-1/final.pt", tmp_path / "down" / "final.pt")
    assert out.read_bytes() == src.read_bytes()
    assert not list((tmp_path / "down").glob(".*"))  # no temporary left beside it
    assert storage_size("jobs/1/attempt-1/final.pt") == 10 << 20
    assert not (tmp_path / "hosts" / "web" / "media").exists()


def test_listing_reading_ranges_copying_and_missing_files(s3_storage, tmp_path):
    s3_storage.put("artifacts/d/v1/model.onnx", b"m" * 100)
    s3_storage.put("artifacts/d/v1/metadata.json", b"{}")
    s3_storage.put("artifacts/d/v1/.partial", b"x")
    s3_storage.put("artifacts/d/v1/sub/inner.txt", b"x")
    s3_storage.put("artifacts/d/v10/model.onnx", b"other")
    listed = storage_list("artifacts/d/v1")
    assert [(f.name, f.size) for f in listed] == [
        ("artifacts/d/v1/metadata.json", 2),
        ("artifacts/d/v1/model.onnx", 100),
    ]
    assert storage_list("artifacts/none") == []
    log = b"".join(f"line {i}\n".encode() for i in range(1000))
    s3_storage.put("jobs/3/attempt-1/worker.log", log)
    tail, size = storage_read_tail("jobs/3/attempt-1/worker.log", 20)
    assert size == len(log) and tail == log[-20:]
    assert storage_read("artifacts/d/v1/metadata.json", limit=10) == b"{}"
    with pytest.raises(StorageError, match="more than the 10 read here"):
        storage_read("artifacts/d/v1/model.onnx", limit=10)
    with storage_open("artifacts/d/v1/model.onnx") as stream:
        assert b"".join(iter(lambda: stream.read(30), b"")) == b"m" * 100
    storage_copy("artifacts/d/v1/model.onnx", "artifacts/d/v2/model.onnx")
    assert s3_storage.get("artifacts/d/v2/model.onnx")["Body"].read() == b"m" * 100
    assert not storage_exists("artifacts/d/v3/model.onnx")
    with pytest.raises(StorageError, match=r"artifacts/d/v3/model\.onnx is not in storage"):
        storage_download("artifacts/d/v3/model.onnx", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_remote_workspace_fetches_pushes_and_leaves_nothing_behind(s3_storage, settings):
    s3_storage.put("datasets/a/log.csv", b"user,item\n")
    with Workspace("parse-1") as workspace:
        assert workspace.root.parent == settings.STUDIO_STORAGE_SCRATCH_DIR
        assert workspace.fetch("datasets/a/log.csv").read_bytes() == b"user,item\n"
        folder = workspace.path("artifacts/x")
        folder.mkdir(parents=True)
        for name in ("metadata.json", "model.onnx", "vocabulary.json"):
            (folder / name).write_text(name)
        (folder / ".model.onnx.tmp-1").write_text("half")
        pushed = workspace.push_folder("artifacts/x", last=("metadata.json",))
        assert pushed[-1] == "artifacts/x/metadata.json" and len(pushed) == 3
    assert not workspace.root.exists()
    assert s3_storage.keys() == [
        "artifacts/x/metadata.json",
        "artifacts/x/model.onnx",
        "artifacts/x/vocabulary.json",
        "datasets/a/log.csv",
    ]
    assert not settings.MEDIA_ROOT.exists()


def test_an_unreachable_store_is_a_storage_error_naming_the_file(s3_storage, settings):
    options = settings.STORAGES["default"]["OPTIONS"]

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {
                **options,
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "client_config": Config(retries={"max_attempts": 1}, connect_timeout=1),
            },
        },
    }
    with pytest.raises(StorageError, match=r"datasets/a/log\.csv"):
        storage_size("datasets/a/log.csv")
