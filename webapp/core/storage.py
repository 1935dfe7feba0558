"""Every file the product keeps, through one interface: a local folder, or an S3-compatible object store.

Uploads, parsed events, item titles, stage checkpoints, worker logs and ONNX artifacts are named by
*storage names*: relative POSIX paths such as ``datasets/<hex>/clicks.csv``,
``jobs/7/attempt-2/stages/stage-1.pt`` or ``artifacts/dataset-3/job-7-attempt-2/model.onnx`` (the
strings the models store). Django's ``STORAGES["default"]`` decides where they live:

* ``FileSystemStorage`` on ``MEDIA_ROOT`` (the default): every process of one machine reads and
  writes the folder itself, and nothing is copied (:class:`Workspace` hands out the media paths).
* ``storages.backends.s3.S3Storage`` when ``DJANGO_STORAGE_URL=s3://bucket/prefix`` (AWS S3,
  MinIO, Ceph; see ``docs/scaling-out.md``): no two processes share a disk. A worker fetches its
  inputs into a scratch folder of its own, runs the trainer on local paths, and pushes what it
  wrote; a serving process pulls an artifact into its cache (:mod:`webapp.registry.artifacts`).

The trainer and ONNX Runtime need local paths, so the object store is reached here only, and every
transfer streams between a local file and the store: boto3's managed transfers (multipart above
``TransferConfig.multipart_threshold``, 8 MiB by default) and ranged reads, never a whole object in
memory. django-storages' own ``open()`` of an S3 object would read it whole into a temporary file
first; this module does not use it for reading.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, default_storage, storages

CHUNK = 1 << 20  # local copies and streamed responses move 1 MiB at a time


class StorageError(RuntimeError):
    """A file the storage does not have, or a store that did not answer (boto3 retried already)."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})


@dataclass(frozen=True)
class StoredFile:
    """One file directly under a storage folder."""

    name: str  # the storage name (folder/name)
    size: int

    @property
    def basename(self) -> str:
        return posixpath.basename(self.name)


# -- settings -------------------------------------------------------------------------------------


def storages_setting(
    url: str | None,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> dict[str, Any]:
    """``STORAGES["default"]`` for ``DJANGO_STORAGE_URL``: the local media folder when empty, an S3
    bucket (and key prefix) for ``s3://bucket/prefix``. Credentials left out fall back to boto3's
    own chain (the environment, ``~/.aws``, an instance or pod role)."""
    if not url:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ImproperlyConfigured(f"DJANGO_STORAGE_URL must be empty or s3://bucket[/prefix], not {url!r}")
    from botocore.config import Config

    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "file_overwrite": True,  # names are unique already (a folder per upload, per attempt)
        "default_acl": None,  # the bucket's own policy; objects are never public
        "querystring_auth": True,
        # Anything that still opens an object through django-storages spills to disk past 8 MiB.
        "max_memory_size": 8 * 1024**2,
        # Transient failures (throttling, a dropped connection, a 5xx) are retried inside boto3.
        "client_config": Config(retries={"max_attempts": 6, "mode": "standard"}, signature_version="s3v4"),
    }
    if endpoint_url:
        options["addressing_style"] = "path"  # MinIO and Ceph answer on one host name, not per bucket
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


# -- the backend --------------------------------------------------------------------------------


def storage_is_local() -> bool:
    """Whether storage is a folder of this machine (the media folder): paths can be used as they are."""
    return isinstance(storages["default"], FileSystemStorage)


def check_name(name: str) -> str:
    """``name`` if it is a relative storage name inside the root (no ``..``, not absolute)."""
    if not name or name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise StorageError(f"{name!r} is not a storage name", {"name": name})
    return name.strip("/")


def _s3() -> tuple[Any, str, str, Any]:
    """(client, bucket, key prefix, transfer config) of the S3 storage."""
    from boto3.s3.transfer import TransferConfig

    backend = storages["default"]
    client = backend.connection.meta.client
    return (
        client,
        backend.bucket_name,
        backend.location.strip("/"),
        backend.transfer_config or TransferConfig(),
    )


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _local(name: str) -> Path:
    return Path(default_storage.path(check_name(name)))


def _client_error(exc: Exception, name: str, doing: str) -> StorageError:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NotFound"):
        return StorageError(f"{name} is not in storage", {"name": name})
    return StorageError(f"the object store failed while {doing} {name}: {exc}", {"name": name})


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


