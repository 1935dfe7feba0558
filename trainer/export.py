"""Export a trained model to an ONNX artifact that :mod:`serving` loads: top-k inside the graph.

The graph (names in :mod:`serving.artifact`)::

    item_seq  int64 [batch, seq]        histories as item indices, LEFT-padded with 0
    exclude   int64 [batch, n_exclude]  optional; items to drop (history, deny list); 0 = unused slot
    k         int64 [1]                 optional, 1..max_k (default max_k)
      → items int64 [batch, k], scores float32 [batch, k]   (ONNX TopK, best first)

Decisions, and why:

- **Dynamic sequence axis** (1 ≤ seq ≤ ``max_len``). Our models zero padded positions after every
  sub-layer, so a history scores the same whatever padding precedes it; a fixed-length graph would
  only add work (real Beauty histories average ~8 items, not 50: 0.27 against 0.47 ms at batch
  1). Serving pads a batch to its longest history and keeps the most recent ``max_len`` items.
- **Only what the last position needs** (``last_position=True``). Serving reads one position, so
  NextItNet/GRec compute each convolution only over the most recent positions that feed it (the
  receptive field traced back block by block), and SASRec's last block computes queries,
  attention and feed-forward for the last position only. The graphs themselves, and how
  NextItNet's convolutions are laid out for ONNX Runtime, are in :mod:`trainer.export_graphs`.
- **Padding never wins**: item 0's output bias is −inf inside the graph, and ``exclude`` scatters
  −inf, so TopK needs no special case. Rows with fewer than ``k`` candidates left return −inf
  scores at the end, which serving drops.
- ``exclude`` and ``k`` are ONNX "overridable initializers" (``[[0]]``, ``[max_k]``), so a caller may
  leave them out. ``k`` is an input because TopK's cost grows with it (see _make_k_an_input).
- Exporter: ``torch.onnx.export(dynamo=True)`` (torch.export → onnxscript, the maintained path),
  opset 18 (LayerNormalization exists from 17; 18 runs on every ONNX Runtime ≥ 1.14).

Artifacts are written into a temporary folder beside the destination and renamed when complete,
so a reader sees either no folder or a whole one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import torch

from serving.artifact import (
    FORMAT,
    INPUT_EXCLUDE,
    INPUT_ITEMS,
    INPUT_K,
    METADATA_FILE,
    MODEL_FILE,
    OUTPUT_ITEMS,
    OUTPUT_SCORES,
    PROP_PREFIX,
    SCHEMA_VERSION,
    VOCABULARY_FILE,
    file_sha256,
)
from trainer.configs import Bound, ConfigMixin, between
from trainer.data.types import Sequences, Vocabulary
from trainer.export_graphs import (  # noqa: F401  (public names, importable from here as before)
    BlockWindow,
    NextItNetLastHidden,
    PlainLastHidden,
    SASRecLastHidden,
    TopKGraph,
    conv_windows,
    flops_per_request,
    reference_topk,
)
from trainer.models.base import SequentialRecommender
from trainer.models.sasrec import SASRec

logger = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """An export that cannot be done or whose result fails its own check."""


@dataclass(frozen=True)
class ExportConfig(ConfigMixin):
    max_len: int = 0  # longest history the graph takes; 0 → the training config's max_len (or 50)
    max_k: int = 100  # items TopK returns; serving accepts k in 1..max_k
    opset: int = 18
    last_position: bool = True  # compute only what the last position needs (see module docstring)
    inline_vocabulary_max: int = 10_000  # larger catalogues get a vocabulary.json sidecar
    popular_keep: int = 1_000  # popularity fallback length (at least max_k)
    verify: bool = True  # compare ONNX Runtime with PyTorch on random histories before publishing

    section = "export"
    BOUNDS: ClassVar[dict[str, Bound]] = {
        "max_len": between(0, 1024, "0 means train.max_len; as train.max_len"),
        "max_k": between(1, 1000, "a recommendation list; TopK over more items costs every request"),
        "opset": between(17, 20, "LayerNormalization needs 17; PyTorch's exporter writes up to 20"),
        "inline_vocabulary_max": between(
            0, 1_000_000, "items kept inside metadata.json; 0: always a sidecar"
        ),
        "popular_keep": between(1, 100_000, "the popularity fallback's length"),
    }


@dataclass(frozen=True)
class ExportedArtifact:
    path: Path
    metadata: dict[str, Any]


# -- the artifact ------------------------------------------------------------------------------


def count_items(train: Sequences, n_items: int) -> np.ndarray:
    """Training occurrences per item index [n_items] (index 0 counts nothing): the fallback's input."""
    counts = np.bincount(train.items, minlength=n_items).astype(np.int64)
    counts[0] = 0
    return counts


