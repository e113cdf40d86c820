"""The in-process backend: an LRU dict of entries with per-entry expiry, and one vector
index per semantic partition. Nothing is shared between processes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from keel.cache._entry import CachedResponse
from keel.cache._vectors import Vector, VectorIndex


@dataclass(slots=True)
class _Slot:
    entry: CachedResponse
    expires_at: float
    partition: str | None


class MemoryCacheBackend:
    """At most ``max_entries`` entries; the least recently used goes first."""

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._indexes: dict[str, VectorIndex] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def _live(self, key: str) -> _Slot | None:
        slot = self._slots.get(key)
        if slot is None:
            return None
        if slot.expires_at <= self._clock():
            self._drop(key)
            return None
        self._slots.move_to_end(key)
        return slot

    async def get(self, key: str) -> CachedResponse | None:
        slot = self._live(key)
        return None if slot is None else slot.entry

    async def put(
        self,
        key: str,
        entry: CachedResponse,
        ttl: float,
        partition: str | None = None,
        vector: Vector | None = None,
    ) -> None:
        if key in self._slots:
            self._drop(key)
        indexed = partition if vector is not None else None
        self._slots[key] = _Slot(entry, self._clock() + ttl, indexed)
        if indexed is not None and vector is not None:
            index = self._indexes.get(indexed)
            if index is None or index.dim != vector.shape[0]:
                # A new partition, or the route's embedding model changed: start afresh.
                index = self._indexes[indexed] = VectorIndex(vector.shape[0])
            index.add(key, vector)
        while len(self._slots) > self.max_entries:
            oldest = next(iter(self._slots))
            self._drop(oldest)

    async def nearest(
        self, partition: str, vector: Vector, threshold: float
    ) -> tuple[CachedResponse, float] | None:
        index = self._indexes.get(partition)
        while index is not None and len(index):
            found = index.best(vector, threshold)
            if found is None:
                return None
            key, similarity = found
            slot = self._live(key)  # drops an expired entry from the index too
            if slot is not None:
                return slot.entry, similarity
            index.remove(key)  # already gone with its entry; made sure, so the loop ends
            index = self._indexes.get(partition)
        return None

    async def clear(self) -> None:
        self._slots.clear()
        self._indexes.clear()

    async def aclose(self) -> None:
        return None

    def _drop(self, key: str) -> None:
        slot = self._slots.pop(key)
        if slot.partition is None:
            return
        index = self._indexes.get(slot.partition)
        if index is not None:
            index.remove(key)
            if not len(index):
                del self._indexes[slot.partition]
