"""A version's ONNX artifact as a local folder, wherever storage keeps it.

:func:`serving.Recommender.load` opens a folder. With local storage that is the media folder
itself (nothing is copied). With an object store, each host keeps a cache
(``SERVING_ARTIFACT_CACHE_DIR``) and :func:`artifact_local` pulls a version into it the first time
a process of that host needs it:

1. read ``metadata.json`` (small) from storage; its SHA-256 names the cache folder, so a folder
   never holds two different artifacts, whatever the database's ids;
2. stream every file of the artifact's storage folder into a temporary folder beside the cache;
3. check the model file and the vocabulary sidecar against the checksums ``metadata.json``
   records, and refuse the pull with the file's name when one differs;
4. rename the folder into place (atomic: a process of the same host that pulls the same version
   at the same moment keeps the first complete folder), and keep the newest
   ``SERVING_ARTIFACT_CACHE_KEEP`` versions of the dataset.

:func:`serving.Recommender.load` then reads the folder with every check of its own. A pull that
failed is not tried again for :data:`RETRY_AFTER_S`: the process keeps answering with the version
it has instead of downloading on every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings

from serving.artifact import FORMAT, METADATA_FILE, SCHEMA_VERSION, file_sha256, read_artifact
from serving.errors import ArtifactError
from webapp.core.storage import (
    StorageError,
    storage_download,
    storage_is_local,
    storage_list,
    storage_read,
)
from webapp.registry.models import ModelVersion

logger = logging.getLogger(__name__)

METADATA_MAX_BYTES = 256 * 1024**2  # inline vocabularies of large catalogues go to a sidecar well before
RETRY_AFTER_S = 30.0
_failed: dict[tuple[int, str], tuple[float, ArtifactError]] = {}
_failed_lock = threading.Lock()


def artifact_metadata(version: ModelVersion) -> dict[str, Any]:
    """``metadata.json`` of ``version``'s artifact, read from storage; :class:`ArtifactError` if it
    is missing or no metadata of this format."""
    return _parse_metadata(_metadata_bytes(version), version)


def _metadata_bytes(version: ModelVersion) -> bytes:
    try:
        return storage_read(f"{version.artifact_dir}/{METADATA_FILE}", limit=METADATA_MAX_BYTES)
    except StorageError as exc:
        raise ArtifactError(f"{METADATA_FILE} of {version.label} cannot be read: {exc.message}") from None


def _parse_metadata(data: bytes, version: ModelVersion) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{METADATA_FILE} of {version.label} cannot be read: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{METADATA_FILE} of {version.label} is not a {FORMAT} metadata file")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"{version.label} has metadata schema {meta.get('schema_version')!r}; "
            f"this code reads {SCHEMA_VERSION}"
        )
    return meta


def _checksums(meta: dict[str, Any], version: ModelVersion) -> dict[str, str]:
    """File name → SHA-256 that ``metadata.json`` records (the model, and a vocabulary sidecar)."""
    graph, vocabulary = meta.get("graph"), meta.get("vocabulary")
    if not isinstance(graph, dict) or not isinstance(graph.get("file"), str) or "sha256" not in graph:
        raise ArtifactError(f"{METADATA_FILE} of {version.label} names no model file with its checksum")
    sums = {graph["file"]: str(graph["sha256"])}
    if isinstance(vocabulary, dict) and isinstance(vocabulary.get("file"), str):
        sums[vocabulary["file"]] = str(vocabulary.get("sha256", ""))
    return sums


def artifact_check(version: ModelVersion) -> None:
    """Raise :class:`ArtifactError` unless ``version``'s artifact reads back complete (before an
    activation). Local storage: every check of :func:`serving.artifact.read_artifact`. An object
    store: the metadata, and every file it names stored, the model at the size it records; the
    checksums are compared by each host when it pulls the files (:func:`artifact_local`)."""
    if storage_is_local():
        read_artifact(version.artifact_path)
        return
    meta = artifact_metadata(version)
    try:
        stored = {f.basename: f.size for f in storage_list(version.artifact_dir)}
    except StorageError as exc:
        raise ArtifactError(f"the files of {version.label} cannot be listed: {exc.message}") from None
    for name in _checksums(meta, version):
        if name not in stored:
            raise ArtifactError(f"{name} of {version.label} is not in storage", {"file": name})
    graph = meta["graph"]
    if isinstance(graph.get("bytes"), int) and stored[graph["file"]] != graph["bytes"]:
        raise ArtifactError(
            f"{graph['file']} of {version.label} holds {stored[graph['file']]:,} bytes; its metadata says "
            f"{graph['bytes']:,}",
            {"file": graph["file"]},
        )


def artifact_local(version: ModelVersion) -> Path:
    """A local folder holding ``version``'s verified artifact, ready for :func:`Recommender.load`:
    the media folder's own with local storage, else this host's cache (pulled now if absent).
    :class:`ArtifactError` when the artifact is missing or a file differs from its checksum."""
    if storage_is_local():
        return version.artifact_path
    key = (version.pk, version.artifact_dir)
    with _failed_lock:
        failed = _failed.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_S:
        raise failed[1]
    try:
        folder = _pull(version)
    except ArtifactError as exc:
        with _failed_lock:
            _failed[key] = (time.monotonic(), exc)
        raise
    with _failed_lock:
        _failed.pop(key, None)
    return folder


def artifact_cache_forget() -> None:
    """Forget failed pulls (tests; the cache folder itself stays)."""
    with _failed_lock:
        _failed.clear()


def _pull(version: ModelVersion) -> Path:
    started = time.perf_counter()
    data = _metadata_bytes(version)
    meta = _parse_metadata(data, version)
    sums = _checksums(meta, version)
    cache = Path(settings.SERVING_ARTIFACT_CACHE_DIR) / f"dataset-{version.dataset_id}"
    folder = cache / f"v{version.number}-{hashlib.sha256(data).hexdigest()[:16]}"
    if (folder / METADATA_FILE).is_file():
        os.utime(folder)  # the newest used: kept by the eviction below
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".pull-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        try:
            files = [f for f in storage_list(version.artifact_dir) if f.basename != METADATA_FILE]
            missing = sorted(set(sums) - {f.basename for f in files})
            if missing:
                raise ArtifactError(
                    f"{missing[0]} of {version.label} is not in storage", {"file": missing[0]}
                )
            for stored in files:
                storage_download(stored.name, tmp / stored.basename)
        except StorageError as exc:
            raise ArtifactError(f"{version.label} cannot be pulled from storage: {exc.message}") from None
        for name, expected in sums.items():
            actual = file_sha256(tmp / name)
            if actual != expected:
                raise ArtifactError(
                    f"{name} of {version.label} in storage does not match its {METADATA_FILE} "
                    f"(sha256 {actual[:12]}…, expected {expected[:12]}…)",
                    {"file": name, "sha256": actual, "expected": expected},
                )
        (tmp / METADATA_FILE).write_bytes(data)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process of this host renamed the same pull into place first
            if not (folder / METADATA_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(f.stat().st_size for f in folder.iterdir())
    logger.info(
        "pulled %s (%.1f MB) into %s in %.2f s",
        version.label,
        size / 1e6,
        folder,
        time.perf_counter() - started,
    )
    _evict(cache, keep=folder)
    return folder


def _evict(cache: Path, *, keep: Path) -> None:
    """Keep the newest ``SERVING_ARTIFACT_CACHE_KEEP`` pulled versions of one dataset (``keep`` always)."""
    limit = max(1, settings.SERVING_ARTIFACT_CACHE_KEEP)
    folders = sorted(
        (p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[limit - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
