from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import Engine, func, select

from keel.core import RequestLogSettings
from keel.store import RequestLogWriter, recent_requests, request_log
from tests.store.conftest import make_record


def stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(request_log.c.id)).scalars())


def row_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(request_log)).scalar_one())


async def test_concurrent_puts_are_all_written(engine: Engine) -> None:
    writer = RequestLogWriter(
        engine, RequestLogSettings(queue_size=1000, batch_size=200, flush_interval=0.05)
    )
    await writer.start()

    async def client(task: int) -> None:
        for i in range(100):
            await writer.put(make_record(task * 100 + i))

    await asyncio.gather(*(client(task) for task in range(50)))
    await writer.drain_and_stop(timeout=60)

    assert stored_ids(engine) == {f"req-{n:06d}" for n in range(5000)}
    assert (writer.written, writer.failed, writer.dropped, writer.depth()) == (5000, 0, 0, 0)


async def test_drain_and_stop_flushes_without_waiting_for_the_interval(engine: Engine) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(batch_size=500, flush_interval=60))
    await writer.start()
    for n in range(10):
        await writer.put(make_record(n))
    await asyncio.wait_for(writer.drain_and_stop(), timeout=10)
    assert row_count(engine) == 10
    with pytest.raises(RuntimeError, match="stopped"):
        await writer.put(make_record(99))


async def test_a_partial_batch_is_written_after_the_flush_interval(engine: Engine) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(batch_size=500, flush_interval=0.05))
    await writer.start()
    await writer.put(make_record(1))
    for _ in range(100):
        if writer.written:
            break
        await asyncio.sleep(0.02)
    assert writer.written == 1
    assert row_count(engine) == 1
    await writer.drain_and_stop()


async def test_full_queue_makes_put_wait_and_loses_nothing(engine: Engine) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(queue_size=2, batch_size=1, flush_interval=0.01))
    await writer.put(make_record(0))
    await writer.put(make_record(1))
    blocked = asyncio.create_task(writer.put(make_record(2)))
    await asyncio.sleep(0.1)
    assert not blocked.done()  # not started yet: nothing drains the queue
    assert writer.depth() == 3

    await writer.start()
    await asyncio.wait_for(blocked, timeout=10)
    await asyncio.gather(*(writer.put(make_record(n)) for n in range(3, 60)))
    await writer.drain_and_stop(timeout=30)
    assert stored_ids(engine) == {f"req-{n:06d}" for n in range(60)}
    assert writer.written == 60


async def test_a_bad_row_costs_only_itself(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(batch_size=100, flush_interval=0.05))
    for n in (1, 2, 1, 3):  # the second req-000001 breaks the primary key
        await writer.put(make_record(n))
    with caplog.at_level(logging.ERROR, logger="keel.store.request_log"):
        await writer.start()
        await writer.drain_and_stop(timeout=30)
    assert stored_ids(engine) == {"req-000001", "req-000002", "req-000003"}
    assert (writer.written, writer.failed) == (3, 1)
    assert "req-000001" in caplog.text


async def test_batches_that_keep_failing_are_retried_then_counted(
    bare_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # No migrations: every insert fails.
    writer = RequestLogWriter(
        bare_engine,
        RequestLogSettings(batch_size=100, flush_interval=0.01),
        max_attempts=3,
        retry_backoff=0.01,
    )
    await writer.start()
    for n in range(5):
        await writer.put(make_record(n))
    with caplog.at_level(logging.ERROR, logger="keel.store.request_log"):
        await writer.drain_and_stop(timeout=30)
    assert (writer.written, writer.failed, writer.dropped) == (0, 5, 0)
    assert "not written" in caplog.text


async def test_written_records_read_back_newest_first(engine: Engine) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(flush_interval=0.01))
    await writer.start()
    for n in range(3):
        await writer.put(make_record(n, extra={"n": n}))
    await writer.drain_and_stop()
    assert [(r.id, r.extra) for r in recent_requests(engine)] == [
        ("req-000002", {"n": 2}),
        ("req-000001", {"n": 1}),
        ("req-000000", {"n": 0}),
    ]


async def test_a_stop_that_times_out_counts_what_it_abandons(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RequestLogWriter(engine, RequestLogSettings(batch_size=1, flush_interval=0.01))
    blocker = engine.connect()
    try:
        # Another session holds the table: the writer's first insert waits on it.
        if engine.dialect.name == "sqlite":
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            blocker.exec_driver_sql("LOCK TABLE request_log IN ACCESS EXCLUSIVE MODE")
        await writer.start()
        for n in range(4):
            await writer.put(make_record(n))
        with caplog.at_level(logging.ERROR, logger="keel.store.request_log"):
            await writer.drain_and_stop(timeout=0.3)
        assert (writer.written, writer.dropped) == (0, 4)
        assert "4 records not written" in caplog.text
    finally:
        blocker.rollback()
        blocker.close()
    # The abandoned insert still finishes in its thread; let it before the engine goes.
    for _ in range(250):
        if row_count(engine):
            break
        await asyncio.sleep(0.02)
