"""Database reads remembered in one process for a bounded time (the recommend path's token and version)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class ProcessMemo:
    """Values by key, each answered for at most ``max_age_s()`` seconds after it was read.

    ``max_age_s`` is asked on every call, so a settings change applies at once; 0 or less turns the
    memo off (nothing is stored). At most ``max_entries`` are held: when full, all are dropped (as
    bounded as an LRU, and a full memo is a rare event: one entry per token or dataset in use).

    A read that started before a :meth:`forget` must not store what it read: call :meth:`begin`
    before reading the database and hand its mark to :meth:`put`, which stores nothing when any
    forget came in between (the read may have seen the row before the change was committed).
    """

    def __init__(self, *, max_age_s: Callable[[], float], max_entries: int = 10_000) -> None:
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[Any, float]] = {}
        self._forgets = 0  # counts forget/clear calls: the mark begin() hands out
        self._lock = threading.Lock()  # for writes; a read is one dict lookup

    def begin(self) -> int:
        """The mark to pass to :meth:`put` for a read that starts now."""
        return self._forgets

    def get(self, key: Hashable) -> Any:
        """The value stored for ``key`` if it is younger than the bound, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if time.monotonic() - stored_at >= self._max_age_s():
            return None
        return value

    def put(self, key: Hashable, value: Any, *, mark: int) -> None:
        """Remember ``value`` for ``key``, unless the memo is off or anything was forgotten since ``mark``."""
        if self._max_age_s() <= 0:
            return
        with self._lock:
            if mark != self._forgets:
                return
            if len(self._entries) >= self._max_entries and key not in self._entries:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic())

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._forgets += 1
            self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[Any], bool]) -> None:
        """Forget every entry whose value ``predicate`` accepts."""
        with self._lock:
            self._forgets += 1
            for key in [key for key, (value, _) in self._entries.items() if predicate(value)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._forgets += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
