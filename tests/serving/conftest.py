"""A small exported artifact shared by the serving tests (built with the trainer, served without it)."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.data.types import Vocabulary
from trainer.export import ExportConfig, export_model
from trainer.models import build_model, model_config

N_ITEMS = 30  # padding + 29 items with raw ids "101".."129"
MAX_LEN = 6  # short, so "too long" histories are easy to write
MAX_K = 12  # above the default k=10, so calls that leave k out are valid


@dataclass(frozen=True)
class Exported:
    path: Path
    model: torch.nn.Module
    vocab: Vocabulary

    def reference(self, history: list[str], k: int, exclude: set[str] = frozenset()) -> list[str]:
        """PyTorch's top-k raw ids for known raw ids (oldest first), excluding ``exclude``."""
        index = self.vocab.index_map()
        seq = torch.tensor([[index[r] for r in history][-MAX_LEN:]])
        with torch.no_grad():
            scores = self.model.score_last(seq)[0]
        for raw in exclude:
            scores[index[raw]] = -math.inf
        return self.vocab.to_raw(torch.topk(scores, k).indices.numpy())


def build_artifact(out: Path, seed: int = 0, name: str = "nextitnet") -> Exported:
    torch.manual_seed(seed)
    model = build_model(name, model_config(name, {"blocks": 2, "embedding_dim": 8}), N_ITEMS).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("alpha"):
                p.fill_(0.5)
    vocab = Vocabulary(tuple(str(100 + i) for i in range(1, N_ITEMS)))
    counts = np.arange(N_ITEMS, 0, -1, dtype=np.int64)  # item 1 most popular, then 2, …
    counts[0] = 0
    export_model(
        model, vocab, out, item_counts=counts, config=ExportConfig(max_len=MAX_LEN, max_k=MAX_K, verify=False)
    )
    return Exported(out, model, vocab)


@pytest.fixture(scope="session")
def artifact(tmp_path_factory) -> Exported:
    return build_artifact(tmp_path_factory.mktemp("serving") / "v1")


@pytest.fixture(scope="session")
def artifact_v2(tmp_path_factory) -> Exported:
    """A second version: other weights, same catalogue."""
    return build_artifact(tmp_path_factory.mktemp("serving") / "v2", seed=1, name="sasrec")


@pytest.fixture
def artifact_copy(artifact, tmp_path) -> Path:
    """A private copy of the artifact a test may damage."""
    return Path(shutil.copytree(artifact.path, tmp_path / "copy"))
