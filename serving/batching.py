"""Micro-batching: concurrent single requests answered by one batched session call.

Callers block in :meth:`MicroBatcher.recommend` while one worker thread drains the queue: it takes
every request waiting (up to ``max_batch``), optionally waits ``max_wait_ms`` for more, runs them as
one batch and hands each caller its answer. With the default ``max_wait_ms=0`` batching is purely
opportunistic: a lone request runs at once, and requests only group when they arrive while the
worker is busy, so it adds no latency at low load.

Whether it pays is measured by ``bench/serving.py``: a batch row costs less than a single call
(NextItNet-16: ~0.34 against ~0.47 ms of CPU), but the one worker uses one core, while direct calls
from several threads run on both. With 16 client threads on this busy 2-core machine it gave
4,806 against 3,228 requests/s and p99 6.4 against 84 ms, at p50 3.0 against 0.3 ms (mean batch
12); in an earlier run under heavier load it was 10 % behind. So: worth it for many concurrent
callers of one process when throughput and tail latency matter more than the median; off by
default (callers use :class:`Recommender` directly).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from serving.errors import ServingError
from serving.recommender import Recommendation, Recommender
from serving.registry import Registry

logger = logging.getLogger(__name__)

_STOP = object()


class MicroBatcher:
    """Answers :meth:`recommend` calls from many threads in shared batches.

    ``source`` is a :class:`Recommender`, or a :class:`Registry` whose active version is looked up
    per request (requests are only batched with others prepared against the same version).
    """

    def __init__(
        self, source: Recommender | Registry, *, max_batch: int = 64, max_wait_ms: float = 0.0
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ServingError(f"max_batch must be a whole number ≥ 1, got {max_batch!r}")
        if not max_wait_ms >= 0:
            raise ServingError(f"max_wait_ms must be ≥ 0, got {max_wait_ms!r}")
        self._source = source
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.batches = 0  # statistics, for the benchmark
        self.requests = 0
        self._thread = threading.Thread(target=self._loop, name="serving-micro-batcher", daemon=True)
        self._thread.start()

    def recommend(
        self,
        history: Sequence[str | int] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        *,
        exclude: Iterable[str | int] = (),
    ) -> Recommendation:
        """Same contract as :meth:`Recommender.recommend`; bad input raises here, in the caller."""
        if self._closed:
            raise ServingError("the micro-batcher is closed")
        recommender = self._source.active if isinstance(self._source, Registry) else self._source
        request = recommender.prepare(history, k, exclude_seen=exclude_seen, exclude=exclude)
        future: Future = Future()
        self._queue.put((recommender, request, future))
        return future.result()

    def close(self) -> None:
        """Answer what is queued, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    timeout = deadline - time.monotonic()
                    item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._answer(batch)

    def _answer(self, batch: list[tuple[Recommender, Any, Future]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        groups: dict[int, list[tuple[Recommender, Any, Future]]] = {}
        for entry in batch:
            groups.setdefault(id(entry[0]), []).append(entry)
        for entries in groups.values():
            recommender = entries[0][0]
            try:
                results = recommender.answer([request for _, request, _ in entries])
            except Exception as exc:  # hand the failure to every waiting caller
                logger.exception("micro-batch of %d failed", len(entries))
                for _, _, future in entries:
                    future.set_exception(exc)
                continue
            for (_, _, future), result in zip(entries, results, strict=True):
                future.set_result(result)
