"""Cache test fixtures: a backend of each kind (memory; store on SQLite and, when
KEEL_TEST_POSTGRES_URL is set, PostgreSQL; Redis when KEEL_TEST_REDIS_URL is set), with a
clock the test can move where the backend takes one."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis
from sqlalchemy import Engine

from keel.cache import CacheBackend, MemoryCacheBackend, RedisCacheBackend, StoreCacheBackend
from keel.store import create_store_engine, upgrade
from tests.databases import PostgresSchema

REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL")


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    if not REDIS_URL:
        pytest.skip("KEEL_TEST_REDIS_URL is not set: Redis variant not run")
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def redis_prefix() -> str:
    return f"keel-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def clean_redis(redis: Redis, redis_prefix: str) -> AsyncIterator[Redis]:
    yield redis
    names = [name async for name in redis.scan_iter(match=f"{redis_prefix}*")]
    if names:
        await redis.delete(*names)


def migrated_engine(database: str, request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty database: SQLite in the test's temp dir, or the session's
    PostgreSQL schema (the ``engine`` fixture's databases, chosen from a parameter)."""
    if database == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('tmp_path') / 'keel.db'}"
    else:
        schema: PostgresSchema = request.getfixturevalue("postgres_schema")
        schema.reset()
        url = schema.url
    engine = create_store_engine(url)
    request.addfinalizer(engine.dispose)
    upgrade(engine)
    return engine


@dataclass
class BackendUnderTest:
    kind: str
    backend: CacheBackend
    clock: FakeClock

    async def pass_time(self, seconds: float) -> None:
        """Let ``seconds`` go by for the backend (Redis expires keys on its own clock)."""
        if self.kind == "redis":
            await asyncio.sleep(seconds)
        else:
            self.clock.now += seconds


def make_backend(
    kind: str, clock: FakeClock, max_entries: int, request: pytest.FixtureRequest
) -> CacheBackend:
    if kind == "memory":
        return MemoryCacheBackend(max_entries, clock=clock)
    if kind.startswith("store"):
        engine = migrated_engine(kind.removeprefix("store-"), request)
        return StoreCacheBackend(engine, max_entries, index_refresh=0.0, sweep_every=1, clock=clock)
    redis: Redis = request.getfixturevalue("clean_redis")
    prefix: str = request.getfixturevalue("redis_prefix")
    return RedisCacheBackend(redis, max_entries, prefix=prefix, index_refresh=0.0)


BACKENDS = [
    "memory",
    "store-sqlite",
    pytest.param("store-postgres", marks=pytest.mark.postgres),
    "redis",
]


@pytest.fixture(params=BACKENDS)
def under_test(request: pytest.FixtureRequest, clock: FakeClock) -> BackendUnderTest:
    """Each backend, holding at most 3 entries (3 vectors per partition for Redis)."""
    return BackendUnderTest(request.param, make_backend(request.param, clock, 3, request), clock)