# -- operations ---------------------------------------------------------------------------------


def storage_exists(name: str) -> bool:
    """Whether a file is stored under ``name``."""
    return storage_size(name) is not None


def storage_size(name: str) -> int | None:
    """The stored file's size in bytes; None when there is none."""
    name = check_name(name)
    if storage_is_local():
        path = _local(name)
        return path.stat().st_size if path.is_file() else None
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, _ = _s3()
    try:
        return int(client.head_object(Bucket=bucket, Key=_key(prefix, name))["ContentLength"])
    except ClientError as exc:
        if _missing(exc):
            return None
        raise _client_error(exc, name, "reading") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {name}: {exc}") from None


def storage_download(name: str, dest: Path) -> Path:
    """Stream the stored file ``name`` into ``dest`` (a temporary name, renamed when complete)."""
    name = check_name(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        if storage_is_local():
            try:
                shutil.copyfile(_local(name), tmp)
            except FileNotFoundError:
                raise StorageError(f"{name} is not in storage", {"name": name}) from None
        else:
            from botocore.exceptions import BotoCoreError, ClientError

            client, bucket, prefix, config = _s3()
            try:  # ranged GETs in parallel, each written to the file as it arrives
                client.download_file(bucket, _key(prefix, name), str(tmp), Config=config)
            except ClientError as exc:
                raise _client_error(exc, name, "reading") from None
            except BotoCoreError as exc:
                raise StorageError(f"the object store did not answer for {name}: {exc}") from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def storage_upload(src: Path, name: str) -> None:
    """Stream the local file ``src`` into storage as ``name``, replacing what was there.

    Readers never see half a file: an S3 object (multipart or not) appears whole when its upload
    completes; in a folder it is written under a temporary name and renamed.
    """
    name = check_name(name)
    if storage_is_local():
        dest = _local(name)
        if dest.resolve() == Path(src).resolve():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, config = _s3()
    try:
        client.upload_file(str(src), bucket, _key(prefix, name), Config=config)
    except (ClientError, S3UploadFailedError) as exc:
        raise _client_error(exc, name, "writing") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {name}: {exc}") from None


def storage_copy(src: str, dest: str) -> None:
    """Copy a stored file to another name, inside the storage (a server-side copy on S3)."""
    src, dest = check_name(src), check_name(dest)
    if storage_is_local():
        target = _local(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(_local(src), target)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system
            storage_upload(_local(src), dest)
        return
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, config = _s3()
    try:
        client.copy({"Bucket": bucket, "Key": _key(prefix, src)}, bucket, _key(prefix, dest), Config=config)
    except ClientError as exc:
        raise _client_error(exc, src, "copying") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {src}: {exc}") from None


def storage_list(folder: str) -> list[StoredFile]:
    """The files directly in ``folder`` (not in its subfolders, no hidden names), sorted by name."""
    folder = check_name(folder)
    if storage_is_local():
        path = _local(folder)
        if not path.is_dir():
            return []
        return sorted(
            (
                StoredFile(f"{folder}/{entry.name}", entry.stat().st_size)
                for entry in path.iterdir()
                if not entry.name.startswith(".") and not entry.is_symlink() and entry.is_file()
            ),
            key=lambda f: f.name,
        )
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, _ = _s3()
    start = _key(prefix, folder) + "/"
    files = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start, Delimiter="/")
        for page in pages:
            for entry in page.get("Contents", []):
                rest = entry["Key"][len(start) :]
                if rest and not rest.startswith("."):
                    files.append(StoredFile(f"{folder}/{rest}", int(entry["Size"])))
    except ClientError as exc:
        raise _client_error(exc, folder, "listing") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {folder}: {exc}") from None
    return sorted(files, key=lambda f: f.name)


def storage_read(name: str, *, limit: int) -> bytes:
    """The stored file's bytes, for small files only: :class:`StorageError` past ``limit`` bytes."""
    size = storage_size(name)
    if size is None:
        raise StorageError(f"{name} is not in storage", {"name": name})
    if size > limit:
        raise StorageError(f"{name} holds {size:,} bytes, more than the {limit:,} read here", {"name": name})
    return storage_read_range(name, 0, size)


def storage_read_range(name: str, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of the stored file (a ranged GET on S3)."""
    name = check_name(name)
    if end <= start:
        return b""
    if storage_is_local():
        with _local(name).open("rb") as file:
            file.seek(start)
            return file.read(end - start)
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, _ = _s3()
    try:
        body = client.get_object(Bucket=bucket, Key=_key(prefix, name), Range=f"bytes={start}-{end - 1}")[
            "Body"
        ]
        with body:
            return body.read()
    except ClientError as exc:
        raise _client_error(exc, name, "reading") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {name}: {exc}") from None


def storage_read_tail(name: str, nbytes: int) -> tuple[bytes, int]:
    """The last ``nbytes`` of the stored file and its whole size (a log's tail, without the rest)."""
    size = storage_size(name)
    if size is None:
        raise StorageError(f"{name} is not in storage", {"name": name})
    return storage_read_range(name, max(0, size - nbytes), size), size


def storage_open(name: str) -> IO[bytes]:
    """A binary file object that streams the stored file (a local file, or the body of one GET)."""
    name = check_name(name)
    if storage_is_local():
        try:
            return _local(name).open("rb")
        except FileNotFoundError:
            raise StorageError(f"{name} is not in storage", {"name": name}) from None
    from botocore.exceptions import BotoCoreError, ClientError

    client, bucket, prefix, _ = _s3()
    try:
        return _Stream(client.get_object(Bucket=bucket, Key=_key(prefix, name))["Body"])  # type: ignore[return-value]
    except ClientError as exc:
        raise _client_error(exc, name, "reading") from None
    except BotoCoreError as exc:
        raise StorageError(f"the object store did not answer for {name}: {exc}") from None


class _Stream:
    """botocore's streaming body as the minimal file Django's ``FileResponse`` reads chunk by chunk
    (not seekable: the response is sent in chunks without a length)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        return self._body.read(None if size is None or size < 0 else size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body.iter_chunks(CHUNK))


# -- local files for one piece of work ----------------------------------------------------------


def scratch_root() -> Path:
    return Path(settings.STUDIO_STORAGE_SCRATCH_DIR)


class Workspace:
    """Local paths for the storage names one piece of work reads and writes (a parse, a training
    attempt, a request that reads one file).

    With local storage the paths are the media folder's own: :meth:`fetch` and :meth:`push` do
    nothing, exactly as before storage could be remote. With an object store the workspace is a
    fresh folder under ``DJANGO_STORAGE_SCRATCH_DIR`` that mirrors the names: :meth:`fetch`
    streams a stored file down, :meth:`push` streams a written one up, and the folder is removed
    when the work ends (a worker keeps nothing between attempts, so it never trains on a stale copy).
    """

    def __init__(self, label: str = "work") -> None:
        self.local = storage_is_local()
        if self.local:
            self.root = Path(settings.MEDIA_ROOT)
        else:
            scratch_root().mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=scratch_root()))
        self._fetched: set[str] = set()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.local:
            shutil.rmtree(self.root, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Where the file ``name`` is (or is to be written) in this workspace."""
        return self.root / check_name(name)

    def name_of(self, path: Path) -> str:
        """The storage name of a path inside this workspace."""
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def fetch(self, name: str) -> Path:
        """The local path of the stored file ``name``, downloaded first unless storage is local."""
        path = self.path(name)
        if self.local:
            if not path.is_file():
                raise StorageError(f"{name} is not in storage", {"name": name})
            return path
        if name not in self._fetched:
            storage_download(name, path)
            self._fetched.add(name)
        return path

    def push(self, name: str) -> None:
        """Store the file written at :meth:`path` of ``name`` (nothing to do when storage is local)."""
        if not self.local:
            storage_upload(self.path(name), name)

    def push_folder(self, folder: str, *, last: Iterable[str] = ()) -> list[str]:
        """Store every file of the local ``folder`` (one level, no hidden names), those named in
        ``last`` after the others: a reader that looks for them first finds a complete folder."""
        local = self.path(folder)
        names = sorted(
            entry.name
            for entry in local.iterdir()
            if entry.is_file() and not entry.is_symlink() and not entry.name.startswith(".")
        )
        ending = [n for n in last if n in names]
        ordered = [n for n in names if n not in ending] + ending
        for filename in ordered:
            self.push(f"{folder}/{filename}")
        return [f"{folder}/{n}" for n in ordered]
