"""A small thread-safe LRU cache with hit/miss statistics.

It holds whatever the backend decides is safe to share (the filesystem backend
stores immutable ``bytes`` plus the file identity they were read from), so a
hit never hands a caller an object someone else can mutate.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    def __init__(self, max_size: int = 100) -> None:
        if not isinstance(max_size, int) or max_size < 0:
            raise ValueError(f"cache max_size must be a non-negative int, got {max_size!r}")
        self.max_size = max_size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.max_size == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)
                self.evictions += 1

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def count_miss(self) -> None:
        """Record a hit that turned out stale (the entry was dropped by the caller)."""
        with self._lock:
            self.hits -= 1
            self.misses += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            lookups = self.hits + self.misses
            size = len(self._data)
            return {
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "size": size,
                "max_size": self.max_size,
                "hit_rate": self.hits / lookups if lookups else 0.0,
                "utilization": size / self.max_size if self.max_size else 0.0,
            }
