from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from keel.core import InvalidRequest, NotFound
from keel.spend import budgets, delete_budget, get_budget, list_budgets, set_budget, window_of
from keel.store import audit_log, read_changes


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_set_creates_then_replaces_one_budget_per_scope_and_period(engine: Engine) -> None:
    first = set_budget(engine, scope="team", scope_id="t1", period="month", limit_nanos=10, actor="a")
    assert first.team_id == "t1" and first.hard and first.alert_at_fraction == 0.8
    second = set_budget(
        engine, scope="team", scope_id="t1", period="month", limit_nanos=20, hard=False, actor="b"
    )
    assert second.id == first.id and second.limit_nanos == 20 and not second.hard
    set_budget(engine, scope="team", scope_id="t1", period="day", limit_nanos=5, actor="a")
    assert [b.period for b in list_budgets(engine, team_id="t1")] == ["day", "month"]
    assert get_budget(engine, first.id).limit_nanos == 20
    with engine.connect() as connection:
        actions = [r.action for r in connection.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert actions == ["budget.create", "budget.update", "budget.create"]
    assert read_changes(engine)["spend"] == 3


def test_delete_is_audited_and_unknown_ids_are_not_found(engine: Engine) -> None:
    budget = set_budget(engine, scope="model", scope_id="gpt-4o", period="total", limit_nanos=1, actor="a")
    assert delete_budget(engine, budget.id, actor="a") == budget
    assert list_budgets(engine) == []
    with pytest.raises(NotFound):
        get_budget(engine, budget.id)
    with pytest.raises(NotFound):
        delete_budget(engine, budget.id, actor="a")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"limit_nanos": -5}, "more than zero"),
        ({"limit_nanos": 0}, "more than zero"),
        ({"scope": "org"}, "Unknown budget scope"),
        ({"period": "year"}, "Unknown budget period"),
        ({"scope_id": " "}, "scope_id"),
        ({"alert_at_fraction": 1.5}, "alert_at_fraction"),
    ],
)
def test_bad_budgets_are_refused_and_nothing_is_written(
    engine: Engine, fields: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"scope": "key", "scope_id": "k1", "period": "day", "limit_nanos": 100}
    with pytest.raises(InvalidRequest, match=message):
        set_budget(engine, **{**values, **fields}, actor="a")  # type: ignore[arg-type]
    assert _count(engine, budgets) == 0
    assert _count(engine, audit_log) == 0


def test_period_windows_are_utc_days_weeks_from_monday_and_months() -> None:
    moment = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)  # a Wednesday
    assert window_of("day", moment) == (datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert window_of("week", moment) == (datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC))
    assert window_of("month", moment) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert window_of("total", moment)[1] is None
