"""A gateway killed with SIGKILL under load, then restarted on the same database: the
reservations it left open are settled at their reserved amount, so the recorded spend is
at least what the upstream's own count of the tokens it served costs, and the budget
counters the restarted gateway enforces start from that recorded spend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from redis import Redis
from sqlalchemy import Engine, select, update

from keel.core import BudgetExceeded, SpendSettings
from keel.spend import (
    BudgetWindow,
    RedisCounters,
    SpendLedger,
    SpendScopes,
    budget_status,
    ledger_spent,
    set_budget,
    spend_instances,
    window_of,
)
from tests.e2e.conftest import REDIS_URL
from tests.e2e.harness import RESERVATION, Stack, chat_body, cost_of, wait_until
from tests.e2e.traffic import Outcome, stream, unary
from tests.fakes import Fault, ReceivedRequest

pytestmark = pytest.mark.timeout(180)

CALLS = 60
# The first calls upstream answer at once (their reservations are settled before the
# kill); the rest take a while (so some are mid-answer when the gateway dies).
FAST = 10
MID_STREAM_AT_KILL = 5


async def _call(session: aiohttp.ClientSession, stack: Stack, url: str, index: int) -> Outcome:
    tag = f"t{index:04d}"
    kind = index % 3
    if kind == 0:
        return await unary(session, url, stack.headers, chat_body(tag, "main", stream=False))
    raw = chat_body(tag, "main", stream=True, include_usage=kind == 1)
    return await stream(session, url, stack.headers, raw)


def _served_cost(requests: list[ReceivedRequest]) -> int:
    """The upstream's own count of what it served (every answer it began: a stream cut by
    the crash counts whole), at the configured prices."""
    return sum(cost_of(r.usage) for r in requests if r.status == 200 and r.usage is not None)


@pytest.mark.parametrize(
    "stack",
    ["sqlite", pytest.param("shared", marks=pytest.mark.postgres)],
    indirect=True,
    ids=["sqlite-in-process", "postgres-redis"],
)
async def test_sigkill_under_load_then_restart(stack: Stack) -> None:
    assert stack.key is not None
    key_id = stack.key.key.id
    stack.set_key_budget(10**15)  # a hard budget, far from reached: counters are in play
    main = stack.deployments["main"]
    main.script(*[Fault() for _ in range(FAST)])
    main.set_default(Fault(delay=0.2, chunk_delay=0.05))
    [gateway] = await stack.start(1)

    def mid_load() -> bool:
        requests = main.requests()
        completed = [r for r in requests if r.completed]
        streaming = [r for r in requests if r.status == 200 and not r.completed and not r.cancelled]
        return len(completed) >= FAST and len(streaming) >= MID_STREAM_AT_KILL

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=90)) as session:
        calls = [asyncio.create_task(_call(session, stack, gateway.chat_url, i)) for i in range(CALLS)]
        await wait_until(mid_load, 60, "calls settled and calls mid-answer")
        gateway.kill()
        unfinished_at_kill = [r for r in main.requests() if not r.completed]
        outcomes = await asyncio.gather(*calls)
    assert any(o.result == "ok" for o in outcomes)
    assert any(o.result == "error" for o in outcomes), "calls in flight were cut by the kill"

    # What the dead gateway left: a durable reservation for every call it sent upstream
    # (written before the call), and those it never finished still open.
    rows = stack.ledger()
    reserved = {r.reservation_id for r in rows if r.entry == "reserve"}
    settled = {r.reservation_id for r in rows if r.entry == "settle"}
    open_before = reserved - settled
    upstream_calls = main.requests()
    assert len(reserved) >= len(upstream_calls)
    assert len(open_before) >= len(unfinished_at_kill) >= MID_STREAM_AT_KILL
    assert stack.budget is not None
    recorded_at_kill = ledger_spent(stack.engine, "key", key_id, *window_of("total", datetime.now(UTC)))

    # The restarted gateway's budget leaves room for less than one more reservation, if
    # (and only if) its counters count what the crash left as spent.
    stack.set_key_budget(recorded_at_kill + RESERVATION - 1)
    await stack.restart(gateway)

    rows = stack.ledger()
    reserves = {r.reservation_id: r for r in rows if r.entry == "reserve"}
    settles = {r.reservation_id: r for r in rows if r.entry == "settle"}
    assert set(settles) == set(reserves), "no reservation is left open after the restart"
    recovered = {rid for rid, r in settles.items() if r.recovered}
    assert recovered == open_before
    assert all(settles[rid].amount_nanos == reserves[rid].amount_nanos for rid in recovered)
    spent = sum(r.amount_nanos for r in settles.values())
    assert spent == recorded_at_kill
    assert spent >= _served_cost(main.requests()), "recorded spend is never below real spend"
    status = budget_status(stack.engine, stack.budget)
    assert (status.spent, status.reserved) == (spent, 0)
    if stack.redis_url is not None:
        # Shared counters outlive the process: they must agree with the ledger too.
        assert stack.redis_prefix is not None
        counters = RedisCounters.from_url(stack.redis_url, prefix=stack.redis_prefix)
        window = BudgetWindow.of(stack.budget, *window_of("total", datetime.now(UTC)))
        try:
            assert await counters.read([window]) == {window.key: (spent, 0)}
        finally:
            await counters.close()
    with stack.engine.connect() as connection:
        instances = connection.execute(select(spend_instances.c.id)).scalars().all()
    assert len(instances) == 1, "the dead instance is forgotten"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        raw = chat_body("t9000", "main", stream=False)
        refused = await unary(session, gateway.chat_url, stack.headers, raw)
        assert refused.result == "refused", refused
        # One nano more and a reservation fits (once the gateway has reloaded its budgets).
        stack.set_key_budget(recorded_at_kill + RESERVATION)
        main.set_default(None)
        admitted: list[Outcome] = []

        async def one_more() -> bool:
            outcome = await unary(session, gateway.chat_url, stack.headers, raw)
            admitted.append(outcome)
            return outcome.result != "refused"

        for _ in range(300):
            if await one_more():
                break
            await asyncio.sleep(0.1)
        assert admitted[-1].result == "ok", admitted[-1]
    await gateway.stop()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own (its keys are deleted after)."""
    if not REDIS_URL:
        pytest.skip("KEEL_TEST_REDIS_URL is not set: Redis variant not run")
    prefix = f"keele2e:{uuid.uuid4().hex[:10]}:"
    yield prefix
    with Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


