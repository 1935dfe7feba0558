"""Recommender as a caller sees it: raw ids in and out, every bad input answered by a clear error."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from serving import ArtifactError, Recommendation, Recommender, ServingError
from tests.serving.conftest import MAX_K, MAX_LEN, N_ITEMS


def assert_same(got: Recommendation, expected: Recommendation) -> None:
    """Equal answers; scores may differ in the last bits (a batch row and a single call can take
    different matrix kernels)."""
    assert got.items == expected.items
    assert got.scores == pytest.approx(expected.scores, abs=1e-5)
    assert (got.dropped, got.fallback, got.version, got.truncated) == (
        expected.dropped,
        expected.fallback,
        expected.version,
        expected.truncated,
    )


@pytest.fixture(scope="module")
def rec(artifact) -> Recommender:
    return Recommender.load(artifact.path)


# -- answers -------------------------------------------------------------------------------------


def test_recommend_returns_pytorchs_top_k_as_raw_ids(rec, artifact):
    history = ["101", "105", "117"]
    result = rec.recommend(history, k=5, exclude_seen=False)
    assert isinstance(result, Recommendation)
    assert list(result.items) == artifact.reference(history, 5)
    assert len(result.scores) == 5 and list(result.scores) == sorted(result.scores, reverse=True)
    assert (result.dropped, result.fallback, result.version, result.truncated) == ((), False, "v1", 0)


def test_exclude_seen_removes_the_history_from_the_results(rec, artifact):
    history = ["101", "105", "117"]
    seen = rec.recommend(history, k=MAX_K)
    assert not set(seen.items) & set(history)
    assert list(seen.items) == artifact.reference(history, MAX_K, exclude=set(history))


def test_integer_and_string_ids_name_the_same_item(rec):
    as_str = rec.recommend(["101", "105"], k=4)
    assert rec.recommend([101, 105], k=4) == as_str
    assert rec.recommend([np.int64(101), "105"], k=4) == as_str
    assert rec.recommend(np.array([101, 105]), k=4) == as_str
    assert rec.recommend(("101", "105"), k=np.int32(4)) == as_str


def test_unknown_items_are_dropped_and_reported_once_in_order(rec):
    clean = rec.recommend(["101", "105"], k=4)
    result = rec.recommend(["zzz", "101", 999, "zzz", "105"], k=4)
    assert result.dropped == ("zzz", "999")
    assert result.items == clean.items and not result.fallback


def test_empty_history_gets_the_popularity_fallback(rec):
    result = rec.recommend([], k=3)
    assert result.fallback and result.items == ("101", "102", "103")  # most frequent in training
    counts = np.arange(N_ITEMS, 0, -1)[1:]
    assert result.scores == pytest.approx(tuple(counts[:3] / counts.sum()))  # share of training events
    assert result.dropped == ()


def test_all_unknown_history_gets_the_fallback_and_reports_the_ids(rec):
    result = rec.recommend(["nope", 5], k=2)
    assert result.fallback and result.items == ("101", "102") and result.dropped == ("nope", "5")


def test_fallback_respects_the_deny_list(rec):
    assert rec.recommend([], k=3, exclude=["101", "103", "unknown"]).items == ("102", "104", "105")


def test_deny_list_items_are_never_returned(rec):
    top = rec.recommend(["101", "102"], k=3)
    result = rec.recommend(["101", "102"], k=3, exclude=list(top.items[:2]))
    assert not set(result.items) & set(top.items[:2]) and len(result.items) == 3


def test_too_long_history_keeps_the_most_recent_items(rec, artifact):
    history = [str(100 + i) for i in range(1, 11)]  # 10 items, the model reads 6
    result = rec.recommend(history, k=4, exclude_seen=False)
    assert result.truncated == 4
    assert result.items == rec.recommend(history[-MAX_LEN:], k=4, exclude_seen=False).items
    assert list(result.items) == artifact.reference(history, 4)
    # exclude_seen covers the whole history, not only the part the model read.
    assert not set(rec.recommend(history, k=MAX_K).items) & set(history)


def test_fewer_than_k_items_when_exclusions_leave_fewer(rec):
    allowed = ["127", "128"]
    deny = [str(100 + i) for i in range(1, N_ITEMS) if str(100 + i) not in allowed]
    result = rec.recommend(["101"], k=5, exclude=deny)
    assert sorted(result.items) == allowed and len(result.scores) == 2
    assert all(np.isfinite(result.scores))


def test_k_equal_to_max_k_is_allowed(rec):
    assert len(rec.recommend(["101"], k=MAX_K).items) == MAX_K


# -- bad input: each case and its exact answer --------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 10**6])
def test_k_out_of_range_is_an_error_not_a_clamp(rec, k):
    with pytest.raises(ServingError, match=f"k must be between 1 and {MAX_K}, got {k}") as info:
        rec.recommend(["101"], k=k)
    assert info.value.extra == {"k": k, "max_k": MAX_K}


@pytest.mark.parametrize("k", [2.0, "3", None, True])
def test_k_of_the_wrong_type_is_an_error(rec, k):
    with pytest.raises(ServingError, match=f"k must be a whole number, got {type(k).__name__}"):
        rec.recommend(["101"], k=k)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (None, "history must be a list of item ids, got NoneType"),
        ("101", "history must be a list of item ids, got str"),
        (b"101", "history must be a list of item ids, got bytes"),
        ({"101"}, "history must be a list of item ids, got set"),
        ({"a": 1}, "history must be a list of item ids, got dict"),
        (101, "history must be a list of item ids, got int"),
        (np.array([[101, 102]]), r"history must be a 1-D array of item ids, got int64 \(1, 2\)"),
        (np.array([1.5]), r"history must be a 1-D array of item ids, got float64 \(1,\)"),
    ],
)
def test_history_that_is_not_a_list_of_ids_is_an_error(rec, history, message):
    with pytest.raises(ServingError, match=message):
        rec.recommend(history)


@pytest.mark.parametrize(
    ("item", "kind"), [(1.5, "float"), (True, "bool"), (None, "NoneType"), (["101"], "list"), (b"x", "bytes")]
)
def test_an_item_id_of_the_wrong_type_is_an_error_naming_its_position(rec, item, kind):
    with pytest.raises(
        ServingError, match=rf"history\[1\] must be an item id \(string or integer\), got {kind}"
    ) as info:
        rec.recommend(["101", item])
    assert info.value.extra == {"position": 1}


def test_bad_exclude_and_exclude_seen_are_errors(rec):
    with pytest.raises(ServingError, match="exclude must be a list of item ids, got str"):
        rec.recommend(["101"], exclude="101")
    with pytest.raises(ServingError, match=r"exclude\[0\] must be an item id"):
        rec.recommend(["101"], exclude=[2.5])
    with pytest.raises(ServingError, match="exclude_seen must be true or false, got str"):
        rec.recommend(["101"], exclude_seen="no")


# -- batches and threads -------------------------------------------------------------------------


def test_batch_answers_each_user_as_a_single_call_would(rec):
    histories = [["101"], [], ["nope"], [str(100 + i) for i in range(1, 20)], [105, "106"], ["129"] * 3]
    batch = rec.recommend_batch(histories, k=5, exclude=["110"])
    for got, single in zip(batch, [rec.recommend(h, k=5, exclude=["110"]) for h in histories], strict=True):
        assert_same(got, single)
    assert [r.fallback for r in batch] == [False, True, True, False, False, False]
    assert rec.recommend_batch([], k=5) == []


def test_a_bad_history_in_a_batch_names_its_position(rec):
    with pytest.raises(ServingError, match=r"history 2: history\[0\] must be an item id") as info:
        rec.recommend_batch([["101"], [], [1.5]])
    assert info.value.extra == {"history": 2, "position": 0}
    with pytest.raises(ServingError, match="histories must be a list of histories, got str"):
        rec.recommend_batch("101")


def test_large_batches_are_split_and_reassembled_in_order(rec, monkeypatch):
    import serving.recommender as module

    monkeypatch.setattr(module, "MAX_ROWS_PER_RUN", 3)
    histories = [[str(100 + (i % 29) + 1)] * (1 + i % 5) for i in range(10)]
    for got, single in zip(
        rec.recommend_batch(histories, k=3), [rec.recommend(h, k=3) for h in histories], strict=True
    ):
        assert_same(got, single)


def test_many_threads_get_the_same_answers_as_one(rec):
    histories = [[str(100 + (i % 29) + 1), str(100 + ((3 * i) % 29) + 1)] for i in range(40)]
    expected = [rec.recommend(h, k=4) for h in histories]
    failures: list[str] = []

    def worker(offset: int) -> None:
        for i in range(len(histories)):
            j = (i + offset) % len(histories)
            if rec.recommend(histories[j], k=4) != expected[j]:
                failures.append(f"history {j}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# -- loading: every check ------------------------------------------------------------------------


def test_load_reports_its_limits_and_uses_the_folder_name_as_version(rec, artifact):
    assert (rec.max_k, rec.max_len, rec.version) == (MAX_K, MAX_LEN, "v1")
    assert Recommender.load(artifact.path, version="2024-06", warmup=False).version == "2024-06"


def edit_metadata(path, change) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    change(meta)
    (path / "metadata.json").write_text(json.dumps(meta))


def test_missing_folder_or_metadata_is_an_artifact_error(tmp_path, artifact_copy):
    with pytest.raises(ArtifactError, match="does not exist"):
        Recommender.load(tmp_path / "nowhere")
    (artifact_copy / "metadata.json").unlink()
    with pytest.raises(ArtifactError, match=r"metadata\.json is missing"):
        Recommender.load(artifact_copy)


def test_a_changed_model_file_fails_the_checksum(artifact_copy):
    with open(artifact_copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="does not match its metadata"):
        Recommender.load(artifact_copy)


def test_a_vocabulary_of_the_wrong_size_is_refused(artifact_copy):
    edit_metadata(
        artifact_copy, lambda m: m["vocabulary"].update(raw_ids=m["vocabulary"]["raw_ids"][:-1], size=28)
    )
    with pytest.raises(ArtifactError, match="vocabulary holds 28 items but the model scores 29"):
        Recommender.load(artifact_copy)


def test_metadata_that_disagrees_with_the_graph_is_refused(artifact_copy):
    edit_metadata(artifact_copy, lambda m: m["graph"].update(max_len=MAX_LEN + 1))
    with pytest.raises(ArtifactError, match=rf"records max_len={MAX_LEN}, metadata\.json says {MAX_LEN + 1}"):
        Recommender.load(artifact_copy)
    edit_metadata(artifact_copy, lambda m: m["graph"].update(max_len=MAX_LEN, opset=17))
    with pytest.raises(ArtifactError, match=r"records opset=18, metadata\.json says 17"):
        Recommender.load(artifact_copy)


def test_other_formats_and_schemas_are_refused(artifact_copy):
    edit_metadata(artifact_copy, lambda m: m.update(schema_version=99))
    with pytest.raises(ArtifactError, match="metadata schema 99"):
        Recommender.load(artifact_copy)
    (artifact_copy / "metadata.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot be read"):
        Recommender.load(artifact_copy)


def test_a_file_that_is_not_onnx_is_refused(artifact_copy):
    from serving.artifact import file_sha256

    (artifact_copy / "model.onnx").write_bytes(b"not a model")
    edit_metadata(
        artifact_copy, lambda m: m["graph"].update(sha256=file_sha256(artifact_copy / "model.onnx"))
    )
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load"):
        Recommender.load(artifact_copy)


def test_bad_thread_counts_are_refused(artifact):
    with pytest.raises(ServingError, match="intra_op_threads must be a whole number"):
        Recommender.load(artifact.path, intra_op_threads=-1)
