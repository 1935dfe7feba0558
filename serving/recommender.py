"""One exported model in one ONNX Runtime session: raw item ids in, raw item ids and scores out.

Request rules (each has a test in ``tests/serving``):

- ``history`` is a list, tuple or 1-D integer numpy array of raw item ids, oldest first; an id is a
  ``str`` or an ``int`` (``42`` and ``"42"`` name the same item, as in the trainer's vocabulary).
  Anything else (a bare string, a set, None, floats, bools) raises :class:`ServingError`.
- Ids not in the catalogue are dropped and listed in ``Recommendation.dropped`` (once each, in
  order of first appearance).
- An empty or all-unknown history gets the popularity fallback (most frequent training items),
  with ``fallback=True`` and scores = share of training events.
- Only the most recent ``max_len`` known items are read by the model (the length it was trained
  on); ``truncated`` says how many older ones were not. ``exclude_seen`` still removes the whole
  history from the results.
- ``k`` must be a whole number in 1..``max_k`` (the TopK size built into the graph); anything else
  raises :class:`ServingError` rather than being clamped, so a client asking for 500 items learns
  the limit instead of silently getting 100. Fewer than ``k`` items come back only when
  exclusions leave fewer candidates.

Thread safety: everything here is immutable after :meth:`Recommender.load`, and ONNX Runtime's
``InferenceSession.run`` may be called from many threads at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from serving.artifact import (
    INPUT_EXCLUDE,
    INPUT_ITEMS,
    INPUT_K,
    OUTPUT_ITEMS,
    OUTPUT_SCORES,
    PROP_PREFIX,
    Artifact,
    read_artifact,
)
from serving.errors import ArtifactError, ServingError
from serving.providers import open_session

logger = logging.getLogger(__name__)

MAX_ROWS_PER_RUN = 256  # batch rows per session call: bounds the [rows × items] score buffer


@dataclass(frozen=True)
class Recommendation:
    """What one user gets back."""

    items: tuple[str, ...]  # raw item ids, best first
    scores: tuple[float, ...]  # model scores (logits), or popularity shares when ``fallback``
    dropped: tuple[str, ...]  # history ids not in the catalogue, ignored
    fallback: bool  # True: the popularity list, because no history item was known
    version: str  # the model version that answered
    truncated: int = 0  # oldest known history items beyond max_len that the model did not read


@dataclass(frozen=True)
class _Request:
    """A validated request, in item indices; produced by :meth:`Recommender.prepare`."""

    recent: np.ndarray  # int64, the most recent max_len known items (empty → fallback)
    exclude: np.ndarray  # int64, items to remove from the results
    k: int
    dropped: tuple[str, ...]
    truncated: int


class Recommender:
    """A loaded artifact. Build with :meth:`load`; then call :meth:`recommend` from any thread."""

    def __init__(self, artifact: Artifact, session: ort.InferenceSession, version: str) -> None:
        self.artifact = artifact
        self.session = session
        self.version = version
        self._index = {raw: i + 1 for i, raw in enumerate(artifact.raw_ids)}

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        artifact_dir: str | Path,
        *,
        version: str | None = None,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        warmup: bool = True,
        providers: Sequence[str] | None = None,
        device: str = "cpu",
    ) -> Recommender:
        """Open one session for ``artifact_dir``, check it against its metadata, and warm it up.

        Defaults suit a web worker: one thread per session (a request is ~0.5 ms of work, too
        small to split, and gunicorn runs one worker per core); raise ``intra_op_threads`` for a
        process that serves large batches alone. ``version`` defaults to the folder's name.
        ``providers`` default to those ``device`` (cpu, cuda or auto) picks (:mod:`serving.providers`).
        Raises :class:`ArtifactError` for anything missing, damaged or inconsistent.
        """
        for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ServingError(f"{name} must be a whole number ≥ 0 (0: ONNX Runtime's default)")
        started = time.perf_counter()
        artifact = read_artifact(artifact_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Errors only: ONNX Runtime warns on every load that ``exclude`` and ``k`` (inputs with
        # defaults) are not constants, which is the point of them.
        options.log_severity_level = 3
        try:
            session = open_session(artifact.model_file, options, providers, device=device)
        except Exception as exc:  # ONNX Runtime raises its own unrelated exception types
            raise ArtifactError(f"ONNX Runtime cannot load {artifact.model_file}: {exc}") from None
        _check_session(session, artifact)
        recommender = cls(artifact, session, version or artifact.path.name)
        if warmup:
            recommender._warm_up()
        logger.info(
            "loaded %s (%s, %d items) as version %s in %.2fs",
            artifact.path,
            artifact.metadata["model"]["name"],
            artifact.n_items - 1,
            recommender.version,
            time.perf_counter() - started,
        )
        return recommender

    def _warm_up(self) -> None:
        """First runs allocate buffers and pick kernels; do that now, not on a user's request."""
        length = self.max_len
        for rows, t in ((1, length), (1, 1), (8, length)):
            seq = np.tile(self.artifact.popular[:1] if len(self.artifact.popular) else [1], (rows, t))
            items, _ = self.session.run(None, {INPUT_ITEMS: seq.astype(np.int64)})
            if items.shape != (rows, self.max_k) or (items == 0).any():
                raise ArtifactError(f"{self.artifact.model_file} returned unexpected top-k items on warm-up")

    # -- properties -----------------------------------------------------------------------

    @property
    def max_k(self) -> int:
        return self.artifact.max_k

    @property
    def max_len(self) -> int:
        return self.artifact.max_len

    @property
    def metadata(self) -> dict[str, Any]:
        return self.artifact.metadata

    # -- requests -------------------------------------------------------------------------

    def recommend(
        self,
        history: Sequence[str | int] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        *,
        exclude: Iterable[str | int] = (),
    ) -> Recommendation:
        """Top ``k`` next items for one history (raw ids, oldest first); see the module docstring.

        ``exclude`` is a deny list of raw ids never to return (unknown ids in it are ignored).
        """
        return self.answer([self.prepare(history, k, exclude_seen=exclude_seen, exclude=exclude)])[0]

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str | int] | np.ndarray],
        k: int = 10,
        exclude_seen: bool = True,
        *,
        exclude: Iterable[str | int] = (),
    ) -> list[Recommendation]:
        """:meth:`recommend` for many users in few session calls; ``exclude`` applies to all of them.

        A bad history anywhere raises before anything runs, naming its position.
        """
        if isinstance(histories, (str, bytes)) or not isinstance(histories, (Sequence, np.ndarray)):
            raise ServingError(f"histories must be a list of histories, got {type(histories).__name__}")
        deny = self._deny(exclude)
        requests = []
        for position, history in enumerate(histories):
            try:
                requests.append(self.prepare(history, k, exclude_seen=exclude_seen, deny=deny))
            except ServingError as exc:
                raise ServingError(
                    f"history {position}: {exc.message}", {**exc.extra, "history": position}
                ) from None
        return self.answer(requests)

    def prepare(
        self,
        history: Any,
        k: Any,
        *,
        exclude_seen: Any = True,
        exclude: Iterable[str | int] = (),
        deny: np.ndarray | None = None,
    ) -> _Request:
        """Validate one request and map it to item indices (raises :class:`ServingError`)."""
        _check_k(k, self.max_k)
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise ServingError(f"exclude_seen must be true or false, got {type(exclude_seen).__name__}")
        raw = _raw_ids(history, "history")
        known, dropped = [], {}
        index = self._index
        for item in raw:
            i = index.get(item)
            if i is None:
                dropped.setdefault(item, None)
            else:
                known.append(i)
        if dropped:
            logger.debug("dropped %d unknown history items", len(dropped))
        indices = np.asarray(known, dtype=np.int64)
        recent = indices[-self.max_len :]
        deny = self._deny(exclude) if deny is None else deny
        excluded = np.concatenate([np.unique(indices), deny]) if exclude_seen and len(indices) else deny
        return _Request(recent, excluded, int(k), tuple(dropped), len(indices) - len(recent))

    def answer(self, requests: Sequence[_Request]) -> list[Recommendation]:
        """Run prepared requests: model rows in batches of at most MAX_ROWS_PER_RUN, the rest fallback."""
        results: list[Recommendation | None] = [None] * len(requests)
        model_rows = [i for i, r in enumerate(requests) if len(r.recent)]
        # Similar lengths share a call, so little padding is computed.
        model_rows.sort(key=lambda i: len(requests[i].recent))
        for start in range(0, len(model_rows), MAX_ROWS_PER_RUN):
            chunk = model_rows[start : start + MAX_ROWS_PER_RUN]
            items, scores = self._run([requests[i] for i in chunk])
            for row, i in enumerate(chunk):
                results[i] = self._result(requests[i], items[row], scores[row])
        for i, request in enumerate(requests):
            if results[i] is None:
                results[i] = self._fallback(request)
        return results  # type: ignore[return-value]

    # -- internals ------------------------------------------------------------------------

    def _deny(self, exclude: Any) -> np.ndarray:
        raw = _raw_ids(exclude, "exclude")
        return np.asarray([self._index[r] for r in raw if r in self._index], dtype=np.int64)

    def _run(self, requests: list[_Request]) -> tuple[np.ndarray, np.ndarray]:
        """One session call: left-padded histories [B, T] and zero-padded exclusions [B, E]."""
        width = max(len(r.recent) for r in requests)
        seq = np.zeros((len(requests), width), dtype=np.int64)
        for row, r in enumerate(requests):
            seq[row, width - len(r.recent) :] = r.recent
        feed = {INPUT_ITEMS: seq, INPUT_K: np.array([max(r.k for r in requests)], dtype=np.int64)}
        n_exclude = max(len(r.exclude) for r in requests)
        if n_exclude:  # otherwise the graph's default: exclude nothing
            exclude = np.zeros((len(requests), n_exclude), dtype=np.int64)
            for row, r in enumerate(requests):
                exclude[row, : len(r.exclude)] = r.exclude
            feed[INPUT_EXCLUDE] = exclude
        items, scores = self.session.run([OUTPUT_ITEMS, OUTPUT_SCORES], feed)
        return items, scores

    def _result(self, request: _Request, items: np.ndarray, scores: np.ndarray) -> Recommendation:
        keep = np.isfinite(scores[: request.k])  # −inf: excluded, fewer candidates than k
        raw_ids = self.artifact.raw_ids
        return Recommendation(
            items=tuple(raw_ids[i - 1] for i in items[: request.k][keep]),
            scores=tuple(float(s) for s in scores[: request.k][keep]),
            dropped=request.dropped,
            fallback=False,
            version=self.version,
            truncated=request.truncated,
        )

    def _fallback(self, request: _Request) -> Recommendation:
        popular, share = self.artifact.popular, self.artifact.popular_share
        if len(request.exclude):
            keep = ~np.isin(popular, request.exclude)
            popular, share = popular[keep], share[keep]
        raw_ids = self.artifact.raw_ids
        return Recommendation(
            items=tuple(raw_ids[i - 1] for i in popular[: request.k]),
            scores=tuple(float(s) for s in share[: request.k]),
            dropped=request.dropped,
            fallback=True,
            version=self.version,
        )