async def test_a_settlement_in_redis_whose_row_died_with_the_process_is_recovered_once(
    engine: Engine, redis_prefix: str
) -> None:
    # The window the kill above hits at random, step by step: a process settles a call in
    # Redis (shared, it outlives the process), and dies before its settle row is written.
    # Recovery settles the open reservation in the ledger at its reserved amount; Redis
    # must then count that amount as spent, not release the reservation a second time.
    set_budget(engine, scope="key", scope_id="k1", period="total", limit_nanos=10_000, actor="t")
    settings = SpendSettings(heartbeat_interval_s=60, instance_timeout_s=600)
    scopes = SpendScopes(key_id="k1")
    assert REDIS_URL is not None
    dead = SpendLedger(engine, RedisCounters.from_url(REDIS_URL, prefix=redis_prefix), settings)
    await dead.start()
    reservation = await dead.reserve("r1", scopes, 4_000)
    await dead.settle(reservation, 1_000)
    dead._writer._pending.clear()  # the process dies with its settle row still queued
    with engine.begin() as connection:
        connection.execute(
            update(spend_instances)
            .where(spend_instances.c.id == dead.instance_id)
            .values(heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    survivor = SpendLedger(engine, RedisCounters.from_url(REDIS_URL, prefix=redis_prefix), settings)
    await survivor.start()  # recovers at start
    try:
        assert survivor.recovered == 1
        (window,) = survivor.windows_for(scopes, datetime.now(UTC))
        assert ledger_spent(engine, "key", "k1", window.start, None) == 4_000
        assert await survivor.counters.read([window]) == {window.key: (4_000, 0)}
        # The room left is the ledger's: 6 000 fit, one nano more does not.
        with pytest.raises(BudgetExceeded):
            await survivor.reserve("r2", scopes, 6_001)
        await survivor.settle(await survivor.reserve("r3", scopes, 6_000), 6_000)
    finally:
        await survivor.close()
        await dead.close()
        await survivor.counters.close()
        await dead.counters.close()
    # What Redis remembered of settlements not yet written is gone once they are (or once
    # recovery used it): nothing is left to grow.
    with Redis.from_url(REDIS_URL) as client:
        assert not list(client.scan_iter(match=f"{redis_prefix}settling:*"))
