"""Where training runs and in what precision: CUDA with bf16 autocast when available, else the CPU.

The CUDA path is built to keep the GPU busy: batches are copied from pinned host memory without
waiting (:func:`to_device`), and the training loop reads the loss on the host only every few steps
(see :mod:`trainer.training`). The CPU path is unchanged by any of it: fp32, deterministic kernels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from trainer.configs import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is visible to PyTorch")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type of the forward pass and loss on ``device``: ``None`` means plain fp32.

    ``auto`` is bf16 on a CUDA GPU that supports it (Ampere and later: tensor cores, and bf16's
    fp32-sized exponent needs no loss scaling) and fp32 everywhere else, so CPU runs stay exactly
    what they were. ``bf16`` is honoured on the CPU too (PyTorch's CPU autocast), where it is
    slower than fp32 on most processors; on a GPU without bf16 it is a clear error.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    supported = device.type != "cuda" or torch.cuda.is_bf16_supported()
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and supported else None
    if not supported:
        raise ConfigError(
            f"train.precision bf16 was asked for but {torch.cuda.get_device_name(device)} has no bf16; "
            "use auto or fp32"
        )
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (see :func:`resolve_precision`); ``None``: fp32, no context."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host batch on ``device``: on CUDA through pinned memory, copied without blocking the host.

    A copy from pageable memory makes the host wait for it; from pinned memory it is queued behind
    the previous step's kernels and the host goes on to build the next batch. PyTorch's pinned
    allocator caches its buffers and keeps each one until the copy reading it has finished.
    """
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


@contextlib.contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """Deterministic kernels for one training run on the CPU, restored afterwards.

    With more than one thread, the backward of an index gather (``weights[items]``: every
    embedding and output-layer lookup) adds the rows in whatever order the threads finish, so two
    runs with the same seed drifted apart within an epoch. PyTorch's deterministic variants cost
    nothing measurable here, so the same seed now gives the same model. CUDA is left as it is:
    there they need cuBLAS settings and can be slower.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)
