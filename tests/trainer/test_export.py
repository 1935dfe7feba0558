"""ONNX export: the graph answers what the eager model answers, and the artifact is complete and atomic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from serving import Recommender
from serving.artifact import file_sha256, read_artifact
from trainer.checkpoint import save_checkpoint
from trainer.cli import main
from trainer.data import load_dataset
from trainer.data.types import Sequences, Vocabulary
from trainer.export import (
    BlockWindow,
    ExportConfig,
    ExportError,
    TopKGraph,
    conv_windows,
    count_items,
    export_model,
    flops_per_request,
    topk_mismatch,
)
from trainer.models import build_model, model_config
from trainer.quantization import quantize_artifact

N_ITEMS = 60  # padding + 59 items: small, so a 32-block export stays quick
MAX_LEN = 20
MAX_K = 10
ATOL = 1e-4  # the bound on |score_onnx − score_torch|


def make_model(name: str, blocks: int, n_items: int = N_ITEMS, **options) -> torch.nn.Module:
    """A randomly initialised model whose blocks all matter (α ≠ 0, as after training)."""
    torch.manual_seed(blocks)
    if name == "sasrec-pre":
        name, options = "sasrec", {"norm_position": "pre", **options}
    config = model_config(name, {"blocks": blocks, "embedding_dim": 8, **options})
    model = build_model(name, config, n_items)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("alpha"):
                p.fill_(0.5)
    return model.eval()


def counts_for(n_items: int) -> np.ndarray:
    counts = np.arange(n_items, 0, -1, dtype=np.int64)
    counts[0] = 0
    return counts


def vocab_for(n_items: int) -> Vocabulary:
    return Vocabulary(tuple(str(100 + i) for i in range(1, n_items)))


def export(model, out: Path, overwrite: bool = False, **config) -> Path:
    config = {"max_k": MAX_K, "verify": False, **config}
    export_model(
        model,
        vocab_for(model.n_items),
        out,
        item_counts=counts_for(model.n_items),
        config=ExportConfig(max_len=MAX_LEN, **config),
        overwrite=overwrite,
    )
    return out


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path / "model.onnx"), options, providers=["CPUExecutionProvider"])


def random_histories(rows: int, n_items: int, seed: int) -> np.ndarray:
    """Left-padded histories of random lengths 1..MAX_LEN (the widest row sets the width)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, MAX_LEN + 1, size=rows)
    seq = np.zeros((rows, int(lengths.max())), dtype=np.int64)
    for row, n in enumerate(lengths):
        seq[row, seq.shape[1] - n :] = rng.integers(1, n_items, size=n)
    return seq


def assert_parity(model, sess: ort.InferenceSession, seq: np.ndarray, exclude: np.ndarray | None) -> None:
    feed = {"item_seq": seq} if exclude is None else {"item_seq": seq, "exclude": exclude}
    items, scores = sess.run(None, feed)
    with torch.no_grad():
        full = model.score_last(torch.from_numpy(seq))
        if exclude is not None:
            full = full.scatter(1, torch.from_numpy(exclude), -math.inf)
        ref_scores, ref_items = torch.topk(full, MAX_K, dim=1)
    problem = topk_mismatch(items, scores, full.numpy(), ref_scores.numpy(), atol=ATOL)
    assert problem is None, problem
    # Ties within 1e-4 may swap neighbours; with random weights there should be (almost) none.
    assert (items == ref_items.numpy()).mean() > 0.98


# -- parity: three models at 2 and 16 blocks (NextItNet at 32 too), batch 1, 7, 64, random and real

# 32 blocks (64 dilated convolutions, twice the default ceiling): an export takes 10-40 s (torch.export
# tracing grows with depth), so only NextItNet, the model StackRec stacks deepest, is checked that
# deep; GRec and SASRec at 2 and 16 blocks.
MODELS = ("nextitnet", "grec", "sasrec")
DEPTH_CASES = [(name, blocks) for name in MODELS for blocks in (2, 16)] + [
    pytest.param("nextitnet", 32, marks=pytest.mark.slow)
]


@pytest.fixture(scope="module")
def beauty(request, tmp_path_factory) -> tuple[int, list[np.ndarray]] | None:
    """Real histories: the first 150 users of Amazon Beauty in their own small vocabulary.

    The parity models are built for this catalogue, so random and real histories share one export.
    None when the shared data folder is missing (then only random histories are checked).
    """
    try:
        shared = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None
    path = tmp_path_factory.mktemp("beauty") / "beauty-head.txt"
    with (shared / "amazon-Beauty" / "Beauty.txt").open() as f:
        path.write_text("".join(f.readline() for _ in range(150)))
    dataset = load_dataset(path)
    seqs = dataset.sequences
    return dataset.n_items, [seqs.get(i)[-MAX_LEN:] for i in range(len(seqs))]


