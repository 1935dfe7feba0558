"""Which ONNX Runtime execution providers a serving session runs on: the CPU, or a CUDA GPU.

The device, ``SERVING_DEVICE`` in the web app's settings (passed down as ``device``: this package
reads no environment), chooses:

- ``cpu`` (the default): the CPU provider only. A web process answers single requests of well
  under a millisecond of work, which a GPU's launch and copy costs would only slow down.
- ``cuda``: ONNX Runtime's CUDA provider, with the CPU provider behind it for any operation CUDA
  lacks. It needs the ``onnxruntime-gpu`` build in place of ``onnxruntime`` (the ``gpu`` extra;
  see the docs for the order of installation). Asking for it without that build, or where the
  CUDA provider cannot start, is an error rather than a session quietly on the CPU.
- ``auto``: CUDA where the installed ONNX Runtime offers it, else the CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import onnxruntime as ort

from serving.errors import ServingError

DEVICES = ("auto", "cpu", "cuda")
DEVICE_VARIABLE = "SERVING_DEVICE"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def session_providers(device: str = "cpu", available: Sequence[str] | None = None) -> list[str]:
    """The providers for ``device`` (auto | cpu | cuda), in ONNX Runtime's order of preference.

    ``available`` defaults to what the installed ONNX Runtime offers (``get_available_providers``).
    """
    if device not in DEVICES:
        raise ServingError(f"{DEVICE_VARIABLE} must be one of {', '.join(DEVICES)}, got {device!r}")
    offered = ort.get_available_providers() if available is None else list(available)
    if device == "cuda" and CUDA not in offered:
        raise ServingError(
            f"{DEVICE_VARIABLE}=cuda, but this ONNX Runtime has no CUDA provider (it offers "
            f"{', '.join(offered) or 'none'}): install the onnxruntime-gpu build, or serve on cpu"
        )
    if device != "cpu" and CUDA in offered:
        return [CUDA, CPU]
    return [CPU]


def open_session(
    model_file: str | os.PathLike[str],
    options: ort.SessionOptions,
    providers: Sequence[str] | None = None,
    *,
    device: str = "cpu",
) -> ort.InferenceSession:
    """A session on ``providers``; by default on those ``device`` picks (see the module).

    ONNX Runtime puts a session on the CPU when the CUDA provider is offered but cannot start (no
    GPU visible, a CUDA or cuDNN library missing); with ``SERVING_DEVICE=cuda`` that is refused.
    """
    wanted = list(providers) if providers is not None else session_providers(device)
    if CUDA in wanted:
        _load_cuda_libraries()
    session = ort.InferenceSession(str(model_file), options, providers=wanted)
    if providers is None and device == "cuda" and session_device(session) != "cuda":
        raise ServingError(
            f"{DEVICE_VARIABLE}=cuda, but ONNX Runtime's CUDA provider could not start (no GPU visible, "
            "or a CUDA or cuDNN library missing; its log names it): set cpu or auto to serve on the CPU"
        )
    return session


@functools.cache
def _load_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries that pip installed (the gpu extra) before a CUDA session.

    They live in Python packages the dynamic loader does not search; ``preload_dlls`` (ONNX Runtime
    1.21 and later) is ONNX Runtime's own way to find them, and does nothing where they are loaded
    already (PyTorch's CUDA build in the same process) or installed system-wide.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


def session_device(session: ort.InferenceSession) -> str:
    """``cuda`` when ``session`` really runs on the CUDA provider, else ``cpu``."""
    return "cuda" if CUDA in session.get_providers() else "cpu"
