"""Where training runs: CUDA with bf16 autocast when available, else the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from trainer.configs import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is visible to PyTorch")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (tensor cores, no loss scaling needed); fp32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