@pytest.fixture(scope="module")
def exported(beauty, tmp_path_factory):
    """Export each (model, depth) once for the module (a 32-block export takes several seconds)."""
    n_items = beauty[0] if beauty else N_ITEMS
    cache: dict[tuple[str, int], tuple[torch.nn.Module, ort.InferenceSession]] = {}

    def get(name: str, blocks: int):
        if (name, blocks) not in cache:
            model = make_model(name, blocks, n_items)
            out = export(model, tmp_path_factory.mktemp(f"{name}-{blocks}") / "artifact")
            cache[name, blocks] = (model, session(out))
        return cache[name, blocks]

    return get


def left_pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, width - len(r) :] = r
    return out


@pytest.mark.parametrize(("name", "blocks"), DEPTH_CASES)
def test_onnx_topk_equals_pytorch_on_random_histories(exported, name, blocks):
    model, sess = exported(name, blocks)
    for rows in (1, 7, 64):
        seq = random_histories(rows, model.n_items, seed=rows)
        assert_parity(model, sess, seq, exclude=None)
        assert_parity(model, sess, seq, exclude=seq)  # the history itself, padding zeros included


@pytest.mark.parametrize(("name", "blocks"), DEPTH_CASES)
def test_onnx_topk_equals_pytorch_on_real_histories(exported, beauty, name, blocks):
    if beauty is None:
        pytest.skip("shared data folder not found")
    model, sess = exported(name, blocks)
    histories = beauty[1]
    for rows in (1, 7, 64):
        seq = left_pad(histories[rows : 2 * rows])
        assert_parity(model, sess, seq, exclude=None)
        assert_parity(model, sess, seq, exclude=seq)


@pytest.mark.parametrize("name", ["sasrec-pre", "nextitnet-all-positions", "sasrec-all-positions"])
def test_variants_match_too(tmp_path, name):
    """Pre-LN SASRec, and the graphs computing every position (last_position=False)."""
    base, _, rest = name.partition("-all")
    model = make_model(base, 4)
    sess = session(export(model, tmp_path / "a", last_position=not rest))
    for rows in (1, 7):
        seq = random_histories(rows, N_ITEMS, seed=rows)
        assert_parity(model, sess, seq, exclude=seq)


def test_time_major_graph_keeps_the_sign_of_alpha_and_drops_taps_that_reach_no_history(tmp_path):
    """α < 0 becomes a subtraction, α = 0 and 1 stay exact; dilation 16 with max_len 20 leaves taps
    32 positions back, which only ever read the zeros before a history and are not exported."""
    model = make_model("nextitnet", 4, dilations=(1, 16))
    with torch.no_grad():
        for block, alpha in zip(model.blocks, (-0.7, 0.0, 1.0, -0.2), strict=True):
            block.residual.alpha.fill_(alpha)
    graph = TopKGraph(model, max_len=MAX_LEN, max_k=MAX_K, last_position=True)
    second = graph.encoder.blocks[1]
    assert (second.conv1.shifts, second.conv2.shifts) == ([16, 0], [0])
    sess = session(export(model, tmp_path / "a"))
    for rows in (1, 7):
        seq = random_histories(rows, N_ITEMS, seed=rows)
        assert_parity(model, sess, seq, exclude=seq)


def test_sequence_axis_takes_one_to_max_len_items(exported):
    model, sess = exported("nextitnet", 16)
    for length in (1, 2, MAX_LEN):
        seq = np.arange(1, length + 1, dtype=np.int64)[None, :]
        assert_parity(model, sess, seq, exclude=None)


# -- the graph's own rules -------------------------------------------------------------------


def test_padding_never_returned_even_when_exclusions_leave_fewer_than_k(exported):
    model, sess = exported("nextitnet", 2)
    keep = np.array([5, 17, 33])  # the only items left
    exclude = np.setdiff1d(np.arange(1, model.n_items), keep)[None, :]
    items, scores = sess.run(None, {"item_seq": np.array([[3, 4]]), "exclude": exclude})
    finite = np.isfinite(scores[0])
    assert finite.sum() == 3
    assert sorted(items[0][finite]) == keep.tolist()
    assert np.all(np.isneginf(scores[0][~finite]))  # the rest is marked, and serving drops it


def test_exclude_and_k_inputs_are_optional(exported):
    _, sess = exported("sasrec", 2)
    assert [i.name for i in sess.get_inputs()] == ["item_seq"]
    assert sorted(i.name for i in sess.get_overridable_initializers()) == ["exclude", "k"]
    items, _ = sess.run(None, {"item_seq": np.array([[1, 2, 3]] * 5)})  # batch 5, the defaults
    assert items.shape == (5, MAX_K) and (items != 0).all()


