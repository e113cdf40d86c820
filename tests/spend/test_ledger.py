from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError

from keel.core import BudgetExceeded, SpendSettings
from keel.spend import (
    Counters,
    InProcessCounters,
    SpendLedger,
    SpendScopes,
    SpendUnavailable,
    ledger_spent,
    set_budget,
    spend_instances,
    spend_ledger,
)
from keel.spend._ledger_store import register_instance
from tests.spend.conftest import redis_counters

# Heartbeats far apart: tests make instances look dead by hand.
SETTINGS = SpendSettings(heartbeat_interval_s=60, instance_timeout_s=600)
KEY = SpendScopes(key_id="k1", team_id="t1", model="gpt-4o")
COST = 1_000
MONTH_START = datetime(2000, 1, 1, tzinfo=UTC)


def _rows(engine: Engine, entry: str | None = None) -> int:
    query = select(func.count()).select_from(spend_ledger)
    if entry is not None:
        query = query.where(spend_ledger.c.entry == entry)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _spent(engine: Engine, scope: str = "key", scope_id: str = "k1") -> int:
    return ledger_spent(engine, scope, scope_id, MONTH_START, None)


async def _started(engine: Engine, counters: Counters | None = None, **kwargs: object) -> SpendLedger:
    ledger = SpendLedger(engine, counters or InProcessCounters(), SETTINGS, **kwargs)  # type: ignore[arg-type]
    await ledger.start()
    return ledger


@pytest.fixture
async def ledger(engine: Engine) -> AsyncIterator[SpendLedger]:
    started = await _started(engine)
    yield started
    await started.close()


def _kill(engine: Engine, ledger: SpendLedger) -> None:
    """Make ``ledger``'s instance look like a process that died long ago."""
    with engine.begin() as connection:
        connection.execute(
            update(spend_instances)
            .where(spend_instances.c.id == ledger.instance_id)
            .values(heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC))
        )


