"""Budgets against a month's logged spend (the request log, through ``usage_report``).

The request log, not the spend ledger, is the source here: a report states what was
spent by requests that ran, while the ledger also counts reservations still in flight.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from keel.reports._month import Month
from keel.reports._types import BudgetLine
from keel.spend import Budget, UsageGroup, usage_report, window_of

_GROUP: dict[str, UsageGroup] = {"team": "team", "key": "key", "end_user": "user", "model": "model"}


def budget_line(engine: Engine, budget: Budget, month: Month, *, scope_name: str = "") -> BudgetLine:
    group = _GROUP[budget.scope]
    team_id, key_id = _filters(budget)
    if budget.period == "total":
        rows = usage_report(engine, group_by=[group], until=month.end, team_id=team_id, key_id=key_id)
        total = sum(r.cost_nanos for r in rows if r.group[group] == budget.scope_id)
        last_day = (month.end - timedelta(days=1)).date()
        return _line(budget, [(f"all time to {last_day.isoformat()}", total)], scope_name)
    windows: list[tuple[datetime, datetime]] = []
    at = month.start
    while at < month.end:
        start, end = window_of(budget.period, at)
        assert end is not None  # only "total" has no end
        windows.append((start, end))
        at = end
    rows = usage_report(
        engine,
        group_by=[group, "day"],
        since=windows[0][0],
        until=windows[-1][1],
        team_id=team_id,
        key_id=key_id,
    )
    per_day: dict[date, int] = defaultdict(int)
    for row in rows:
        if row.group[group] == budget.scope_id and row.group["day"]:
            per_day[date.fromisoformat(str(row.group["day"])[:10])] += row.cost_nanos
    spent = []
    for start, end in windows:
        total = sum(v for d, v in per_day.items() if start <= _midnight(d) < end)
        spent.append((_window_label(budget.period, start, month), total))
    return _line(budget, spent, scope_name)


def _filters(budget: Budget) -> tuple[str | None, str | None]:
    """(team_id, key_id) for usage_report, which filters those in SQL; end users and
    models are picked from the groups."""
    if budget.scope == "team":
        return budget.scope_id, None
    if budget.scope == "key":
        return None, budget.scope_id
    return None, None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _window_label(period: str, start: datetime, month: Month) -> str:
    if period == "month":
        return month.label
    if period == "week":
        return f"week of {start.date().isoformat()}"
    return start.date().isoformat()


def _line(budget: Budget, spent: list[tuple[str, int]], scope_name: str) -> BudgetLine:
    # The first of equal peaks, so the label is stable.
    peak_label, peak = max(spent, key=lambda item: item[1])
    alert_at = budget.alert_at_fraction
    return BudgetLine(
        budget_id=budget.id,
        scope=budget.scope,
        scope_id=budget.scope_id,
        period=budget.period,
        limit_nanos=budget.limit_nanos,
        hard=budget.hard,
        alert_at_fraction=alert_at,
        windows=len(spent),
        peak_label=peak_label,
        peak_spent_nanos=peak,
        over_windows=sum(1 for _, v in spent if v >= budget.limit_nanos),
        scope_name=scope_name,
        alert_windows=sum(1 for _, v in spent if alert_at is not None and v >= budget.limit_nanos * alert_at),
    )
