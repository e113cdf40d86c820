"""Spend test fixtures: a Redis key prefix of each test's own (skipped, saying so, when
KEEL_TEST_REDIS_URL is not set), and counters of both kinds."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis

from keel.spend import Budget, BudgetWindow, Counters, InProcessCounters, RedisCounters, window_of

REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    if not REDIS_URL:
        pytest.skip("KEEL_TEST_REDIS_URL is not set: Redis variant not run")
    prefix = f"keeltest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    with Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def redis_counters(prefix: str, **kwargs: object) -> RedisCounters:
    assert REDIS_URL
    return RedisCounters.from_url(REDIS_URL, prefix=prefix, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["in_process", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    """Each backend in turn."""
    if request.param == "in_process":
        yield InProcessCounters()
        return
    prefix = request.getfixturevalue("redis_prefix")
    backend = redis_counters(prefix)
    yield backend
    await backend.close()


def make_budget(
    limit_nanos: int,
    *,
    scope: str = "key",
    scope_id: str = "k1",
    period: str = "month",
    hard: bool = True,
    alert_at_fraction: float | None = 0.8,
    budget_id: str | None = None,
) -> Budget:
    return Budget(
        id=budget_id or f"bud_{uuid.uuid4().hex[:8]}",
        scope=scope,  # type: ignore[arg-type]
        scope_id=scope_id,
        period=period,  # type: ignore[arg-type]
        limit_nanos=limit_nanos,
        hard=hard,
        alert_at_fraction=alert_at_fraction,
        team_id=None,
        created_at=datetime.now(UTC),
        created_by="test",
    )


def window(budget: Budget, at: datetime | None = None) -> BudgetWindow:
    start, end = window_of(budget.period, at or datetime.now(UTC))
    return BudgetWindow.of(budget, start, end)