async def test_concurrent_reservations_are_durable_when_they_return_in_few_transactions(
    engine: Engine, ledger: SpendLedger
) -> None:
    reservations = await asyncio.gather(*[ledger.reserve(f"r{i}", KEY, COST) for i in range(200)])
    assert _rows(engine, "reserve") == 200  # committed before reserve returned
    assert ledger.ledger_batches < 50
    for reservation in reservations:
        await ledger.settle(reservation, COST // 4)
    await ledger.drain()
    assert _rows(engine, "settle") == 200
    assert _spent(engine) == 200 * (COST // 4)
    assert await ledger.spent("team", "t1", "total") == 200 * (COST // 4)


async def test_a_hard_budget_refuses_through_the_ledger_and_writes_nothing(
    engine: Engine, ledger: SpendLedger
) -> None:
    set_budget(engine, scope="team", scope_id="t1", period="day", limit_nanos=5 * COST, actor="t")
    await ledger.reload()
    results = await asyncio.gather(
        *[ledger.reserve(f"r{i}", KEY, COST) for i in range(20)], return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 5
    assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
    assert _rows(engine, "reserve") == 5
    # Settled below the reservation: the released room admits more.
    for reservation in admitted:
        await ledger.settle(reservation, COST // 2)
    await ledger.reserve("again", KEY, 2 * COST)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve("too much", KEY, COST)


async def test_a_failed_durable_write_undoes_the_counter_reservation(
    engine: Engine, ledger: SpendLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_budget(engine, scope="key", scope_id="k1", period="month", limit_nanos=COST, actor="t")
    await ledger.reload()

    def broken(*args: object) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr("keel.spend._ledger_writer.append_ledger_rows", broken)
    with pytest.raises(SpendUnavailable, match="could not record the reservation"):
        await ledger.reserve("r1", KEY, COST)
    monkeypatch.undo()
    assert (await ledger.reserve("r2", KEY, COST)).amount == COST  # the cap was left whole


async def test_settle_is_once_only_and_unpriced_costs_nothing(engine: Engine, ledger: SpendLedger) -> None:
    reservation = await ledger.reserve("r1", KEY, COST)
    await ledger.settle(reservation, None)
    await ledger.settle(reservation, 5 * COST)
    await ledger.drain()
    assert _rows(engine, "settle") == 1 and _spent(engine) == 0


async def test_recovery_settles_the_open_reservations_of_dead_instances_only(engine: Engine) -> None:
    dead, alive = await _started(engine), await _started(engine)
    try:
        settled = await dead.reserve("d1", KEY, 3 * COST)
        await dead.settle(settled, COST)
        await dead.reserve("d2", KEY, 5 * COST)
        await dead.reserve("d3", KEY, 7 * COST)
        await dead.drain()
        await alive.reserve("a1", KEY, 11 * COST)
        _kill(engine, dead)
        survivor = await _started(engine)  # recovers at start
        try:
            assert survivor.recovered == 2
            await asyncio.sleep(0)
            assert await survivor.sweep() == []  # once only
        finally:
            await survivor.close()
        with engine.connect() as connection:
            recovered = connection.execute(
                select(spend_ledger.c.request_id, spend_ledger.c.amount_nanos).where(spend_ledger.c.recovered)
            ).all()
        assert sorted(recovered) == [("d2", 5 * COST), ("d3", 7 * COST)]
        # Recorded spend: the settlement, the recovered reservations at their amount, and
        # the live instance's open reservation.
        assert _spent(engine) == COST + 5 * COST + 7 * COST + 11 * COST
    finally:
        await alive.close()


async def test_an_instance_whose_process_is_gone_is_recovered_at_once(engine: Engine) -> None:
    crashed = await _started(engine)
    await crashed.reserve("c1", KEY, 2 * COST)
    await crashed.drain()
    # Its heartbeat is fresh, but it ran on this host under a process id that is gone.
    with engine.begin() as connection:
        connection.execute(
            update(spend_instances).where(spend_instances.c.id == crashed.instance_id).values(pid=2**22 + 7)
        )
    restarted = await _started(engine)
    try:
        assert restarted.recovered == 1
    finally:
        await restarted.close()
    with engine.connect() as connection:
        assert connection.execute(select(spend_instances.c.id)).all() == []


async def test_close_settles_what_is_open_at_its_reserved_amount(engine: Engine) -> None:
    ledger = await _started(engine)
    await ledger.reserve("r1", KEY, 4 * COST)
    await ledger.close()
    assert _rows(engine, "settle") == 1 and _spent(engine) == 4 * COST
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(spend_instances)).scalar_one() == 0


async def test_a_cancelled_reservation_is_released(engine: Engine, ledger: SpendLedger) -> None:
    set_budget(engine, scope="key", scope_id="k1", period="month", limit_nanos=COST, actor="t")
    await ledger.reload()
    task = asyncio.create_task(ledger.reserve("r1", KEY, COST))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    await ledger.reserve("r2", KEY, COST)  # room again
    await ledger.drain()
    assert _spent(engine) == COST


async def test_a_restart_rebuilds_in_process_counters_from_the_ledger(engine: Engine) -> None:
    set_budget(engine, scope="team", scope_id="t1", period="month", limit_nanos=10 * COST, actor="t")
    first = await _started(engine)
    await first.settle(await first.reserve("r1", KEY, 6 * COST), 6 * COST)
    await first.reserve("r2", KEY, 2 * COST)  # open when the process goes
    await first.drain()
    _kill(engine, first)
    second = await _started(engine)
    try:
        await second.reserve("r3", KEY, 2 * COST)
        with pytest.raises(BudgetExceeded):
            await second.reserve("r4", KEY, 1)
    finally:
        await second.close()


async def test_redis_counters_missing_from_redis_are_rebuilt_from_the_ledger(
    engine: Engine, redis_prefix: str
) -> None:
    budget = set_budget(engine, scope="key", scope_id="k1", period="day", limit_nanos=10 * COST, actor="t")
    first = await _started(engine, redis_counters(redis_prefix))
    try:
        await first.settle(await first.reserve("r1", KEY, 7 * COST), 7 * COST)
        await first.drain()
        windows = first.windows_for(KEY, datetime.now(UTC))
        await first.counters.forget(windows)  # type: ignore[attr-defined]  # Redis lost them
        with pytest.raises(BudgetExceeded):
            await first.reserve("r2", KEY, 4 * COST)
        await first.reserve("r3", KEY, 3 * COST)
    finally:
        await first.close()
        await first.counters.close()
    assert budget.period == "day"


async def test_the_pid_check_spares_live_processes(engine: Engine) -> None:
    register_instance(engine, "other-live")
    with engine.begin() as connection:
        connection.execute(
            update(spend_instances).where(spend_instances.c.id == "other-live").values(pid=os.getppid())
        )
    ledger = await _started(engine)
    try:
        with engine.connect() as connection:
            ids = {row.id for row in connection.execute(select(spend_instances.c.id))}
        assert "other-live" in ids
    finally:
        await ledger.close()


async def test_recovery_moves_a_dead_instances_reservations_to_spent_in_redis(
    engine: Engine, redis_prefix: str
) -> None:
    set_budget(engine, scope="key", scope_id="k1", period="month", limit_nanos=10 * COST, actor="t")
    dead = await _started(engine, redis_counters(redis_prefix))
    await dead.reserve("d1", KEY, 4 * COST)
    await dead.drain()
    _kill(engine, dead)
    survivor = await _started(engine, redis_counters(redis_prefix))
    try:
        assert survivor.recovered == 1
        (window,) = survivor.windows_for(KEY, datetime.now(UTC))
        assert (await survivor.counters.read([window]))[window.key] == (4 * COST, 0)
    finally:
        await survivor.close()
        await survivor.counters.close()
        await dead.counters.close()


async def test_budget_alerts_reach_the_callback(engine: Engine) -> None:
    set_budget(
        engine, scope="team", scope_id="t1", period="week", limit_nanos=4 * COST, hard=False, actor="t"
    )
    alerts: list[tuple[bool, bool]] = []
    ledger = await _started(
        engine, on_budget_alert=lambda s: alerts.append((s.alert_crossed, s.limit_crossed))
    )
    try:
        for i in range(5):
            await ledger.reserve(f"r{i}", KEY, COST)
    finally:
        await ledger.close()
    assert alerts == [(True, False), (False, True)]
