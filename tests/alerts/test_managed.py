"""Rules managed in the database: added and deleted with an audit entry and a change
bump, validated as keel.yaml's rules are, and picked up by a running engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from keel.alerts import AlertEngine, add_rule, delete_rule, list_managed_rules
from keel.core import ConfigError, NotFound
from keel.store import read_audit, read_changes
from tests.alerts.conftest import Receiver, alert_settings, seed_requests

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SLOW = {"name": "slow", "kind": "latency_p95", "threshold": 1000, "window": "5m", "channels": ["hook"]}


def test_add_and_delete_are_stored_audited_and_bump_the_topic(engine: Engine, receiver: Receiver) -> None:
    settings = alert_settings(receiver)
    before = read_changes(engine).get("alerts", 0)
    name = add_rule(engine, {**SLOW, "filters": {"route": "gpt-x"}}, actor="key:k1 (ops)", settings=settings)
    assert name == "slow"
    [rule] = list_managed_rules(engine)
    assert (rule.name, rule.enabled, rule.created_by) == ("slow", True, "key:k1 (ops)")
    assert rule.created_at.tzinfo is not None
    # Stored in keel.yaml's shape, durations in seconds.
    assert rule.rule == {
        "name": "slow",
        "kind": "latency_p95",
        "threshold": 1000.0,
        "window": 300.0,
        "channels": ["hook"],
        "filters": {"route": "gpt-x"},
    }
    assert read_changes(engine)["alerts"] == before + 1

    delete_rule(engine, "slow", actor="key:k1 (ops)")
    assert list_managed_rules(engine) == []
    assert read_changes(engine)["alerts"] == before + 2
    audit = [e for e in read_audit(engine) if e.target_type == "alert_rule"]
    assert [(e.action, e.target_id, e.actor) for e in audit] == [
        ("alert_rule.delete", "slow", "key:k1 (ops)"),
        ("alert_rule.create", "slow", "key:k1 (ops)"),
    ]
    assert audit[1].after == {"rule": rule.rule, "enabled": True}
    assert audit[0].before == {"rule": rule.rule, "enabled": True}
    with pytest.raises(NotFound):
        delete_rule(engine, "slow", actor="t")


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({"name": "e", "kind": "error_rate"}, "alert_rules[e].threshold", "required for kind 'error_rate'"),
        ({"name": "e", "kind": "nope", "threshold": 1}, "alert_rules[e].kind", "nope"),
        ({**SLOW, "threshold": "abc"}, "alert_rules[slow].threshold", "valid number"),
        ({**SLOW, "window": "soon"}, "alert_rules[slow].window", "not a duration"),
        ({**SLOW, "channels": ["pager"]}, "alert_rules[slow].channels[0]", "unknown channel 'pager'"),
        ({**SLOW, "filters": {"rout": "x"}}, "alert_rules[slow].filters.rout", ""),
        ({"name": "bad name!", "kind": "error_rate"}, "alert_rules[bad name!].name", "string should match"),
        ({"kind": "error_rate"}, "alert_rules[?].name", "missing required key 'name'"),
    ],
)
def test_an_invalid_rule_is_refused_where_it_is_wrong(
    engine: Engine, receiver: Receiver, data: dict[str, object], location: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        add_rule(engine, data, actor="t", settings=alert_settings(receiver))
    assert any(p.location == location and message in p.message for p in caught.value.problems), caught.value
    assert list_managed_rules(engine) == []
    assert "alerts" not in read_changes(engine)


def test_a_name_taken_by_keel_yaml_or_another_managed_rule_is_refused(
    engine: Engine, receiver: Receiver
) -> None:
    settings = alert_settings(receiver, {"name": "budgets", "kind": "budget_used"})
    with pytest.raises(ConfigError, match=r"already defined in keel.yaml at alerts.rules\[0\]"):
        add_rule(engine, {**SLOW, "name": "budgets"}, actor="t", settings=settings)
    add_rule(engine, SLOW, actor="t", settings=settings)
    with pytest.raises(ConfigError, match="a managed rule 'slow' already exists") as caught:
        add_rule(engine, {**SLOW, "threshold": 5}, actor="t", settings=settings)
    assert caught.value.problems[0].location == "alert_rules[slow].name"
    [rule] = list_managed_rules(engine)
    assert rule.rule["threshold"] == 1000.0


async def test_a_running_engine_picks_up_a_new_rule_and_drops_a_deleted_one(
    engine: Engine, receiver: Receiver
) -> None:
    settings = alert_settings(receiver)  # no keel.yaml rules at all
    alerts = AlertEngine(settings, engine)
    seed_requests(engine, NOW - timedelta(minutes=1), 20, latency_ms=2500)
    assert await alerts.evaluate_once(NOW) == []

    add_rule(engine, SLOW, actor="t", settings=settings)
    fired = await alerts.evaluate_once(NOW)
    assert [(e.rule, e.state) for e in fired] == [("slow", "firing")]
    assert await alerts.evaluate_once(NOW + timedelta(seconds=30)) == []  # no duplicate
    assert receiver.states("slow") == ["firing"]
    assert receiver.received[0]["threshold"] == 1000.0 and receiver.received[0]["value"] >= 2500

    # Deleted in another process: this engine learns it from the change topic and
    # resolves what the rule was firing.
    delete_rule(engine, "slow", actor="t")
    resolved = await alerts.evaluate_once(NOW + timedelta(minutes=1))
    assert [(e.rule, e.state) for e in resolved] == [("slow", "resolved")]
    assert [r.name for r in alerts.rules] == []


async def test_a_disabled_or_no_longer_valid_rule_is_not_evaluated(
    engine: Engine, receiver: Receiver
) -> None:
    settings = alert_settings(receiver)
    add_rule(engine, SLOW, actor="t", settings=settings, enabled=False)
    add_rule(engine, {**SLOW, "name": "slow2"}, actor="t", settings=settings)
    # keel.yaml lost the channel the managed rule names: it is skipped, not fatal.
    without_channel = settings.model_copy(update={"channels": {}})
    alerts = AlertEngine(without_channel, engine)
    seed_requests(engine, NOW - timedelta(minutes=1), 20, latency_ms=2500)
    assert await alerts.evaluate_once(NOW) == []
    assert alerts.rules == []
    assert receiver.received == []