def _check_k(k: Any, max_k: int) -> None:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ServingError(f"k must be a whole number, got {type(k).__name__}", {"max_k": max_k})
    if not 1 <= k <= max_k:
        raise ServingError(f"k must be between 1 and {max_k}, got {k}", {"k": int(k), "max_k": max_k})


def _raw_ids(values: Any, what: str) -> list[str]:
    """Raw ids as the vocabulary spells them (strings); ServingError for anything but a list of ids."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iuUO":
            raise ServingError(f"{what} must be a 1-D array of item ids, got {values.dtype} {values.shape}")
        values = values.tolist()
    elif isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ServingError(f"{what} must be a list of item ids, got {type(values).__name__}")
    out = []
    for position, value in enumerate(values):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            out.append(str(int(value)))
        else:
            raise ServingError(
                f"{what}[{position}] must be an item id (string or integer), got {type(value).__name__}",
                {"position": position},
            )
    return out


def _check_session(session: ort.InferenceSession, artifact: Artifact) -> None:
    """The graph must have the interface serving uses and agree with metadata.json."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    for name, table in ((INPUT_ITEMS, inputs), (OUTPUT_ITEMS, outputs), (OUTPUT_SCORES, outputs)):
        if name not in table:
            raise ArtifactError(f"{artifact.model_file} has no {name!r} in its interface")
    if inputs[INPUT_ITEMS].type != "tensor(int64)" or len(inputs[INPUT_ITEMS].shape) != 2:
        raise ArtifactError(f"{artifact.model_file}: {INPUT_ITEMS!r} must be int64 [batch, seq]")
    optional = {i.name for i in session.get_overridable_initializers()} | set(inputs)
    for name in (INPUT_EXCLUDE, INPUT_K):
        if name not in optional:
            raise ArtifactError(f"{artifact.model_file} has no {name!r} input")
    props = session.get_modelmeta().custom_metadata_map
    expected = {
        "n_items": artifact.n_items,
        "max_k": artifact.max_k,
        "max_len": artifact.max_len,
        "opset": artifact.metadata["graph"]["opset"],
    }
    for key, value in expected.items():
        found = props.get(PROP_PREFIX + key)
        if found != str(value):
            raise ArtifactError(
                f"{artifact.model_file} records {key}={found}, metadata.json says {value}",
                {"key": key, "model": found, "metadata": value},
            )
