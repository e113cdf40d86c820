"""Rate limits on keys and teams: stored once per scope, every change audited with a bump
of the ``spend`` topic, bad input refused with nothing written, and the spend ledger
serving them from memory after a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine, func, select

from keel.core import InvalidRequest, NotFound, RateLimited, SpendSettings
from keel.spend import (
    Counters,
    InProcessCounters,
    LimitWindow,
    SpendLedger,
    delete_rate_limit,
    get_rate_limit,
    list_rate_limits,
    rate_limits,
    set_rate_limit,
)
from keel.store import audit_log, read_changes


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [r.action for r in connection.execute(select(audit_log.c.action).order_by(audit_log.c.id))]


def test_set_creates_then_replaces_one_limit_per_key_or_team(engine: Engine) -> None:
    first = set_rate_limit(engine, scope="team", scope_id="t1", rpm=60, actor="a")
    assert (first.rpm, first.tpm, first.team_id, first.created_by) == (60, None, "t1", "a")
    second = set_rate_limit(engine, scope="team", scope_id="t1", tpm=10_000, actor="b")
    # Replaced whole: the rpm left out is no longer limited.
    assert second.id == first.id and (second.rpm, second.tpm) == (None, 10_000)
    on_key = set_rate_limit(engine, scope="key", scope_id="k1", rpm=5, tpm=500, team_id="t1", actor="a")
    other = set_rate_limit(engine, scope="key", scope_id="k2", rpm=1, team_id="t2", actor="a")
    assert get_rate_limit(engine, first.id) == second
    assert [(r.scope, r.scope_id) for r in list_rate_limits(engine, team_id="t1")] == [
        ("key", "k1"),
        ("team", "t1"),
    ]
    assert list_rate_limits(engine, scope="key", scope_id="k2") == [other]
    assert on_key.window == LimitWindow("key:k1", 5, 500)
    assert _actions(engine) == ["rate_limit.create", "rate_limit.update"] + ["rate_limit.create"] * 2
    assert read_changes(engine)["spend"] == 4


def test_delete_is_audited_and_unknown_ids_are_not_found(engine: Engine) -> None:
    limit = set_rate_limit(engine, scope="key", scope_id="k1", rpm=3, actor="a")
    assert delete_rate_limit(engine, limit.id, actor="b") == limit
    assert list_rate_limits(engine) == []
    assert _actions(engine)[-1] == "rate_limit.delete"
    assert read_changes(engine)["spend"] == 2
    with pytest.raises(NotFound, match="No rate limit"):
        get_rate_limit(engine, limit.id)
    with pytest.raises(NotFound, match="No rate limit"):
        delete_rate_limit(engine, limit.id, actor="a")
    assert read_changes(engine)["spend"] == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rpm": None, "tpm": None}, "needs rpm, tpm or both"),
        ({"rpm": 0}, "rpm must be a whole number more than zero"),
        ({"rpm": -1}, "rpm must be"),
        ({"tpm": -100}, "tpm must be"),
        ({"tpm": 1.5}, "tpm must be"),
        ({"rpm": True}, "rpm must be"),
        ({"scope": "model"}, "Unknown rate-limit scope 'model'"),
        ({"scope": "end_user"}, "Unknown rate-limit scope"),
        ({"scope_id": "  "}, "scope_id"),
    ],
)
def test_bad_limits_are_refused_and_nothing_is_written(
    engine: Engine, fields: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"scope": "key", "scope_id": "k1", "rpm": 10, "tpm": None}
    with pytest.raises(InvalidRequest, match=message):
        set_rate_limit(engine, **{**values, **fields}, actor="a")  # type: ignore[arg-type]
    assert _count(engine, rate_limits) == 0
    assert _count(engine, audit_log) == 0
    assert "spend" not in read_changes(engine)


def test_a_bad_replacement_leaves_the_limit_as_it_was(engine: Engine) -> None:
    limit = set_rate_limit(engine, scope="team", scope_id="t1", rpm=60, tpm=1_000, actor="a")
    with pytest.raises(InvalidRequest):
        set_rate_limit(engine, scope="team", scope_id="t1", rpm=0, actor="a")
    assert list_rate_limits(engine) == [limit]
    assert _count(engine, audit_log) == 1


@pytest.fixture
async def ledger(engine: Engine) -> AsyncIterator[SpendLedger]:
    started = SpendLedger(
        engine, InProcessCounters(), SpendSettings(heartbeat_interval_s=60, instance_timeout_s=600)
    )
    await started.start()
    yield started
    await started.close()


async def test_the_ledger_serves_key_and_team_limits_from_memory_after_reload(
    engine: Engine, ledger: SpendLedger
) -> None:
    assert ledger.limits_for("k1", "t1") == []
    set_rate_limit(engine, scope="key", scope_id="k1", rpm=2, team_id="t1", actor="a")
    team = set_rate_limit(engine, scope="team", scope_id="t1", tpm=1_000, actor="a")
    assert ledger.limits_for("k1", "t1") == []  # not until the reload
    await ledger.reload()
    assert ledger.limits_for("k1", "t1") == [
        LimitWindow("key:k1", 2, None),
        LimitWindow("team:t1", None, 1_000),
    ]
    assert ledger.limits_for("k2", "t1") == [LimitWindow("team:t1", None, 1_000)]
    assert ledger.limits_for("k1", None) == [LimitWindow("key:k1", 2, None)]
    assert ledger.limits_for(None, None) == []
    assert ledger.limits_for("t1", "k1") == []  # a key id never matches a team limit
    delete_rate_limit(engine, team.id, actor="a")
    await ledger.reload()
    assert ledger.limits_for("k1", "t1") == [LimitWindow("key:k1", 2, None)]


async def test_stored_limits_are_enforced_by_the_counters(engine: Engine, counters: Counters) -> None:
    set_rate_limit(engine, scope="key", scope_id="k1", rpm=2, team_id="t1", actor="a")
    set_rate_limit(engine, scope="team", scope_id="t1", tpm=100, actor="a")
    ledger = SpendLedger(engine, counters, SpendSettings(heartbeat_interval_s=60, instance_timeout_s=600))
    await ledger.reload()
    first = await counters.take(ledger.limits_for("k1", "t1"), tokens=40)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-tokens"] == "60"
    await counters.take(ledger.limits_for("k1", "t1"), tokens=40)
    with pytest.raises(RateLimited, match="key:k1: 2 requests per minute"):
        await counters.take(ledger.limits_for("k1", "t1"), tokens=1)
    # Another key of the team shares the team's tokens: 20 left.
    with pytest.raises(RateLimited, match="team:t1: 100 tokens per minute"):
        await counters.take(ledger.limits_for("k2", "t1"), tokens=30)
    assert (await counters.take(ledger.limits_for("k2", "t1"), tokens=20)).tokens == 20
