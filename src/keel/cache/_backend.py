"""The interface every cache backend implements (memory, store, Redis)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from keel.cache._entry import CachedResponse
from keel.cache._vectors import Vector


@runtime_checkable
class CacheBackend(Protocol):
    """Entries by exact key, each with its own TTL; optionally indexed in a semantic
    partition by a unit vector. A backend bounds what it holds (``max_entries``)."""

    async def get(self, key: str) -> CachedResponse | None:
        """The live entry under ``key``, or None."""
        ...

    async def put(
        self,
        key: str,
        entry: CachedResponse,
        ttl: float,
        partition: str | None = None,
        vector: Vector | None = None,
    ) -> None:
        """Store ``entry`` for ``ttl`` seconds; with a partition and a unit vector, it can
        also be found by ``nearest``."""
        ...

    async def nearest(
        self, partition: str, vector: Vector, threshold: float
    ) -> tuple[CachedResponse, float] | None:
        """The live entry of ``partition`` most similar to ``vector`` (cosine similarity at
        least ``threshold``), with its similarity."""
        ...

    async def clear(self) -> None:
        """Drop every entry."""
        ...

    async def aclose(self) -> None: ...
