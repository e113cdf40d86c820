"""Every backend (memory; store on SQLite and PostgreSQL; Redis) behaves the same."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from keel.cache import (
    CachedResponse,
    MemoryCacheBackend,
    RedisCacheBackend,
    StoreCacheBackend,
    response_cache,
)
from keel.core import ConfigError, Usage
from tests.cache.conftest import BackendUnderTest, FakeClock, migrated_engine


def answer(text: str, cost: int | None = 1000) -> CachedResponse:
    body = {
        "id": f"chatcmpl-{text}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    return CachedResponse(body, Usage(5, 1, 2, "counted"), cost)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


async def test_put_then_get_round_trips(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    assert await backend.get("k1") is None
    entry = answer("hello")
    await backend.put("k1", entry, 60)
    got = await backend.get("k1")
    assert got is not None
    assert got.body == entry.body
    assert got.usage == Usage(5, 1, 2, "counted")
    assert got.cost_nanos == 1000
    assert abs((got.created_at - entry.created_at).total_seconds()) < 1e-3
    await backend.put("k1", answer("again", cost=None), 60)  # a second store replaces the first
    replaced = await backend.get("k1")
    assert replaced is not None and replaced.body["id"] == "chatcmpl-again" and replaced.cost_nanos is None


async def test_entries_expire_after_their_ttl(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    await backend.put("short", answer("s"), 0.05, "p", unit(1, 0))
    await backend.put("long", answer("l"), 60, "p", unit(0, 1))
    assert await backend.get("short") is not None
    await under_test.pass_time(0.1)
    assert await backend.get("short") is None
    assert await backend.get("long") is not None
    assert await backend.nearest("p", unit(1, 0), 0.9) is None  # its vector goes with it
    found = await backend.nearest("p", unit(0, 1), 0.9)
    assert found is not None and found[0].body["id"] == "chatcmpl-l"


async def test_semantic_nearest_above_threshold_within_a_partition(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    await backend.put("cat", answer("cat"), 60, "p", unit(1, 0, 0))
    await backend.put("dog", answer("dog"), 60, "p", unit(0, 1, 0))
    await backend.put("elsewhere", answer("elsewhere"), 60, "q", unit(1, 0, 0))
    found = await backend.nearest("p", unit(0.2, 1, 0), 0.95)
    assert found is not None
    entry, similarity = found
    assert entry.body["id"] == "chatcmpl-dog"
    assert similarity == pytest.approx(1 / np.sqrt(1.04), abs=1e-6)
    assert await backend.nearest("p", unit(1, 1, 0), 0.95) is None  # 0.707: below
    assert await backend.nearest("p", unit(0, 0, 1), 0.5) is None
    assert await backend.nearest("nobody", unit(1, 0, 0), 0.5) is None
    other = await backend.nearest("q", unit(1, 0, 0), 0.99)
    assert other is not None and other[0].body["id"] == "chatcmpl-elsewhere"


async def test_bounded(under_test: BackendUnderTest) -> None:
    backend = under_test.backend  # at most 3
    for i in range(5):
        await backend.put(f"k{i}", answer(str(i)), 60, "p", unit(1, i))
        await under_test.pass_time(0.001)
    if under_test.kind == "redis":
        # Redis bounds the partition's vectors; its memory policy and TTLs bound the keys.
        assert await backend.nearest("p", unit(1, 0), 0.999) is None  # k0's vector pruned
        found = await backend.nearest("p", unit(1, 4), 0.999)
        assert found is not None and found[0].body["id"] == "chatcmpl-4"
        return
    assert [await backend.get(f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert await backend.nearest("p", unit(1, 0), 0.999) is None
    found = await backend.nearest("p", unit(1, 2), 0.999)
    assert found is not None and found[0].body["id"] == "chatcmpl-2"


async def test_clear(under_test: BackendUnderTest) -> None:
    await under_test.backend.put("k", answer("x"), 60, "p", unit(1, 0))
    await under_test.backend.clear()
    assert await under_test.backend.get("k") is None
    assert await under_test.backend.nearest("p", unit(1, 0), 0.5) is None


async def test_memory_lookups_refresh_recency(clock: FakeClock) -> None:
    backend = MemoryCacheBackend(2, clock=clock)
    await backend.put("a", answer("a"), 60)
    await backend.put("b", answer("b"), 60)
    await backend.get("a")  # a is now the most recent: b goes first
    await backend.put("c", answer("c"), 60)
    assert [await backend.get(k) is not None for k in "abc"] == [True, False, True]
    assert len(backend) == 2


SharedFactory = Callable[[float], StoreCacheBackend | RedisCacheBackend]


@pytest.fixture(params=["store-sqlite", pytest.param("store-postgres", marks=pytest.mark.postgres), "redis"])
def shared_backends(request: pytest.FixtureRequest, clock: FakeClock) -> SharedFactory:
    """Makes backends that stand for separate processes on one database or Redis."""
    if request.param == "redis":
        redis: Redis = request.getfixturevalue("clean_redis")
        prefix: str = request.getfixturevalue("redis_prefix")
        return lambda refresh: RedisCacheBackend(redis, prefix=prefix, index_refresh=refresh)
    engine = migrated_engine(request.param.removeprefix("store-"), request)
    return lambda refresh: StoreCacheBackend(engine, index_refresh=refresh, clock=clock)


async def test_shared_backends_share_entries_between_processes(shared_backends: SharedFactory) -> None:
    first, second = shared_backends(60), shared_backends(60)
    assert await second.nearest("p", unit(1, 0), 0.9) is None  # second reads the (empty) partition
    await first.put("k", answer("shared"), 60, "p", unit(1, 0))
    got = await second.get("k")
    assert got is not None and got.body["id"] == "chatcmpl-shared"
    # Within index_refresh, second answers from the partition it read; a later reader sees it.
    assert await second.nearest("p", unit(1, 0), 0.9) is None
    found = await shared_backends(60).nearest("p", unit(1, 0), 0.9)
    assert found is not None and found[0].body["id"] == "chatcmpl-shared"


async def test_store_sweep_deletes_expired_and_oldest_rows(
    clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    engine = migrated_engine("sqlite", request)
    backend = StoreCacheBackend(engine, 2, sweep_every=1000, clock=clock)
    await backend.put("old", answer("old"), 60)
    clock.now += 1
    await backend.put("expiring", answer("expiring"), 5)
    clock.now += 1
    for key in ("mid", "new"):
        await backend.put(key, answer(key), 60)
        clock.now += 1
    clock.now += 10
    await backend.sweep()
    with engine.connect() as connection:
        keys = set(connection.execute(select(response_cache.c.key)).scalars())
        assert connection.execute(select(func.count()).select_from(response_cache)).scalar_one() == 2
    assert keys == {"mid", "new"}


async def test_redis_backend_refuses_a_decoding_client() -> None:
    decoding = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True)  # never connects
    with pytest.raises(ConfigError, match="decode_responses"):
        RedisCacheBackend(decoding)
    await decoding.aclose()
