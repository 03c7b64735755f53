"""Keep loaded models in memory within a byte budget, evicting the least recently used."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from studio.runtime import heap

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class _Entry(Generic[T]):
    value: T
    size: int


class LRUByteCache(Generic[T]):
    """A thread-safe LRU cache bounded by the summed size of its values.

    Loading happens outside the global lock but under a per-key lock, so two requests for the
    same model load it once while requests for other models are not blocked.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[T], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            hit = self.get(key)
            if hit is not None:
                return hit
            value = load()
            self.put(key, value)
            return value

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: Hashable, value: T) -> None:
        size = self._size_of(value)
        with self._lock:
            self._entries[key] = _Entry(value, size)
            self._entries.move_to_end(key)
            self._evict_over_budget(keep=key)
        # Free evicted models' tensors now, not eventually, and take the new model's objects
        # out of the collector's full passes (see studio/runtime/heap.py).
        heap.settle()

    def _evict_over_budget(self, keep: Hashable) -> None:
        while self.total_bytes > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            del self._entries[oldest]
            log.info("evicted %s from the model cache", oldest)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self._entries.values())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        heap.settle()
