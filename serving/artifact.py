"""The exported-model folder: its file layout, and reading it back with every consistency check.

Serving owns this format (the trainer's exporter writes it by importing the names below), so the
writer and the reader cannot drift apart. A folder holds::

    model.onnx        item-index histories in, top-k item indices and scores out
    metadata.json     what the model is and everything needed to serve it (see below)
    vocabulary.json   only for large catalogues: the raw item ids, a JSON list (index i ↔ ids[i-1])

``metadata.json``::

    format, schema_version, created_at (UTC ISO 8601)
    model:       name, config, n_items (output size, padding included), parameters
    train_config, data, metrics       as the trainer recorded them (informational)
    graph:       file, sha256, bytes, opset, exporter, inputs, outputs,
                 max_len, max_k, sequence_axis, last_position, precision
    vocabulary:  size and either raw_ids (inline) or file + sha256 (sidecar)
    popularity:  items (indices, most popular first), counts, train_events

The ONNX file also carries ``stackrec.*`` metadata properties (n_items, max_k, max_len, opset)
copied from the graph at export, which :mod:`serving.recommender` compares with this file once the
session is open. This module needs neither torch nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.errors import ArtifactError

FORMAT = "stackrec-onnx"
SCHEMA_VERSION = 1
MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
VOCABULARY_FILE = "vocabulary.json"

# Graph interface, fixed by the exporter.
INPUT_ITEMS = "item_seq"  # int64 [batch, seq], left-padded with 0
INPUT_EXCLUDE = "exclude"  # int64 [batch, n_exclude]; optional (defaults to "nothing"); 0 = unused slot
INPUT_K = "k"  # int64 [1], 1..max_k; optional (defaults to max_k): TopK's cost grows with k
OUTPUT_ITEMS = "items"  # int64 [batch, k], best first
OUTPUT_SCORES = "scores"  # float32 [batch, k]; -inf where fewer than k items were left
PROP_PREFIX = "stackrec."  # ONNX metadata_props keys written by the exporter


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A verified artifact folder, ready for an ONNX Runtime session."""

    path: Path
    metadata: dict[str, Any]
    raw_ids: tuple[str, ...]  # index i ↔ raw_ids[i - 1]
    popular: np.ndarray  # int64 item indices, most popular first
    popular_share: np.ndarray  # float64 share of training events of each popular item

    @property
    def model_file(self) -> Path:
        return self.path / self.metadata["graph"]["file"]

    @property
    def n_items(self) -> int:
        """Output size of the model: every item plus the padding index 0."""
        return int(self.metadata["model"]["n_items"])

    @property
    def max_len(self) -> int:
        return int(self.metadata["graph"]["max_len"])

    @property
    def max_k(self) -> int:
        return int(self.metadata["graph"]["max_k"])


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ArtifactError(f"{where} lacks {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ArtifactError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing", {"path": str(path)}) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}", {"path": str(path)}) from None


def read_artifact(path: str | Path) -> Artifact:
    """Read ``metadata.json`` and the vocabulary, and check them against each other and the files.

    Checks: format and schema version, the model file's SHA-256, the vocabulary's size (and the
    sidecar's SHA-256), unique string ids, popularity indices inside the catalogue. The checks that
    need the ONNX graph itself happen when the session opens.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact folder {path} does not exist", {"path": str(path)})
    meta = _read_json(path / METADATA_FILE)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{path / METADATA_FILE} is not a {FORMAT} metadata file")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has metadata schema {meta.get('schema_version')!r}; this code reads {SCHEMA_VERSION}"
        )
    model = _require(meta, "model", dict, "metadata")
    graph = _require(meta, "graph", dict, "metadata")
    vocab_meta = _require(meta, "vocabulary", dict, "metadata")
    popularity = _require(meta, "popularity", dict, "metadata")
    n_items = _require(model, "n_items", int, "metadata.model")
    for key in ("max_len", "max_k", "opset"):
        if _require(graph, key, int, "metadata.graph") < 1:
            raise ArtifactError(f"metadata.graph.{key} must be positive")

    model_file = path / _require(graph, "file", str, "metadata.graph")
    if not model_file.is_file():
        raise ArtifactError(f"model file {model_file} is missing", {"path": str(model_file)})
    expected = _require(graph, "sha256", str, "metadata.graph")
    actual = file_sha256(model_file)
    if actual != expected:
        raise ArtifactError(
            f"{model_file} does not match its metadata (sha256 {actual[:12]}…, expected {expected[:12]}…)",
            {"path": str(model_file), "sha256": actual, "expected": expected},
        )

    raw_ids = _read_vocabulary(path, vocab_meta)
    if len(raw_ids) != n_items - 1:
        raise ArtifactError(
            f"vocabulary holds {len(raw_ids)} items but the model scores {n_items - 1}",
            {"vocabulary": len(raw_ids), "model": n_items - 1},
        )

    popular = np.asarray(_require(popularity, "items", list, "metadata.popularity"), dtype=np.int64)
    counts = np.asarray(_require(popularity, "counts", list, "metadata.popularity"), dtype=np.float64)
    events = _require(popularity, "train_events", int, "metadata.popularity")
    if len(popular) != len(counts) or (len(popular) and (popular.min() < 1 or popular.max() >= n_items)):
        raise ArtifactError("metadata.popularity lists items outside the catalogue")
    share = counts / events if events > 0 else np.zeros_like(counts)
    return Artifact(path=path, metadata=meta, raw_ids=raw_ids, popular=popular, popular_share=share)


def _read_vocabulary(path: Path, vocab_meta: dict[str, Any]) -> tuple[str, ...]:
    if "raw_ids" in vocab_meta:
        ids = vocab_meta["raw_ids"]
    else:
        sidecar = path / _require(vocab_meta, "file", str, "metadata.vocabulary")
        if not sidecar.is_file():
            raise ArtifactError(f"vocabulary file {sidecar} is missing", {"path": str(sidecar)})
        expected = _require(vocab_meta, "sha256", str, "metadata.vocabulary")
        if file_sha256(sidecar) != expected:
            raise ArtifactError(f"{sidecar} does not match its metadata (sha256 differs)")
        ids = _read_json(sidecar)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArtifactError("the vocabulary must be a list of raw item ids as strings")
    if _require(vocab_meta, "size", int, "metadata.vocabulary") != len(ids):
        raise ArtifactError(f"metadata.vocabulary.size says {vocab_meta['size']}, the list holds {len(ids)}")
    if len(set(ids)) != len(ids):
        raise ArtifactError("the vocabulary lists some raw item id twice")
    return tuple(ids)
