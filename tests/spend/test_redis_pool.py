"""Many concurrent requests share a bounded Redis connection pool: they wait for a
connection, they do not fail."""

from __future__ import annotations

import asyncio

from keel.spend import LimitWindow
from tests.spend.conftest import redis_counters


async def test_a_burst_larger_than_the_pool_waits_for_connections(redis_prefix: str) -> None:
    counters = redis_counters(redis_prefix, max_connections=2)
    limits = [LimitWindow("key:burst", rpm=10_000, tpm=10_000_000)]

    async def one() -> None:
        grant = await counters.take(limits, tokens=10)
        await counters.adjust(grant, 5)

    try:
        # Every call would fail with "Too many connections" on redis-py's default pool.
        await asyncio.gather(*(one() for _ in range(50)))
    finally:
        await counters.close()