@pytest.mark.parametrize("name", MODELS)
def test_k_input_returns_the_first_k_of_the_ranking(exported, name):
    model, sess = exported(name, 2)
    seq = random_histories(7, model.n_items, seed=5)
    all_items, all_scores = sess.run(None, {"item_seq": seq, "exclude": seq})
    for k in (1, 4, MAX_K):
        items, scores = sess.run(None, {"item_seq": seq, "exclude": seq, "k": np.array([k])})
        assert items.shape == (7, k)
        np.testing.assert_array_equal(items, all_items[:, :k])
        np.testing.assert_allclose(scores, all_scores[:, :k], rtol=0, atol=1e-6)


def test_conv_windows_trace_the_receptive_field_back_from_the_last_position():
    model = make_model("nextitnet", 2)  # dilations 1 then 4, kernel 3
    windows = conv_windows(model, max_len=50)
    # Last block: conv2 (dilation 8) for 1 position reads 1 + 2·8 = 17; conv1 (dilation 4) reads 17 + 8.
    assert (windows[1].outputs, windows[1].middle, windows[1].inputs) == (1, 17, 25)
    # First block: 25 outputs; conv2 (dilation 2) reads 29; conv1 (dilation 1) reads 31.
    assert (windows[0].outputs, windows[0].middle, windows[0].inputs) == (25, 29, 31)
    deep = conv_windows(make_model("nextitnet", 16), max_len=50)
    assert all(w.inputs is None for w in deep[:14]) and deep[-1].outputs == 1
    assert all(w == BlockWindow(None, None, None) for w in conv_windows(model, 50, last_position=False))


def test_flops_count_what_the_graph_computes():
    model = make_model("nextitnet", 2)  # d = 8, N = 60
    d2 = 8 * 8
    # Full forward at T=10: 2 blocks × 2 convs × 10 positions × 3 taps × d², plus the output layer.
    assert flops_per_request(model, 10, last_position=False) == 2 * (2 * 2 * 10 * 3 * d2 + 8 * N_ITEMS)
    # Last position: block 2's conv2 at 1 position, its conv1 at min(17, 10); block 1 at all 10.
    tail = (10 * 3 + 10 * 3 + 10 * 3 + 1 * 3) * d2
    assert flops_per_request(model, 10) == 2 * (tail + 8 * N_ITEMS)


def test_topk_graph_refuses_nothing_for_a_tiny_catalogue():
    model = make_model("nextitnet", 2, n_items=4)  # 3 real items < max_k
    assert TopKGraph(model, max_len=MAX_LEN, max_k=MAX_K, last_position=True).max_k == 3


# -- the artifact ------------------------------------------------------------------------------


def test_metadata_describes_the_model_and_checks_out(tmp_path):
    model = make_model("nextitnet", 2)
    out = tmp_path / "v1"
    export_model(
        model,
        vocab_for(N_ITEMS),
        out,
        item_counts=counts_for(N_ITEMS),
        config=ExportConfig(max_len=MAX_LEN, max_k=MAX_K, popular_keep=5),
        train_config={"max_len": 50, "lr": 0.001},
        metrics={"test": {"hr@10": 0.5}},
        data={"path": "x.csv"},
    )
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "model.onnx"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["model"]["name"] == "nextitnet" and meta["model"]["n_items"] == N_ITEMS
    assert meta["model"]["config"]["blocks"] == 2
    assert meta["train_config"] == {"max_len": 50, "lr": 0.001}
    assert meta["metrics"] == {"test": {"hr@10": 0.5}} and meta["data"] == {"path": "x.csv"}
    graph = meta["graph"]
    assert graph["sha256"] == file_sha256(out / "model.onnx")
    assert graph["opset"] == 18 == onnx.load(str(out / "model.onnx")).opset_import[0].version
    assert (graph["max_len"], graph["max_k"], graph["sequence_axis"]) == (MAX_LEN, MAX_K, "dynamic")
    assert meta["vocabulary"]["raw_ids"][:2] == ["101", "102"]
    # Popularity: most frequent first (counts fall with the index here), at least max_k kept.
    assert meta["popularity"]["items"][:3] == [1, 2, 3] and len(meta["popularity"]["items"]) == MAX_K
    assert meta["popularity"]["train_events"] == int(counts_for(N_ITEMS).sum())
    assert meta["created_at"].endswith("+00:00")
    read_artifact(out)  # serving's reader accepts it


def test_large_vocabularies_go_to_a_sidecar_file(tmp_path):
    out = export(make_model("nextitnet", 2), tmp_path / "v", inline_vocabulary_max=10)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["vocabulary"] == {
        "size": N_ITEMS - 1,
        "file": "vocabulary.json",
        "sha256": file_sha256(out / "vocabulary.json"),
    }
    assert read_artifact(out).raw_ids == vocab_for(N_ITEMS).raw_ids


