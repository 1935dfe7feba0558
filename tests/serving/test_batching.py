"""Micro-batching: callers on many threads get exactly their own answers, errors stay with their caller."""

from __future__ import annotations

import threading

import pytest

from serving import MicroBatcher, Recommender, Registry, ServingError
from tests.serving.conftest import MAX_K
from tests.serving.test_recommender import assert_same


@pytest.fixture(scope="module")
def rec(artifact) -> Recommender:
    return Recommender.load(artifact.path)


@pytest.mark.parametrize("max_wait_ms", [0.0, 2.0])
def test_concurrent_callers_get_their_own_answers(rec, max_wait_ms):
    histories = [[str(101 + (i % 29)), str(101 + ((7 * i) % 29))] for i in range(48)] + [[], ["nope"]]
    expected = [rec.recommend(h, k=4) for h in histories]
    results: dict[int, object] = {}
    with MicroBatcher(rec, max_batch=16, max_wait_ms=max_wait_ms) as batcher:

        def caller(i: int) -> None:
            results[i] = batcher.recommend(histories[i], k=4)

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(histories))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert batcher.requests == len(histories)
        assert batcher.batches <= batcher.requests
    for i, result in results.items():
        assert_same(result, expected[i])


def test_bad_input_is_raised_in_the_caller_and_the_batcher_keeps_working(rec):
    with MicroBatcher(rec) as batcher:
        with pytest.raises(ServingError, match=f"k must be between 1 and {MAX_K}"):
            batcher.recommend(["101"], k=99)
        assert batcher.recommend(["101"], k=2).items == rec.recommend(["101"], k=2).items
    with pytest.raises(ServingError, match="the micro-batcher is closed"):
        batcher.recommend(["101"])


def test_it_follows_the_registrys_active_version(artifact, artifact_v2):
    registry = Registry(warmup=False)
    registry.activate("v1", artifact.path)
    with MicroBatcher(registry) as batcher:
        assert batcher.recommend(["101"], k=3).version == "v1"
        registry.activate("v2", artifact_v2.path)
        assert batcher.recommend(["101"], k=3).version == "v2"


def test_settings_are_checked():
    with pytest.raises(ServingError, match="max_batch"):
        MicroBatcher(None, max_batch=0)  # type: ignore[arg-type]
