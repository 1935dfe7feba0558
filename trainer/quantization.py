"""Dynamic INT8 copies of exported artifacts (ONNX Runtime's ``quantize_dynamic``).

What gets quantised: every ``MatMul`` whose second input is a weight, with int8 weights (one scale
per tensor) and activations quantised on the fly per call (``DynamicQuantizeLinear`` +
``MatMulInteger``). For NextItNet and GRec that is every dilated convolution, because the exporter
writes each one as a single MatMul over its taps (an ONNX ``Conv`` would become ``ConvInteger``);
for SASRec it is the query/key/value, output and feed-forward projections. Left in fp32:
attention's activation × activation products (q·kᵀ and weights·v have no constant side), layer
norms, embeddings, TopK, and by default the output layer that scores every item (the quantiser
would turn its ``Gemm`` into ``MatMulInteger`` too; ``output_layer=True`` allows it): ranking
12,000 items hinges on small score differences, and at batch 1 that layer is ~5 % of the work.
The metadata records the op counts before and after; ``bench/serving.py`` measures the HR@10
change and the speed-up on ml-100k.
"""

from __future__ import annotations

import collections
import logging
import shutil
import tempfile
from pathlib import Path

import onnx

from serving.artifact import (
    METADATA_FILE,
    MODEL_FILE,
    PROP_PREFIX,
    VOCABULARY_FILE,
    file_sha256,
    read_artifact,
)
from trainer.export import ExportedArtifact, ExportError, staged_folder, write_json

logger = logging.getLogger(__name__)

QUANTIZED_OP_TYPES = ("MatMul",)


def quantize_artifact(
    src: str | Path, dst: str | Path, *, output_layer: bool = False, overwrite: bool = False
) -> ExportedArtifact:
    """Write ``dst``: the artifact at ``src`` with its graph dynamically quantised to INT8.

    ``output_layer=False`` keeps the item-scoring layer in fp32 (see the module docstring).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = read_artifact(src)  # verifies the fp32 artifact first
    meta = source.metadata
    if meta["graph"].get("precision") != "fp32":
        raise ExportError(f"{src} is already quantised ({meta['graph'].get('precision')})")
    fp32 = onnx.load(str(source.model_file))
    keep = [] if output_layer else _output_layer_nodes(fp32, source.n_items)
    with staged_folder(dst, overwrite=overwrite) as tmp:
        with tempfile.TemporaryDirectory() as scratch:
            quantize_dynamic(
                source.model_file,
                Path(scratch) / MODEL_FILE,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                nodes_to_exclude=keep,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},  # weights only; see module docstring
            )
            proto = onnx.load(str(Path(scratch) / MODEL_FILE))
        _keep_properties(proto, fp32)
        onnx.save(proto, str(tmp / MODEL_FILE))
        if (source.path / VOCABULARY_FILE).is_file():
            shutil.copyfile(source.path / VOCABULARY_FILE, tmp / VOCABULARY_FILE)
        before = _op_counts(fp32)
        after = _op_counts(proto)
        graph = {
            **meta["graph"],
            "sha256": file_sha256(tmp / MODEL_FILE),
            "bytes": (tmp / MODEL_FILE).stat().st_size,
            "precision": "int8-dynamic",
            "quantized_from": meta["graph"]["sha256"],
            "quantized_op_types": list(QUANTIZED_OP_TYPES),
            "quantized_output_layer": output_layer,
            "op_counts": {"fp32": before, "int8": after},
        }
        new_meta = {**meta, "graph": graph}
        write_json(tmp / METADATA_FILE, new_meta)
    logger.info("quantised %s → %s: %s", src, dst, _summary(before, after))
    return ExportedArtifact(Path(dst), new_meta)


def _output_layer_nodes(proto: onnx.ModelProto, n_items: int) -> list[str]:
    """Names of the nodes multiplying by the [n_items, D] item matrix (the exporter's one Gemm)."""
    item_matrices = {i.name for i in proto.graph.initializer if len(i.dims) == 2 and n_items in i.dims}
    nodes = proto.graph.node
    names = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul") and item_matrices & set(n.input)]
    # The quantiser first splits a Gemm into "<name>_MatMul" + "<name>_Add", and filters after that.
    return names + [f"{name}_MatMul" for name in names]


def _keep_properties(proto: onnx.ModelProto, source: onnx.ModelProto) -> None:
    """The quantiser may drop model metadata; serving checks the ``stackrec.*`` properties."""
    present = {p.key for p in proto.metadata_props}
    for prop in source.metadata_props:
        if prop.key.startswith(PROP_PREFIX) and prop.key not in present:
            entry = proto.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value


def _op_counts(proto: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(node.op_type for node in proto.graph.node).items()))


def _summary(before: dict[str, int], after: dict[str, int]) -> str:
    changed = sorted(op for op in set(before) | set(after) if before.get(op, 0) != after.get(op, 0))
    return ", ".join(f"{op} {before.get(op, 0)}→{after.get(op, 0)}" for op in changed)
