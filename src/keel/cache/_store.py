"""The store backend: entries in the ``response_cache`` table of Keel's database, shared
by every process on it. Queries run in worker threads (never on the event loop);
semantic partitions are read into memory and refreshed every ``index_refresh`` seconds.
Bounded by a sweep every ``sweep_every`` writes: expired rows go, then the oldest rows
beyond ``max_entries``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from keel.cache._entry import CachedResponse, decode_entry, encode_entry
from keel.cache._table import response_cache
from keel.cache._vectors import LoadedPartitions, Vector

_t = response_cache.c


class StoreCacheBackend:
    def __init__(
        self,
        engine: Engine,
        max_entries: int = 10_000,
        *,
        index_refresh: float = 5.0,
        sweep_every: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_entries = max_entries
        self._sweep_every = sweep_every
        self._clock = clock
        self._puts = 0
        self._partitions = LoadedPartitions(self._load_partition, refresh=index_refresh)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def get(self, key: str) -> CachedResponse | None:
        data = await asyncio.to_thread(self._select_entry, key, self._now())
        return None if data is None else decode_entry(data)

    def _select_entry(self, key: str, now: datetime) -> bytes | None:
        with self.engine.connect() as connection:
            data = connection.execute(
                select(_t.entry).where(_t.key == key, _t.expires_at > now)
            ).scalar_one_or_none()
        return None if data is None else bytes(data)

    async def put(
        self,
        key: str,
        entry: CachedResponse,
        ttl: float,
        partition: str | None = None,
        vector: Vector | None = None,
    ) -> None:
        indexed = partition if vector is not None else None
        row: dict[str, object] = {
            "key": key,
            "route": str(entry.body.get("model", ""))[:255],
            "partition": indexed,
            "created_at": self._now(),
            "expires_at": datetime.fromtimestamp(self._clock() + ttl, UTC),
            "entry": encode_entry(entry),
            "embedding": None if vector is None or indexed is None else vector.tobytes(),
        }
        sweep = self._puts % self._sweep_every == 0
        self._puts += 1
        await asyncio.to_thread(self._write, row, sweep)
        if indexed is not None and vector is not None:
            self._partitions.add(indexed, key, vector)

    def _write(self, row: dict[str, object], sweep: bool) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(response_cache).where(_t.key == row["key"]))
                connection.execute(insert(response_cache).values(**row))
        except IntegrityError:
            pass  # another process stored the same request at the same moment: equivalent
        if sweep:
            self._sweep()

    def _sweep(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(response_cache).where(_t.expires_at <= self._now()))
            count = connection.execute(select(func.count()).select_from(response_cache)).scalar_one()
            excess = count - self.max_entries
            if excess > 0:
                oldest = select(_t.key).order_by(_t.created_at).limit(excess).scalar_subquery()
                connection.execute(delete(response_cache).where(_t.key.in_(oldest)))

    async def sweep(self) -> None:
        """Delete expired rows and the oldest beyond ``max_entries`` now."""
        await asyncio.to_thread(self._sweep)

    async def nearest(
        self, partition: str, vector: Vector, threshold: float
    ) -> tuple[CachedResponse, float] | None:
        return await self._partitions.nearest(partition, vector, threshold, self.get)

    async def _load_partition(self, partition: str) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self._select_partition, partition, self._now())

    def _select_partition(self, partition: str, now: datetime) -> list[tuple[str, bytes]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_t.key, _t.embedding).where(
                    _t.partition == partition, _t.expires_at > now, _t.embedding.is_not(None)
                )
            ).all()
        return [(key, bytes(embedding)) for key, embedding in rows]

    async def clear(self) -> None:
        await asyncio.to_thread(self._delete_all)
        self._partitions = LoadedPartitions(self._load_partition, refresh=self._partitions.refresh)

    def _delete_all(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(response_cache))

    async def aclose(self) -> None:
        return None
