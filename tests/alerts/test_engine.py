"""The evaluator end to end: rules over seeded data, notifications to a real webhook
receiver, de-duplication, resolved notices, ``for:``, restarts and several processes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from keel.alerts import (
    AlertEngine,
    Observation,
    SignalContext,
    active_alerts,
    alert_history,
    alert_signal,
    alert_states,
)
from keel.core import SpendSettings
from keel.spend import InProcessCounters, SpendLedger, SpendScopes, set_budget
from keel.store import create_store_engine
from tests.alerts.conftest import Receiver, alert_settings, seed_requests

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
USD = 1_000_000_000


async def _spend(engine: Engine, team: str, nanos: int) -> None:
    ledger = SpendLedger(engine, InProcessCounters(), SpendSettings())
    await ledger.start()
    try:
        reservation = await ledger.reserve(f"r-{nanos}", SpendScopes(team_id=team), nanos)
        await ledger.settle(reservation, nanos)
    finally:
        await ledger.close()


async def test_a_budget_crossing_notifies_firing_once_and_resolved_once(
    engine: Engine, receiver: Receiver
) -> None:
    budget = set_budget(
        engine, scope="team", scope_id="t1", period="month", limit_nanos=USD, alert_at_fraction=0.8, actor="t"
    )
    set_budget(engine, scope="team", scope_id="t2", period="month", limit_nanos=USD, actor="t")
    # No threshold: each budget's own alert_at_fraction (80%) is it.
    alerts = AlertEngine(alert_settings(receiver, {"name": "budgets", "kind": "budget_used"}), engine)
    await _spend(engine, "t1", USD // 2)
    assert await alerts.evaluate_once() == []

    await _spend(engine, "t1", USD * 35 // 100)  # 85% of the limit
    fired = await alerts.evaluate_once()
    for _ in range(3):  # still over: no second message
        assert await alerts.evaluate_once() == []
    assert [event.state for event in fired] == ["firing"]
    assert receiver.states() == ["firing"]
    message = receiver.received[0]
    assert message["alert"] == "budgets" and message["severity"] == "warning"
    assert message["value"] == 85.0 and message["threshold"] == 80.0
    assert message["labels"] == {"budget": budget.id, "scope": "team", "scope_id": "t1"}
    assert message["started_at"] and message["resolved_at"] is None
    assert message["url"] == "http://keel.test/ui/alerts"
    assert "85.0%" in message["summary"]
    assert [a.rule for a in active_alerts(engine, team_id="t1")] == ["budgets"]
    assert active_alerts(engine, team_id="t2") == []

    # The limit is raised to $10: 8.5% used, the alert clears.
    set_budget(engine, scope="team", scope_id="t1", period="month", limit_nanos=10 * USD, actor="t")
    resolved = await alerts.evaluate_once()
    assert await alerts.evaluate_once() == []
    assert [event.state for event in resolved] == ["resolved"]
    assert receiver.states() == ["firing", "resolved"]
    assert receiver.received[1]["resolved_at"] is not None
    assert receiver.received[1]["started_at"] == message["started_at"]
    assert active_alerts(engine) == []
    history = alert_history(engine, team_id="t1")
    assert [(e.state, e.team_id) for e in history] == [("resolved", "t1"), ("firing", "t1")]
    assert history[0].notifications == {"hook": {"ok": True, "attempts": 1, "error": None}}
    assert alert_history(engine, team_id="t2") == []


async def test_a_latency_degradation_notifies_firing_once_and_resolved_once(
    engine: Engine, receiver: Receiver
) -> None:
    rule = {"name": "slow", "kind": "latency_p95", "threshold": 1000, "window": "5m", "min_requests": 10}
    alerts = AlertEngine(alert_settings(receiver, rule), engine)
    seed_requests(engine, NOW - timedelta(minutes=1), 40, latency_ms=120.0)
    assert await alerts.evaluate_once(NOW) == []

    # 4 of 44 slow: p95 (the 42nd value) is slow.
    seed_requests(engine, NOW + timedelta(seconds=30), 4, latency_ms=2500.0)
    events = []
    for step in range(1, 5):
        events += await alerts.evaluate_once(NOW + timedelta(seconds=30 * step))
    assert [e.state for e in events] == ["firing"]
    assert events[0].value == 2500.0 and events[0].threshold == 1000.0
    assert "p95 latency 2,500 ms over 5m (44 requests)" in events[0].summary

    # Five minutes on, only fast requests are in the window.
    later = NOW + timedelta(minutes=7)
    seed_requests(engine, later - timedelta(seconds=10), 20, latency_ms=90.0)
    events = [e for step in range(3) for e in await alerts.evaluate_once(later + timedelta(seconds=step))]
    assert [e.state for e in events] == ["resolved"]
    assert receiver.states() == ["firing", "resolved"]
    assert receiver.received[1]["value"] == 90.0


async def test_for_holds_a_breach_pending_before_it_fires(engine: Engine, receiver: Receiver) -> None:
    rule = {"name": "errors", "kind": "error_rate", "threshold": 20, "window": "10m", "for": "2m"}
    alerts = AlertEngine(alert_settings(receiver, rule, retries=0), engine)
    seed_requests(engine, NOW, 10, status=500)
    seed_requests(engine, NOW, 10, status=200)
    assert await alerts.evaluate_once(NOW) == []
    assert [s.state for s in alert_states(engine)] == ["pending"]
    assert await alerts.evaluate_once(NOW + timedelta(seconds=90)) == []
    fired = await alerts.evaluate_once(NOW + timedelta(seconds=121))
    assert [(e.state, e.value) for e in fired] == [("firing", 50.0)]

    # A breach that clears while pending is never told.
    other = {"name": "blips", "kind": "error_rate", "threshold": 20, "window": "1m", "for": "5m"}
    blips = AlertEngine(alert_settings(receiver, rule, other), engine)
    seed_requests(engine, NOW + timedelta(minutes=20), 10, status=503)
    assert await blips.evaluate_once(NOW + timedelta(minutes=20)) == []
    assert await blips.evaluate_once(NOW + timedelta(minutes=22)) == []  # the window is empty
    assert receiver.states("blips") == []
    assert {s.rule: s.state for s in alert_states(engine)}["blips"] == "ok"


async def test_a_restart_does_not_notify_again(engine: Engine, receiver: Receiver) -> None:
    rule = {"name": "errors", "kind": "error_rate", "threshold": 10, "min_requests": 1}
    settings = alert_settings(receiver, rule)
    seed_requests(engine, NOW, 5, status=500)
    assert len(await AlertEngine(settings, engine).evaluate_once(NOW)) == 1
    assert await AlertEngine(settings, engine).evaluate_once(NOW + timedelta(seconds=5)) == []
    assert receiver.states() == ["firing"]


async def test_two_engines_on_one_database_notify_each_transition_once(
    database_url: str, engine: Engine, receiver: Receiver
) -> None:
    rules = [
        {"name": "errors", "kind": "error_rate", "threshold": 10, "min_requests": 1, "window": "1m"},
        {"name": "slow", "kind": "latency_p95", "threshold": 500, "min_requests": 1, "window": "1m"},
    ]
    settings = alert_settings(receiver, *rules)
    # Two store engines: two processes' connection pools.
    stores = [create_store_engine(database_url) for _ in range(2)]
    try:
        gateways = [AlertEngine(settings, store) for store in stores]
        for round_ in range(4):
            at = NOW + timedelta(minutes=2 * round_)
            bad = round_ % 2 == 0
            seed_requests(engine, at, 3, status=500 if bad else 200, latency_ms=900.0 if bad else 50.0)
            results = await asyncio.gather(*(g.evaluate_once(at) for g in gateways))
            again = await asyncio.gather(*(g.evaluate_once(at + timedelta(seconds=1)) for g in gateways))
            assert sum(len(r) for r in results) == 2 and all(r == [] for r in again)
    finally:
        for store in stores:
            store.dispose()
    expected = ["firing", "resolved", "firing", "resolved"]
    assert receiver.states("errors") == expected and receiver.states("slow") == expected
    assert len(alert_history(engine)) == 8


async def test_a_failing_channel_is_retried_and_recorded_never_raised(
    engine: Engine, receiver: Receiver
) -> None:
    rule = {"name": "errors", "kind": "error_rate", "threshold": 10, "min_requests": 1}
    alerts = AlertEngine(alert_settings(receiver, rule, retries=2), engine)
    receiver.statuses = [500, 500, 500]
    seed_requests(engine, NOW, 2, status=500)
    [event] = await alerts.evaluate_once(NOW)
    assert receiver.attempts == 3 and receiver.received == []
    outcome = event.notifications["hook"]
    assert outcome["ok"] is False and outcome["attempts"] == 3 and "500" in outcome["error"]
    assert alert_history(engine)[0].notifications == event.notifications

    # A flaky channel: the second try gets through.
    receiver.statuses = [502]
    seed_requests(engine, NOW + timedelta(minutes=10), 2, status=200)
    [resolved] = await alerts.evaluate_once(NOW + timedelta(minutes=10))
    assert resolved.notifications["hook"] == {"ok": True, "attempts": 2, "error": None}
    assert receiver.states() == ["resolved"]


async def test_series_by_team_and_filters(engine: Engine, receiver: Receiver) -> None:
    rule = {
        "name": "team-errors",
        "kind": "error_rate",
        "threshold": 25,
        "by": "team",
        "min_requests": 4,
        "filters": {"route": "chat"},
    }
    alerts = AlertEngine(alert_settings(receiver, rule), engine)
    seed_requests(engine, NOW, 2, route="chat", team_id="t1", status=500)
    seed_requests(engine, NOW, 2, route="chat", team_id="t1", error_type="stream_broken")
    seed_requests(engine, NOW, 4, route="chat", team_id="t2")
    seed_requests(engine, NOW, 2, route="chat", team_id="t3", status=500)  # too few requests
    seed_requests(engine, NOW, 20, route="embed", team_id="t2", status=500)  # another route
    events = await alerts.evaluate_once(NOW)
    assert [(e.team_id, e.value, dict(e.labels)) for e in events] == [
        ("t1", 100.0, {"route": "chat", "team": "t1"})
    ]
    assert "4 of 4 requests" in events[0].summary
    assert [a.team_id for a in active_alerts(engine)] == ["t1"]


async def test_guard_ttft_spend_rate_and_eval_gate_signals(engine: Engine, receiver: Receiver) -> None:
    from keel.evals._tables import eval_runs

    rules = [
        {"name": "guards", "kind": "guard_trigger_rate", "threshold": 30, "min_requests": 1},
        {"name": "ttft", "kind": "ttft_p95", "threshold": 800, "min_requests": 1},
        {"name": "spike", "kind": "spend_rate", "threshold": 3, "window": "1h", "baseline": 4},
        {
            "name": "spike-z",
            "kind": "spend_rate",
            "threshold": 3,
            "window": "1h",
            "baseline": 4,
            "method": "zscore",
        },
        {"name": "gate", "kind": "eval_gate_failed", "filters": {"suite": "faq"}},
    ]
    alerts = AlertEngine(alert_settings(receiver, *rules), engine)
    flagged = {"input": {"policy": "p", "decision": "flag"}, "output": None}
    allowed = {"input": {"policy": "p", "decision": "allow"}, "output": {"policy": "p", "decision": "pass"}}
    seed_requests(engine, NOW, 2, guards=flagged, ttft_ms=1200.0)
    seed_requests(engine, NOW, 3, guards=allowed, ttft_ms=100.0)
    for hour in range(1, 5):  # the baseline: $0.10 an hour, give or take
        seed_requests(engine, NOW - timedelta(hours=hour), 1, cost_nanos=USD // 10 + hour * 1000)
    seed_requests(engine, NOW, 1, cost_nanos=USD)  # this hour: $1
    with engine.begin() as connection:
        for run, suite, passed, minutes in [
            ("r1", "faq", True, 30),
            ("r2", "faq", False, 5),
            ("r3", "x", False, 5),
        ]:
            connection.execute(
                eval_runs.insert().values(
                    id=run,
                    suite=suite,
                    created_at=NOW - timedelta(minutes=minutes + 1),
                    finished_at=NOW - timedelta(minutes=minutes),
                    status="complete",
                    config={},
                    cost_nanos=0,
                    gate_passed=passed,
                )
            )
    events = {e.rule: e for e in await alerts.evaluate_once(NOW)}
    assert set(events) == {"guards", "ttft", "spike", "spike-z", "gate"}
    assert round(events["guards"].value or 0, 1) == 33.3  # 2 of 6 requests
    assert events["ttft"].value == 1200.0
    assert 9 < (events["spike"].value or 0) < 11
    assert (events["spike-z"].value or 0) > 50
    assert dict(events["gate"].labels) == {"suite": "faq"} and "run r2 failed" in events["gate"].summary

    with engine.begin() as connection:
        connection.execute(
            eval_runs.insert().values(
                id="r4",
                suite="faq",
                created_at=NOW,
                finished_at=NOW,
                status="complete",
                config={},
                cost_nanos=0,
                gate_passed=True,
            )
        )
    resolved = await alerts.evaluate_once(NOW + timedelta(seconds=1))
    assert "gate" in {e.rule for e in resolved if e.state == "resolved"}


class _Broken:
    def observe(self, context: SignalContext) -> Sequence[Observation]:
        raise RuntimeError("signal store is down")


class _Constant:
    def __init__(self, value: float) -> None:
        self.value = value

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        return [Observation({"model": "m1"}, self.value, f"drift {self.value} at {context.now:%H:%M}")]


@alert_signal("test_broken")
def _broken() -> _Broken:
    return _Broken()


@alert_signal("test_drift")
def _drift(value: float) -> _Constant:
    return _Constant(value)


async def test_registered_signals_and_a_failing_one_does_not_stop_the_others(
    engine: Engine, receiver: Receiver
) -> None:
    rules = [
        {"name": "broken", "kind": "test_broken", "threshold": 1},
        {"name": "drift", "kind": "test_drift", "threshold": 0.3, "value": 0.5, "severity": "critical"},
    ]
    events = await AlertEngine(alert_settings(receiver, *rules), engine).evaluate_once(NOW)
    assert [(e.rule, e.severity, e.value) for e in events] == [("drift", "critical", 0.5)]
    assert receiver.received[0]["labels"] == {"model": "m1"}
    assert receiver.received[0]["kind"] == "test_drift"


async def test_a_rule_removed_from_the_configuration_is_resolved_without_a_message(
    engine: Engine, receiver: Receiver
) -> None:
    rule = {"name": "errors", "kind": "error_rate", "threshold": 10, "min_requests": 1}
    seed_requests(engine, NOW, 2, status=500)
    await AlertEngine(alert_settings(receiver, rule), engine).evaluate_once(NOW)
    [event] = await AlertEngine(alert_settings(receiver), engine).evaluate_once(NOW)
    assert event.state == "resolved" and "no longer configured" in event.summary
    assert receiver.states() == ["firing"] and active_alerts(engine) == []


async def test_start_runs_evaluations_and_a_budget_crossing_wakes_it(
    engine: Engine, receiver: Receiver
) -> None:
    set_budget(engine, scope="team", scope_id="t1", period="month", limit_nanos=USD, actor="t")
    settings = alert_settings(receiver, {"name": "budgets", "kind": "budget_used", "threshold": 50})
    alerts = AlertEngine(settings.model_copy(update={"interval": 3600.0}), engine)
    ledger = SpendLedger(engine, InProcessCounters(), SpendSettings(), on_budget_alert=alerts.budget_crossed)
    await ledger.start()
    await alerts.start()
    try:
        await asyncio.sleep(0.2)  # the first evaluation: nothing yet
        reservation = await ledger.reserve("r1", SpendScopes(team_id="t1"), USD * 9 // 10)
        await ledger.settle(reservation, USD * 9 // 10)
        for _ in range(100):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
    finally:
        await alerts.stop()
        await ledger.close()
    assert receiver.states() == ["firing"]


async def test_percentiles_per_route(engine: Engine, receiver: Receiver) -> None:
    rule = {"name": "slow", "kind": "latency_p95", "threshold": 1000, "by": "route", "min_requests": 5}
    seed_requests(engine, NOW, 19, route="fast", latency_ms=100.0)
    seed_requests(engine, NOW, 1, route="fast", latency_ms=9000.0)  # the 100th percentile only
    seed_requests(engine, NOW, 10, route="slow", latency_ms=1500.0)
    seed_requests(engine, NOW, 10, route=None, latency_ms=3000.0)
    events = await AlertEngine(alert_settings(receiver, rule), engine).evaluate_once(NOW)
    assert sorted((e.labels["route"], e.value) for e in events) == [("", 3000.0), ("slow", 1500.0)]
