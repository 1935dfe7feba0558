"""Where a serving session runs: SERVING_DEVICE picks ONNX Runtime's providers, and a GPU that was
asked for but is not there is an error, never a session quietly on the CPU."""

from __future__ import annotations

import pytest

from serving import ArtifactError, Recommender, ServingError
from serving import providers as providers_module
from serving.providers import CPU, CUDA, open_session, session_providers

WITH_CUDA = ["TensorrtExecutionProvider", CUDA, CPU]


@pytest.mark.parametrize(
    ("device", "available", "chosen"),
    [
        ("cpu", WITH_CUDA, [CPU]),
        ("cpu", [CPU], [CPU]),
        ("auto", WITH_CUDA, [CUDA, CPU]),
        ("auto", [CPU], [CPU]),
        ("cuda", WITH_CUDA, [CUDA, CPU]),
    ],
)
def test_providers_follow_the_device_and_what_onnx_runtime_offers(device, available, chosen):
    assert session_providers(device, available) == chosen


def test_cuda_without_the_gpu_build_is_a_clear_error():
    with pytest.raises(ServingError, match=r"no CUDA provider .* install the onnxruntime-gpu build"):
        session_providers("cuda", [CPU])
    with pytest.raises(ServingError, match="SERVING_DEVICE must be one of auto, cpu, cuda, got 'tpu'"):
        session_providers("tpu", WITH_CUDA)


def test_a_recommender_serves_on_the_cpu_by_default(artifact):
    assert Recommender.load(artifact.path).session.get_providers() == [CPU]


def test_asking_for_cuda_where_onnx_runtime_has_none_refuses_to_load(artifact, monkeypatch):
    monkeypatch.setattr(providers_module.ort, "get_available_providers", lambda: [CPU])
    with pytest.raises(ArtifactError, match="SERVING_DEVICE=cuda, but this ONNX Runtime has no CUDA"):
        Recommender.load(artifact.path, device="cuda")


class SessionOnTheCpu:
    """An ONNX Runtime session whose CUDA provider could not start: it runs on the CPU alone."""

    def __init__(self, path, options, providers):
        self.asked = providers

    def get_providers(self):
        return [CPU]


def test_a_cuda_provider_that_cannot_start_is_refused_for_cuda_and_tolerated_for_auto(monkeypatch):
    monkeypatch.setattr(providers_module.ort, "get_available_providers", lambda: WITH_CUDA)
    monkeypatch.setattr(providers_module.ort, "InferenceSession", SessionOnTheCpu)
    with pytest.raises(ServingError, match="CUDA provider could not start"):
        open_session("model.onnx", None, device="cuda")
    session = open_session("model.onnx", None, device="auto")
    assert session.asked == [CUDA, CPU]  # tried the GPU first, and serves on the CPU
    explicit = open_session("model.onnx", None, [CPU], device="cuda")
    assert explicit.asked == [CPU]  # a caller's own list is taken as it is
