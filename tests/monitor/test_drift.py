"""The whole pipeline on generated request logs: request_log → buckets → windows →
detectors → stored results. No false alarms on one distribution, every injected shift
flagged by the signal it moves, incremental windows, and clear errors."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from keel.core import ConfigError, InvalidRequest, NotFound
from keel.core._settings_monitor import MonitorSettings
from keel.monitor import (
    DriftMonitor,
    DriftRunner,
    Event,
    Group,
    GroupFilter,
    WindowSpec,
    drift_history,
    hashing_embedder,
    latest_drift,
    monitor_buckets,
    monitor_samples,
    signal,
)
from keel.monitor._signals import unregister_signal
from tests.monitor._traffic import make_records, seed_log

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _settings(**changes: Any) -> MonitorSettings:
    return MonitorSettings(window="1h", reference="6h", lag=0, embedder="hashing", **changes)


def _run(runner: DriftRunner, now: datetime, **kwargs: Any) -> list[Any]:
    return asyncio.run(runner.run(now=now - timedelta(seconds=1), **kwargs))


def test_no_false_alarms_across_repeated_windows(engine: Engine) -> None:
    # Twelve hours of one workload; six sliding one-hour windows against the six before.
    seed_log(engine, make_records(T0, 12 * HOUR, 2400, seed=1))
    runner = DriftRunner(engine, _settings(), embedder=hashing_embedder())
    tested: Counter[str] = Counter()
    alarms: Counter[str] = Counter()
    for hour in range(7, 13):
        for result in _run(runner, T0 + hour * HOUR, where=GroupFilter("chat")):
            if result.score is not None:
                tested[result.signal] += 1
                alarms[result.signal] += result.drifted
    assert tested["latency_ms"] == 6 and tested["input_embedding"] == 6 and tested["language"] == 6
    # Rate over every test run: at most alpha (0.05).
    assert sum(alarms.values()) / sum(tested.values()) <= 0.05, alarms


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ("topic", "input_embedding"),
        ("length", "input_tokens"),
        ("language", "language"),
        ("model", "refusal_rate"),
        ("latency", "latency_ms"),
    ],
)
def test_each_injected_shift_is_flagged_by_the_signal_it_moves(
    engine: Engine, shift: str, expected: str
) -> None:
    seed_log(
        engine,
        make_records(T0, 6 * HOUR, 1200, seed=1),
        make_records(T0 + 6 * HOUR, HOUR, 300, shift, seed=2),
    )
    runner = DriftRunner(engine, _settings(), embedder=hashing_embedder())
    results = _run(runner, T0 + 7 * HOUR, where=GroupFilter("chat"), require_data=True)
    drifted = {r.signal for r in results if r.drifted}
    assert expected in drifted, [(r.signal, r.score, r.p_value) for r in results]
    if shift == "latency":
        # A latency shift alone moves nothing about the texts.
        assert not drifted & {"language", "input_embedding", "output_embedding", "refusal_rate"}


def test_windows_read_only_new_buckets_and_new_requests(engine: Engine) -> None:
    old = make_records(T0, 7 * HOUR, 2100, seed=1)
    seed_log(engine, old)
    runner = DriftRunner(engine, _settings(), embedder=hashing_embedder())
    _run(runner, T0 + 7 * HOUR, where=GroupFilter("chat"))
    aggregated, state = runner.aggregator.rows_read, runner.states[GroupFilter("chat")]
    # The last, open bucket is computed for the window but stored only once closed, so
    # the next run reads it again: never more than that.
    open_bucket = sum(r.created_at >= T0 + 7 * HOUR - timedelta(minutes=5) for r in old)
    assert aggregated == 2100
    windows_read = state.rows_read

    new = make_records(T0 + 7 * HOUR, HOUR, 300, seed=3)
    seed_log(engine, new)
    _run(runner, T0 + 8 * HOUR, where=GroupFilter("chat"))
    # The aggregator read the new hour's requests, no older one.
    seen = sum(r.created_at < T0 + 8 * HOUR - timedelta(seconds=1) for r in new)
    assert runner.aggregator.rows_read - aggregated == seen + open_bucket
    since = T0 + 7 * HOUR - timedelta(minutes=5)
    with engine.connect() as connection:
        new_rows = connection.execute(
            select(func.count()).select_from(monitor_buckets).where(monitor_buckets.c.bucket_start >= since)
        ).scalar_one()
        new_samples = connection.execute(
            select(func.count()).select_from(monitor_samples).where(monitor_samples.c.bucket_start >= since)
        ).scalar_one()
    # The windows read the buckets stored since (and their embedding samples), no other.
    assert state.rows_read - windows_read == new_rows + new_samples
    # ... and the oldest hour left the sliding reference.
    assert min(state.buckets) >= T0 + HOUR


def test_results_are_stored_as_a_time_series(engine: Engine) -> None:
    seed_log(engine, make_records(T0, 8 * HOUR, 2400, seed=1))
    runner = DriftRunner(
        engine, _settings(), embedder=hashing_embedder(), signal_names=["latency_ms", "language"]
    )
    _run(runner, T0 + 7 * HOUR)
    _run(runner, T0 + 8 * HOUR)
    latest = latest_drift(engine, route="chat")
    assert sorted(r.signal for r in latest) == ["language", "latency_ms"]
    assert all(r.at == T0 + 8 * HOUR - timedelta(seconds=1) for r in latest)
    history = drift_history(engine, signal="latency_ms", route="chat")
    assert [r.at for r in history] == [
        T0 + 7 * HOUR - timedelta(seconds=1),
        T0 + 8 * HOUR - timedelta(seconds=1),
    ]
    assert all(r.score is not None and r.current_mean is not None for r in history)
    assert latest_drift(engine, route="other") == []


def test_a_fixed_reference_period(engine: Engine) -> None:
    seed_log(
        engine,
        make_records(T0, 2 * HOUR, 600, seed=1),
        make_records(T0 + 2 * HOUR, 10 * HOUR, 3000, "latency", seed=2),
    )
    windows = WindowSpec(HOUR, reference_start=T0, reference_end=T0 + 2 * HOUR)
    runner = DriftRunner(engine, _settings(), embedder=None, signal_names=["latency_ms"], windows=windows)
    (result,) = _run(runner, T0 + 12 * HOUR, where=GroupFilter("chat"))
    assert result.drifted and result.reference_start == T0 and result.reference_end == T0 + 2 * HOUR
    assert result.n_reference == 600


def test_unknown_signal_empty_windows_and_bad_settings_are_clear_errors(engine: Engine) -> None:
    with pytest.raises(NotFound, match=r"unknown signal 'latency' \(known: .*latency_ms"):
        DriftRunner(engine, _settings(), signal_names=["latency"])
    with pytest.raises(ConfigError) as bad:
        DriftRunner(
            engine, _settings(signals={"latncy_ms": {"enabled": False}, "latency_ms": {"detector": "kss"}})
        )
    assert [p.location for p in bad.value.problems] == [
        "monitor.signals.latncy_ms",
        "monitor.signals.latency_ms.detector",
    ]
    runner = DriftRunner(engine, _settings(), embedder=None)
    seed_log(engine, make_records(T0 - 30 * timedelta(minutes=1), timedelta(minutes=20), 50, seed=1))
    with pytest.raises(InvalidRequest, match="no requests for route 'chat' in the reference window"):
        _run(runner, T0, where=GroupFilter("chat"), require_data=True)
    with pytest.raises(InvalidRequest, match="no requests for route 'other' in the current window"):
        _run(runner, T0, where=GroupFilter("other"), require_data=True)
    with pytest.raises(InvalidRequest, match="no requests in the current window"):
        _run(runner, T0 + 10 * HOUR, require_data=True)


def test_a_signal_from_another_table_plugs_in(engine: Engine) -> None:
    # How feedback scores (issue #8) will arrive: an ``events`` signal.
    def feedback(connection: Any, start: datetime, end: datetime) -> list[Event]:
        out = []
        for i in range(int((end - start).total_seconds() // 60)):
            at = start + timedelta(minutes=i)
            score = 4.0 if at < T0 + 6 * HOUR else 2.0
            out.append(Event(at, Group("chat"), score + (i % 3) * 0.5))
        return out

    from keel.monitor import Binning

    signal("test_feedback", kind="numeric", source="events", binning=Binning.linear(0, 5, 0.25))(feedback)
    try:
        seed_log(engine, make_records(T0, 7 * HOUR, 700, seed=1))
        runner = DriftRunner(engine, _settings(), embedder=None, signal_names=["test_feedback"])
        (result,) = _run(runner, T0 + 7 * HOUR, where=GroupFilter("chat"))
        assert result.drifted and result.current_mean == pytest.approx(2.5, abs=0.2)
    finally:
        unregister_signal("test_feedback")


def test_a_prompt_version_or_model_of_a_route(engine: Engine) -> None:
    records = make_records(T0, 7 * HOUR, 1400, seed=1)
    for i, record in enumerate(records):
        record.prompt_name, record.prompt_version = "support", 1 + i % 2
    seed_log(engine, records)
    runner = DriftRunner(engine, _settings(), embedder=None, signal_names=["input_tokens"])
    (result,) = _run(runner, T0 + 7 * HOUR, where=GroupFilter("chat", prompt="support@2"))
    assert result.prompt == "support@2" and 80 < result.n_current < 120


def test_the_server_schedule_runs_and_stops(engine: Engine) -> None:
    now = datetime.now(UTC)
    seed_log(engine, make_records(now - 7 * HOUR, 7 * HOUR, 700, seed=1))

    async def scenario() -> int:
        monitor = DriftMonitor(_settings(interval=0.05), engine, embedder=hashing_embedder())
        await monitor.start()
        for _ in range(400):
            if monitor.runs >= 2:
                break
            await asyncio.sleep(0.02)
        await monitor.stop()
        assert monitor.last_error is None
        return monitor.runs

    assert asyncio.run(scenario()) >= 2
    assert {r.signal for r in latest_drift(engine, route="chat")} >= {"latency_ms", "input_embedding"}


def test_of_two_processes_only_one_stores_a_range(engine: Engine) -> None:
    seed_log(engine, make_records(T0, 2 * HOUR, 200, seed=1))
    first = DriftRunner(engine, _settings(), embedder=None).aggregator
    second = DriftRunner(engine, _settings(), embedder=None).aggregator
    aggregates = asyncio.run(second.aggregate(T0, T0 + HOUR))
    asyncio.run(first.catch_up(T0 + 2 * HOUR, history=timedelta(days=1), lag=timedelta(0)))
    # The second one read the same range meanwhile: its compare-and-set fails, nothing doubles.
    assert not second._move_watermark(T0, T0 + HOUR, aggregates)
    with engine.connect() as connection:
        stored = connection.execute(
            select(func.sum(monitor_buckets.c.count)).where(monitor_buckets.c.signal == "latency_ms")
        ).scalar_one()
    assert stored == 200