def export_model(
    model: SequentialRecommender,
    vocab: Vocabulary,
    out_dir: str | Path,
    *,
    item_counts: np.ndarray,
    config: ExportConfig | None = None,
    train_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> ExportedArtifact:
    """Write ``out_dir`` (model.onnx + metadata.json [+ vocabulary.json]) atomically.

    ``item_counts`` are training occurrences per item index (see :func:`count_items`); they
    order the popularity fallback served to unknown users. ``train_config`` supplies ``max_len``
    when the config leaves it at 0.
    """
    config = config or ExportConfig()
    train_config = dict(train_config or {})
    if vocab.n_items != model.n_items:
        raise ExportError(f"the vocabulary has {vocab.n_items - 1} items, the model {model.n_items - 1}")
    counts = np.asarray(item_counts)
    if counts.shape != (model.n_items,):
        raise ExportError(
            f"item_counts must have one entry per item index ({model.n_items}), got {counts.shape}"
        )
    max_len = config.max_len or int(train_config.get("max_len", 50))
    if isinstance(model, SASRec):
        max_len = min(max_len, model.config.max_len)  # positions it has embeddings for
    if max_len < 2:
        raise ExportError(f"max_len must be at least 2 for a dynamic sequence axis, got {max_len}")

    started = time.perf_counter()
    with staged_folder(out_dir, overwrite=overwrite) as tmp:
        graph = TopKGraph(model, max_len=max_len, max_k=config.max_k, last_position=config.last_position)
        export_onnx_graph(graph, tmp / MODEL_FILE, max_len=max_len, opset=config.opset, n_items=model.n_items)
        if config.verify:
            check_parity(model, tmp / MODEL_FILE, max_len=max_len)
        meta = _metadata(
            model,
            vocab,
            counts,
            tmp,
            config=config,
            max_len=max_len,
            max_k=graph.max_k,
            train_config=train_config,
            metrics=metrics,
            data=data,
        )
        write_json(tmp / METADATA_FILE, meta)
    logger.info("exported %s to %s in %.1fs", model.describe(), out_dir, time.perf_counter() - started)
    return ExportedArtifact(Path(out_dir), meta)


@contextmanager
def staged_folder(out_dir: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out_dir``, renamed to it when the block ends without error.

    On error the temporary folder is deleted and ``out_dir`` is untouched. An existing ``out_dir``
    is an error unless ``overwrite``; then it is replaced by two renames (readers that open files
    by path between them find nothing, never a mixture of old and new files).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ExportError(f"{out_dir} already exists; pass overwrite=True to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.iterdir():  # the data must be on disk before the rename makes it visible
            with open(file, "rb") as f:
                os.fsync(f.fileno())
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_checkpoint(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    *,
    item_counts: np.ndarray,
    config: ExportConfig | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> ExportedArtifact:
    """:func:`export_model` for a checkpoint file, with its training config and data description."""
    from trainer.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    return export_model(
        checkpoint.model.eval(),
        checkpoint.vocab,
        out_dir,
        item_counts=item_counts,
        config=config,
        train_config=checkpoint.train_config,
        metrics=metrics or checkpoint.progress.get("best"),
        data=checkpoint.extra.get("data"),
        overwrite=overwrite,
    )


def export_onnx_graph(graph: TopKGraph, path: Path, *, max_len: int, opset: int, n_items: int) -> None:
    """Write ``graph`` to ``path`` as ONNX with dynamic batch and sequence axes.

    :func:`export_model` is the way to make an artifact; this is the step it uses, public so the
    benchmark can export the variants it compares (e.g. a :class:`PlainLastHidden` encoder).
    """
    graph = graph.eval()
    # Longer than the furthest tap a convolution moves (tracing F.pad with a negative end needs the
    # rows to exist); any length works for the other graphs.
    example_len = min(max_len, max(8, _longest_shift(graph) + 1))
    example = (torch.ones(2, example_len, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    # ``exclude`` gets its own batch axis: sharing one would let the graph read the batch size from
    # ``exclude``, which breaks when the caller leaves it at its [[0]] default.
    dynamic_shapes = {
        "item_seq": {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("seq", min=1, max=max_len)},
        "exclude": {0: torch.export.Dim("exclude_batch", min=1), 1: torch.export.Dim("n_exclude", min=1)},
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's FutureWarnings are about its own internals
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=[INPUT_ITEMS, INPUT_EXCLUDE],
            output_names=[OUTPUT_ITEMS, OUTPUT_SCORES],
            opset_version=opset,
            external_data=False,
            optimize=False,  # see _light_optimize
            verbose=False,
        )
    _light_optimize(program.model)
    program.save(str(path))
    proto = onnx.load(str(path))
    _make_exclude_optional(proto)
    _make_k_an_input(proto, graph.max_k)
    actual_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    props = {"n_items": n_items, "max_k": graph.max_k, "max_len": max_len, "opset": actual_opset}
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = PROP_PREFIX + key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _longest_shift(graph: TopKGraph) -> int:
    return max((s for m in graph.modules() for s in getattr(m, "shifts", ())), default=0)


def _light_optimize(model: Any) -> None:
    """Fold constants and drop dead nodes: what the exporter's full optimiser buys us, in 1/40 the time.

    ``optimize=True`` also runs onnxscript's pattern rewriter, which took 29 s on a 64-block graph
    (of a 42 s export) and changed nothing ONNX Runtime's own load-time optimiser does not
    (remaining difference: no-op Slices, which ONNX Runtime removes).
    """
    from onnxscript import optimizer
    from onnxscript.ir.passes import common as passes

    optimizer.fold_constants(model)
    # Every Pad of a NextItNet graph computes its row offset (shift × batch) from the batch size;
    # merging the identical computations leaves one per distinct shift (ONNX Runtime runs each
    # small shape operator for ~0.5 µs, a tenth of a batch-1 convolution).
    passes.CommonSubexpressionEliminationPass()(model)
    passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    passes.RemoveUnusedNodesPass()(model)


def _make_exclude_optional(proto: onnx.ModelProto) -> None:
    """Give ``exclude`` a default of ``[[0]]`` (an initializer with the input's name).

    ONNX Runtime then accepts calls without it; excluding index 0 is a no-op because the padding
    index already scores −inf.
    """
    default = onnx.numpy_helper.from_array(np.zeros((1, 1), dtype=np.int64), name=INPUT_EXCLUDE)
    proto.graph.initializer.append(default)


def _make_k_an_input(proto: onnx.ModelProto, max_k: int) -> None:
    """Turn TopK's constant k into an optional input ``k`` (default ``max_k``).

    Selecting the top 100 of 12,000 scores costs ONNX Runtime ~30 µs a row against ~5 µs for the
    top 10, a tenth of a NextItNet-16 row at batch 64, so callers ask for the k they need.
    torch.export cannot take k from a tensor, hence this edit of the exported graph.
    """
    (topk,) = [node for node in proto.graph.node if node.op_type == "TopK"]
    constant = topk.input[1]
    topk.input[1] = INPUT_K
    proto.graph.input.append(onnx.helper.make_tensor_value_info(INPUT_K, onnx.TensorProto.INT64, [1]))
    default = onnx.numpy_helper.from_array(np.array([max_k], dtype=np.int64), name=INPUT_K)
    proto.graph.initializer.append(default)
    if not any(constant in node.input for node in proto.graph.node):
        kept = [i for i in proto.graph.initializer if i.name != constant]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(kept)
    for output in proto.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "k"  # was max_k


def check_parity(
    model: SequentialRecommender, onnx_path: Path, *, max_len: int, atol: float = 1e-4, seed: int = 0
) -> None:
    """Run the ONNX file and the eager model on random left-padded histories; raise if they differ."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # not the warning about ``exclude`` having a default
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=5)
    seq = np.zeros((5, max_len), dtype=np.int64)
    for row, n in enumerate(lengths):
        seq[row, max_len - n :] = rng.integers(1, model.n_items, size=n)
    with torch.no_grad():
        full = model.eval().score_last(torch.from_numpy(seq)).scatter(1, torch.from_numpy(seq), -math.inf)
    max_k = session.run(None, {INPUT_ITEMS: seq[:1]})[0].shape[1]
    for k in sorted({max_k, min(3, max_k)}):  # the default k, and k given as an input
        items, scores = session.run(None, {INPUT_ITEMS: seq, INPUT_EXCLUDE: seq, INPUT_K: np.array([k])})
        ref_scores, _ = torch.topk(full, k, dim=1)
        problem = topk_mismatch(items, scores, full.numpy(), ref_scores.numpy(), atol=atol)
        if problem:
            raise ExportError(f"ONNX Runtime and PyTorch disagree on {onnx_path.name} (k={k}): {problem}")


def topk_mismatch(
    items: np.ndarray, scores: np.ndarray, full_reference: np.ndarray, ref_scores: np.ndarray, *, atol: float
) -> str | None:
    """Why an ONNX top-k differs from the reference, or None when it agrees.

    Agreement: the k scores match the reference's k best within ``atol``, and every returned item
    scores (in the reference) what the reference has at that rank, within ``atol``. Two items whose
    scores tie within ``atol`` may therefore swap places, and nothing else may differ.
    """
    if items.shape != ref_scores.shape:
        return f"shape {items.shape} against {ref_scores.shape}"
    finite = np.isfinite(ref_scores)
    if not np.array_equal(finite, np.isfinite(scores)):
        return "excluded items (−inf) in different places"
    with np.errstate(invalid="ignore"):  # −inf − −inf where both sides excluded the same slots
        gap = np.abs(np.where(finite, scores - ref_scores, 0.0))
    if gap.max(initial=0.0) > atol:
        return f"scores differ by up to {gap.max():.2e}"
    own = np.take_along_axis(full_reference, items, axis=1)  # reference score of each returned item
    with np.errstate(invalid="ignore"):
        off = np.abs(np.where(finite, own - ref_scores, 0.0))
    if off.max(initial=0.0) > atol:
        row, col = np.unravel_index(off.argmax(), off.shape)
        return f"row {row} rank {col}: item {items[row, col]} is not among the reference's top items"
    if (items[finite] == 0).any():
        return "the padding item was returned"
    return None


def _metadata(
    model: SequentialRecommender,
    vocab: Vocabulary,
    counts: np.ndarray,
    folder: Path,
    *,
    config: ExportConfig,
    max_len: int,
    max_k: int,
    train_config: dict[str, Any],
    metrics: dict[str, Any] | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    model_file = folder / MODEL_FILE
    opset = next(o.version for o in onnx.load(str(model_file)).opset_import if o.domain in ("", "ai.onnx"))
    if len(vocab.raw_ids) <= config.inline_vocabulary_max:
        vocabulary: dict[str, Any] = {"size": len(vocab.raw_ids), "raw_ids": list(vocab.raw_ids)}
    else:
        write_json(folder / VOCABULARY_FILE, list(vocab.raw_ids), indent=None)
        vocabulary = {
            "size": len(vocab.raw_ids),
            "file": VOCABULARY_FILE,
            "sha256": file_sha256(folder / VOCABULARY_FILE),
        }
    keep = min(max(config.popular_keep, max_k), model.n_items - 1)
    order = np.lexsort((np.arange(len(counts)), -counts))  # most frequent first, ties by index
    order = order[order != 0][:keep]
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": model.name,
            "config": model.config.to_dict(),
            "n_items": model.n_items,
            "blocks": len(model.blocks),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "train_config": train_config,
        "data": data,
        "metrics": metrics or {},
        "graph": {
            "file": MODEL_FILE,
            "sha256": file_sha256(model_file),
            "bytes": model_file.stat().st_size,
            "opset": opset,
            "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}, onnx {onnx.__version__}",
            "inputs": {
                INPUT_ITEMS: "int64 [batch, seq], left-padded with 0, 1 <= seq <= max_len",
                INPUT_EXCLUDE: "int64 [batch, n_exclude], optional, 0 = unused slot",
                INPUT_K: "int64 [1], optional, 1 <= k <= max_k (default max_k)",
            },
            "outputs": {OUTPUT_ITEMS: "int64 [batch, k]", OUTPUT_SCORES: "float32 [batch, k]"},
            "max_len": max_len,
            "max_k": max_k,
            "sequence_axis": "dynamic",
            "last_position": config.last_position,
            "precision": "fp32",
        },
        "vocabulary": vocabulary,
        "popularity": {
            "items": [int(i) for i in order],
            "counts": [int(counts[i]) for i in order],
            "train_events": int(counts.sum()),
        },
    }


def write_json(path: Path, payload: Any, indent: int | None = 1) -> None:
    path.write_text(json.dumps(payload, indent=indent, ensure_ascii=False), encoding="utf-8")