def test_an_existing_folder_is_kept_unless_overwrite(tmp_path):
    model = make_model("nextitnet", 2)
    out = export(model, tmp_path / "v")
    before = file_sha256(out / "model.onnx")
    with pytest.raises(ExportError, match="already exists"):
        export(model, out)
    assert file_sha256(out / "model.onnx") == before
    export(make_model("sasrec", 2), out, overwrite=True)
    assert json.loads((out / "metadata.json").read_text())["model"]["name"] == "sasrec"
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no temporary folders left


def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import trainer.export as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(export_module, "export_onnx_graph", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export(make_model("nextitnet", 2), tmp_path / "v")
    assert list(tmp_path.iterdir()) == []


def test_export_verifies_against_pytorch_and_rejects_mismatched_inputs(tmp_path):
    model = make_model("sasrec", 2)
    export(model, tmp_path / "ok", verify=True)  # runs check_parity before publishing
    with pytest.raises(ExportError, match="vocabulary has 3 items"):
        export_model(model, Vocabulary(("a", "b", "c")), tmp_path / "x", item_counts=counts_for(N_ITEMS))
    with pytest.raises(ExportError, match="item_counts"):
        export_model(model, vocab_for(N_ITEMS), tmp_path / "x", item_counts=np.ones(5))
    assert not (tmp_path / "x").exists()


def test_count_items_ignores_padding():
    train = Sequences(np.array([0, 3, 5]), np.array([1, 2, 2, 3, 2]))
    assert count_items(train, 5).tolist() == [0, 1, 3, 1, 0]


# -- INT8 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nextitnet", "sasrec"])
def test_int8_artifact_quantises_the_matmuls_and_still_ranks(tmp_path, name):
    model = make_model(name, 2)
    src = export(model, tmp_path / "fp32")
    dst = quantize_artifact(src, tmp_path / "int8")
    graph = dst.metadata["graph"]
    assert graph["precision"] == "int8-dynamic" and graph["quantized_from"] == file_sha256(src / "model.onnx")
    assert graph["op_counts"]["int8"].get("MatMulInteger", 0) > 0
    assert read_artifact(dst.path).metadata["graph"]["sha256"] == file_sha256(dst.path / "model.onnx")
    seq = random_histories(64, N_ITEMS, seed=3)
    fp32_items, _ = session(src).run(None, {"item_seq": seq})
    int8_items, _ = session(dst.path).run(None, {"item_seq": seq})
    assert (int8_items != 0).all()
    assert len(Recommender.load(dst.path).recommend(["101", "102"], k=5).items) == 5  # serving takes it
    overlap = np.mean([len(set(a) & set(b)) / MAX_K for a, b in zip(fp32_items, int8_items, strict=True)])
    assert overlap > 0.7  # INT8 reorders near-ties; it must not scramble the ranking
    with pytest.raises(ExportError, match="already quantised"):
        quantize_artifact(dst.path, tmp_path / "again")


def test_int8_keeps_the_output_layer_in_fp32_unless_asked(tmp_path):
    src = export(make_model("nextitnet", 2), tmp_path / "fp32")
    default = quantize_artifact(src, tmp_path / "a").metadata["graph"]
    everything = quantize_artifact(src, tmp_path / "b", output_layer=True).metadata["graph"]
    # 4 convolutions become MatMulInteger either way; the item-scoring Gemm only when asked.
    assert default["op_counts"]["int8"]["MatMulInteger"] == 4 and default["op_counts"]["int8"]["MatMul"] == 1
    assert (
        everything["op_counts"]["int8"]["MatMulInteger"] == 5
        and "MatMul" not in everything["op_counts"]["int8"]
    )
    assert (default["quantized_output_layer"], everything["quantized_output_layer"]) == (False, True)


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_export_writes_an_artifact_from_a_checkpoint(tmp_path, capsys):
    log = tmp_path / "log.txt"
    rng = np.random.default_rng(0)
    log.write_text("".join(f"{u} " + " ".join(map(str, rng.integers(1, 30, 8))) + "\n" for u in range(1, 40)))
    dataset = load_dataset(log)
    model = build_model(
        "nextitnet", model_config("nextitnet", {"blocks": 2, "embedding_dim": 8}), dataset.n_items
    )
    save_checkpoint(
        tmp_path / "checkpoint.pt",
        model=model,
        vocab=dataset.vocab,
        train_config={"max_len": 10},
        extra={"data": {"path": str(log)}},
    )
    code = main(
        ["export", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "art"), "--int8"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "art" in printed and "int8" in printed
    meta = read_artifact(tmp_path / "art").metadata
    assert meta["graph"]["max_len"] == 10 and "hr@10" in meta["metrics"]["test"]
    assert read_artifact(tmp_path / "art-int8").metadata["graph"]["precision"] == "int8-dynamic"
    assert (
        main(["export", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "art")]) == 2
    )
    assert "already exists" in capsys.readouterr().err
