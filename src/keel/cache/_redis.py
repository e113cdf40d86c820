"""The Redis backend: shared by every process and replica on one Redis (plain Redis 7,
no modules). Entries are keys that expire on their own (``SET ... PX``); a semantic
partition is a hash of entry key -> (stored-at, float32 vector), read into memory and
refreshed every ``index_refresh`` seconds, pruned to ``max_entries`` fields (entries
gone first, then the oldest). Redis's own memory policy bounds the entries."""

from __future__ import annotations

import struct
import time
from typing import cast

from redis.asyncio import Redis

from keel.cache._entry import CachedResponse, decode_entry, encode_entry
from keel.cache._vectors import LoadedPartitions, Vector
from keel.core import ConfigError, ConfigProblem

_STAMP = struct.Struct("<d")


class RedisCacheBackend:
    def __init__(
        self,
        redis: Redis,
        max_entries: int = 10_000,
        *,
        prefix: str = "keel:cache:",
        index_refresh: float = 5.0,
    ) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigError(
                [ConfigProblem("redis_url", "the response cache needs a client with decode_responses=False")]
            )
        self.redis = redis
        self.max_entries = max_entries
        self.prefix = prefix
        self._partitions = LoadedPartitions(self._load_partition, refresh=index_refresh)

    def _entry_key(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _partition_key(self, partition: str) -> str:
        return f"{self.prefix}p:{partition}"

    async def _hash(self, name: str) -> dict[bytes, bytes]:
        # The client returns bytes (decode_responses=False is checked above).
        return cast("dict[bytes, bytes]", await self.redis.hgetall(name))

    async def get(self, key: str) -> CachedResponse | None:
        data = await self.redis.get(self._entry_key(key))
        return None if data is None else decode_entry(data)

    async def put(
        self,
        key: str,
        entry: CachedResponse,
        ttl: float,
        partition: str | None = None,
        vector: Vector | None = None,
    ) -> None:
        ttl_ms = max(1, round(ttl * 1000))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._entry_key(key), encode_entry(entry), px=ttl_ms)
            if partition is not None and vector is not None:
                hash_key = self._partition_key(partition)
                pipe.hset(hash_key, key, _STAMP.pack(time.time()) + vector.tobytes())
                # The index lives as long as its longest-lived entry.
                pipe.pexpire(hash_key, ttl_ms, nx=True)
                pipe.pexpire(hash_key, ttl_ms, gt=True)
                pipe.hlen(hash_key)
            results = await pipe.execute()
        if partition is not None and vector is not None:
            self._partitions.add(partition, key, vector)
            if int(results[-1]) > self.max_entries:
                await self._prune(partition)

    async def _prune(self, partition: str) -> None:
        hash_key = self._partition_key(partition)
        fields = await self._hash(hash_key)
        names = list(fields)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self._entry_key(name.decode()))
            alive = await pipe.execute()
        gone = [name for name, exists in zip(names, alive, strict=True) if not exists]
        kept = sorted(
            (name for name, exists in zip(names, alive, strict=True) if exists),
            key=lambda name: _STAMP.unpack_from(fields[name])[0],
        )
        gone += kept[: max(0, len(kept) - self.max_entries)]
        if gone:
            await self.redis.hdel(hash_key, *gone)
            for name in gone:
                self._partitions.remove(partition, name.decode())

    async def nearest(
        self, partition: str, vector: Vector, threshold: float
    ) -> tuple[CachedResponse, float] | None:
        return await self._partitions.nearest(partition, vector, threshold, self.get)

    async def _load_partition(self, partition: str) -> list[tuple[str, bytes]]:
        fields = await self._hash(self._partition_key(partition))
        return [(name.decode(), value[_STAMP.size :]) for name, value in fields.items()]

    async def clear(self) -> None:
        """Delete every key under this backend's prefix."""
        async for name in self.redis.scan_iter(match=f"{self.prefix}*", count=500):
            await self.redis.delete(name)
        self._partitions = LoadedPartitions(self._load_partition, refresh=self._partitions.refresh)

    async def aclose(self) -> None:
        return None  # the client belongs to whoever built it
