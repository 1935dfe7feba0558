"""A real S3 API over HTTP for the storage tests: moto's server mode in a process of its own.

``s3_server`` starts ``moto.server`` once per session on a free port (MinIO's ``minio`` binary is
used instead when it is on the PATH and ``STUDIO_TEST_S3=minio``). ``s3_storage`` gives each test
a bucket of its own and switches Django's default storage to it, with the media folder, the scratch
folder and the artifact cache pointed at folders of the test (the media folder is never created:
nothing may be written there).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from webapp.core.storage import storages_setting

KEY, SECRET, REGION = "studio-test", "studio-test-secret", "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    kind: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )

    def env(self, bucket: str, prefix: str = "studio") -> dict[str, str]:
        """The environment a process of the product needs to use this store."""
        return {
            "DJANGO_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "DJANGO_STORAGE_ENDPOINT_URL": self.endpoint,
            "DJANGO_STORAGE_REGION": REGION,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the S3 server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (MinIO refuses anonymous requests)
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the S3 server did not answer at {url}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3-server")
    port = free_port()
    log = root / "server.log"
    env = {**os.environ}
    if os.environ.get("STUDIO_TEST_S3") == "minio" and shutil.which("minio"):
        kind = "minio"
        env.update(MINIO_ROOT_USER=KEY, MINIO_ROOT_PASSWORD=SECRET)
        command = ["minio", "server", str(root / "data"), "--address", f"127.0.0.1:{port}", "--quiet"]
    else:
        kind = "moto"
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint + ("/minio/health/live" if kind == "minio" else "/moto-api/"), process, log)
        yield S3Server(endpoint, kind)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class S3Storage:
    server: S3Server
    bucket: str
    prefix: str
    root: Path

    def keys(self) -> list[str]:
        """Every object name in the bucket below the product's prefix (the storage names)."""
        pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        start = f"{self.prefix}/"
        return sorted(o["Key"][len(start) :] for page in pages for o in page.get("Contents", []))

    def get(self, name: str) -> dict:
        return self.server.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")

    def put(self, name: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}", Body=data)

    def use(self, settings, host: str) -> Path:
        """Point this process at the store as ``host`` would be: its own media, scratch and cache
        folders under the test's folder (the media folder is never created by anything)."""
        folder = self.root / host
        settings.MEDIA_ROOT = folder / "media"
        settings.STUDIO_STORAGE_SCRATCH_DIR = folder / "scratch"
        settings.SERVING_ARTIFACT_CACHE_DIR = folder / "artifact-cache"
        return folder


@pytest.fixture
def s3_storage(s3_server, settings, tmp_path) -> S3Storage:
    bucket = f"studio-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": storages_setting(
            f"s3://{bucket}/studio",
            endpoint_url=s3_server.endpoint,
            region=REGION,
            access_key=KEY,
            secret_key=SECRET,
        ),
    }
    storage = S3Storage(s3_server, bucket, "studio", tmp_path / "hosts")
    storage.use(settings, "web")
    return storage
