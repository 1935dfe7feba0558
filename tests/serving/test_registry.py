"""Versions: a new one is loaded before it answers, a broken one never answers, requests never fail."""

from __future__ import annotations

import threading

import pytest

from serving import ArtifactError, Registry, ServingError


def test_no_active_version_is_a_clear_error():
    registry = Registry()
    assert registry.version is None
    with pytest.raises(ServingError, match="no model version is active"):
        registry.recommend(["101"])


def test_activate_swaps_versions_and_keeps_a_history(artifact, artifact_v2):
    registry = Registry()
    registry.activate("v1", artifact.path)
    assert registry.recommend(["101"], k=3).version == "v1"
    registry.activate("v2", artifact_v2.path)
    assert registry.version == "v2"
    assert registry.recommend_batch([["101"], []], k=3)[0].version == "v2"
    assert [a.version for a in registry.history()] == ["v1", "v2"]


def test_a_failed_load_leaves_the_current_version_serving(artifact, tmp_path):
    registry = Registry()
    registry.activate("v1", artifact.path)
    with pytest.raises(ArtifactError):
        registry.activate("v2", tmp_path / "missing")
    assert registry.version == "v1" and registry.recommend(["101"], k=2).version == "v1"
    assert [a.version for a in registry.history()] == ["v1"]
    with pytest.raises(ServingError, match="version must be a non-empty string"):
        registry.activate("", artifact.path)


def test_concurrent_requests_during_swaps_all_succeed(artifact, artifact_v2, tmp_path):
    registry = Registry()
    registry.activate("v1", artifact.path)
    stop = threading.Event()
    seen: set[str] = set()
    errors: list[BaseException] = []
    answered = [0]

    def client(i: int) -> None:
        while not stop.is_set():
            try:
                result = registry.recommend([str(101 + i % 29), "nope"], k=3)
                assert len(result.items) == 3 and result.dropped == ("nope",)
                seen.add(result.version)
                answered[0] += 1
            except BaseException as exc:  # any failure fails the test
                errors.append(exc)
                return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    broken = tmp_path / "broken"
    broken.mkdir()  # a folder without metadata.json
    for round_ in range(3):
        for version, path in [
            (f"v2.{round_}", artifact_v2.path),
            ("broken", broken),
            (f"v3.{round_}", artifact.path),
        ]:
            try:
                registry.activate(version, path)
            except ArtifactError:
                assert version == "broken"
                assert registry.version == f"v2.{round_}"  # still the last good one
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert answered[0] > 0 and "broken" not in seen and len(seen) >= 2  # requests saw the swaps
    assert registry.version == "v3.2"
