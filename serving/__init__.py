"""ONNX Runtime serving of exported models (no torch, no Django).

- :class:`Recommender` — one artifact folder in one session: ``Recommender.load(path)``, then
  ``recommend(history, k)`` and ``recommend_batch(histories, k)``;
- :class:`Registry` — the active version, swapped by ``activate(version, path)``;
- :class:`MicroBatcher` — groups concurrent single requests into batched calls;
- :class:`ServingError` (bad request) and :class:`ArtifactError` (bad artifact).
"""

from serving.batching import MicroBatcher
from serving.errors import ArtifactError, ServingError
from serving.recommender import Recommendation, Recommender
from serving.registry import Activation, Registry

__all__ = [
    "Activation",
    "ArtifactError",
    "MicroBatcher",
    "Recommendation",
    "Recommender",
    "Registry",
    "ServingError",
]
