"""The figures the Overview and Cost pages show, aggregated in SQL over the covering
indexes: totals, per-bucket series, breakdowns by team, key, model and end user, and
budget use. Every function takes the viewer's team (None: the whole organisation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement, Connection, and_, bindparam, case, func, select

from keel.access import api_keys, teams
from keel.console._range import TimeRange
from keel.console._sql import (
    c,
    failed,
    guard_triggered,
    latency_percentiles,
    scope,
    truncated,
    where,
)
from keel.spend import Budget, list_budgets, window_of

Dimension = Literal["team", "key", "model", "end_user"]
DIMENSIONS: dict[str, ColumnElement[str]] = {
    "team": c.team_id,
    "key": c.key_id,
    "model": c.requested_model,
    "end_user": c.end_user,
}
_HIT = ("hit", "semantic_hit")


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    cost_nanos: int = 0
    saved_nanos: int = 0
    cache_hits: int = 0
    cache_lookups: int = 0
    guard_triggers: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None


@dataclass
class Bucket:
    start: datetime
    requests: int = 0
    errors: int = 0
    cost_nanos: int = 0
    saved_nanos: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None


@dataclass
class BudgetUse:
    budget: Budget
    label: str
    spent_nanos: int

    @property
    def fraction(self) -> float:
        return self.spent_nanos / self.budget.limit_nanos if self.budget.limit_nanos else 0.0


@dataclass
class Overview:
    totals: Totals
    buckets: list[Bucket]
    spend_today: int
    spend_month: int
    budgets: list[BudgetUse] = field(default_factory=list)


def _sums() -> list[ColumnElement[int]]:
    return [
        func.count().label("requests"),
        func.coalesce(func.sum(case((failed(), 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(c.cost_nanos), 0).label("cost"),
        func.coalesce(func.sum(c.cost_saved_nanos), 0).label("saved"),
        func.coalesce(func.sum(case((c.cache_status.in_(_HIT), 1), else_=0)), 0).label("hits"),
        func.coalesce(func.sum(case((c.cache_status.is_not(None), 1), else_=0)), 0).label("lookups"),
    ]


def totals(
    connection: Connection, team_id: str | None, time_range: TimeRange, *, guards: bool = True
) -> Totals:
    condition = where(team_id, time_range)
    row = connection.execute(select(*_sums()).where(condition)).one()
    triggers = 0
    if guards:
        # From the partial index of triggered requests (guard decisions are JSON).
        triggered = select(func.count()).where(condition, guard_triggered(connection))
        triggers = connection.execute(triggered).scalar_one()
    return Totals(
        requests=int(row.requests),
        errors=int(row.errors),
        cost_nanos=int(row.cost),
        saved_nanos=int(row.saved),
        cache_hits=int(row.hits),
        cache_lookups=int(row.lookups),
        guard_triggers=int(triggers),
    )


def bucket_windows(time_range: TimeRange) -> list[tuple[datetime, datetime, datetime]]:
    """(bucket start, query from, query until) of each chart bucket, cut to the range."""
    return [
        (start, max(start, time_range.since), min(start + time_range.bucket, time_range.until))
        for start in time_range.bucket_starts()
    ]


def _in_window(team_id: str | None) -> ColumnElement[bool]:
    return and_(scope(team_id), c.created_at >= bindparam("since"), c.created_at < bindparam("until"))


def series(connection: Connection, team_id: str | None, time_range: TimeRange) -> list[Bucket]:
    """Requests, errors, cost and savings per chart bucket (empty buckets included).

    One small query per bucket (at most ~60), each a slice of the covering index: a single
    GROUP BY on a truncated time would sort every row of the range first."""
    query = select(*_sums()).where(_in_window(team_id))
    out = []
    for start, since, until in bucket_windows(time_range):
        row = connection.execute(query, {"since": since, "until": until}).one()
        out.append(Bucket(start, int(row.requests), int(row.errors), int(row.cost), int(row.saved)))
    return out


def overview(
    connection: Connection, team_id: str | None, time_range: TimeRange, now: datetime | None = None
) -> Overview:
    now = now or datetime.now(UTC)
    total = totals(connection, team_id, time_range)
    buckets = series(connection, team_id, time_range)
    per_bucket, (p50, p95) = latency_percentiles(connection, where(team_id, time_range), time_range)
    total.latency_p50, total.latency_p95 = p50, p95
    for bucket in buckets:
        bucket.latency_p50, bucket.latency_p95 = per_bucket.get(bucket.start, (None, None))
    day_start, _ = window_of("day", now)
    month_start, _ = window_of("month", now)
    return Overview(
        totals=total,
        buckets=buckets,
        spend_today=_spent(connection, scope(team_id), day_start, None),
        spend_month=_spent(connection, scope(team_id), month_start, None),
        budgets=budget_use(connection, team_id, now),
    )


def _spent(
    connection: Connection, condition: ColumnElement[bool], start: datetime, end: datetime | None
) -> int:
    query = select(func.coalesce(func.sum(c.cost_nanos), 0)).where(condition, c.created_at >= start)
    if end is not None:
        query = query.where(c.created_at < end)
    return int(connection.execute(query).scalar_one())


_BUDGET_COLUMNS: dict[str, ColumnElement[str]] = {
    "team": c.team_id,
    "key": c.key_id,
    "end_user": c.end_user,
    "model": c.route,
}


def budget_use(
    connection: Connection, team_id: str | None, now: datetime, limit: int = 20
) -> list[BudgetUse]:
    """The viewer's budgets and what their current windows spent, from the request log
    (settled requests; the ledger's open reservations of in-flight calls are not in it)."""
    budgets = list_budgets(connection.engine, team_id=team_id)[:limit]
    names = names_of(connection)
    out = []
    for budget in budgets:
        start, end = window_of(budget.period, now)
        column = _BUDGET_COLUMNS.get(budget.scope)
        if column is None:
            continue
        condition = column == budget.scope_id
        if team_id is not None:
            condition = condition & scope(team_id)
        spent = _spent(connection, condition, start, end)
        label = f"{budget.scope} {names.get(budget.scope_id, budget.scope_id)} · {budget.period}"
        out.append(BudgetUse(budget, label, spent))
    return out


@dataclass
class Share:
    id: str | None
    label: str
    requests: int
    cost_nanos: int
    saved_nanos: int


def breakdown(
    connection: Connection,
    team_id: str | None,
    time_range: TimeRange,
    dimension: str,
    *,
    limit: int | None = None,
) -> list[Share]:
    """Spend by one dimension, most expensive first."""
    column = DIMENSIONS[dimension]
    # coalesce: an expression, so SQLite groups off the covering index instead of walking
    # the column's own index (and reading every row) to get the groups in order.
    key = func.coalesce(column, "")
    cost = func.coalesce(func.sum(c.cost_nanos), 0)
    query = (
        select(
            key.label("k"),
            func.count().label("requests"),
            cost.label("cost"),
            func.coalesce(func.sum(c.cost_saved_nanos), 0).label("saved"),
        )
        .where(where(team_id, time_range))
        .group_by(key)
        .order_by(cost.desc(), key)
    )
    if limit is not None:
        query = query.limit(limit)
    names = names_of(connection) if dimension in ("team", "key") else {}
    return [
        Share(
            row.k or None,
            names.get(row.k, row.k) if row.k else "(none)",
            int(row.requests),
            int(row.cost),
            int(row.saved),
        )
        for row in connection.execute(query)
    ]


def breakdowns(
    connection: Connection,
    team_id: str | None,
    time_range: TimeRange,
    dimensions: Sequence[str],
    *,
    limit: int,
) -> dict[str, list[Share]]:
    """``breakdown`` for several dimensions from one scan: grouped by all of them at once
    (a few thousand combinations), then summed per dimension here."""
    keys = [func.coalesce(DIMENSIONS[d], "").label(d) for d in dimensions]
    query = (
        select(
            *keys,
            func.count().label("requests"),
            func.coalesce(func.sum(c.cost_nanos), 0).label("cost"),
            func.coalesce(func.sum(c.cost_saved_nanos), 0).label("saved"),
        )
        .where(where(team_id, time_range))
        .group_by(*keys)
    )
    sums: dict[str, dict[str, list[int]]] = {d: {} for d in dimensions}
    for row in connection.execute(query):
        values = row._mapping
        for d in dimensions:
            entry = sums[d].setdefault(values[d], [0, 0, 0])
            entry[0] += int(values["requests"])
            entry[1] += int(values["cost"])
            entry[2] += int(values["saved"])
    names = names_of(connection)
    out = {}
    for d in dimensions:
        ranked = sorted(sums[d].items(), key=lambda item: (-item[1][1], item[0]))[:limit]
        out[d] = [
            Share(k or None, names.get(k, k) if k else "(none)", requests, cost, saved)
            for k, (requests, cost, saved) in ranked
        ]
    return out


@dataclass
class Stacked:
    starts: list[datetime]
    series: dict[str, list[float]]  # label -> cost per bucket


def stacked_cost(
    connection: Connection,
    team_id: str | None,
    time_range: TimeRange,
    dimension: str,
    *,
    top: int = 5,
    leaders: list[Share] | None = None,
) -> Stacked:
    """Cost per bucket by ``dimension``: its ``top`` biggest (``leaders``, when the
    caller has them already), the rest as "other"."""
    if leaders is None:
        leaders = breakdown(connection, team_id, time_range, dimension, limit=top + 1)
    keep = {share.id or "": share.label for share in leaders[:top]}
    windows = bucket_windows(time_range)
    starts = [start for start, _, _ in windows]
    column = func.coalesce(DIMENSIONS[dimension], "")
    query = (
        select(column.label("k"), func.coalesce(func.sum(c.cost_nanos), 0).label("cost"))
        .where(_in_window(team_id))
        .group_by(column)
    )
    series: dict[str, list[float]] = {label: [0.0] * len(starts) for label in keep.values()}
    for i, (_, since, until) in enumerate(windows):
        for row in connection.execute(query, {"since": since, "until": until}):
            label = keep.get(row.k, "other")
            series.setdefault(label, [0.0] * len(starts))[i] += int(row.cost) / 1e9
    return Stacked(starts, series)


def names_of(connection: Connection) -> dict[str, str]:
    """Team and key ids to names (both tables are small)."""
    out = {row.id: row.name for row in connection.execute(select(teams.c.id, teams.c.name))}
    out.update({row.id: row.name for row in connection.execute(select(api_keys.c.id, api_keys.c.name))})
    return out


def exact_usd(nanos: int) -> str:
    """Dollars with all nine decimals, from the integer (no float rounding in exports)."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 10**9)
    return f"{sign}{whole}.{frac:09d}"


def csv_rows(
    connection: Connection, team_id: str | None, time_range: TimeRange, group_by: Sequence[str]
) -> list[dict[str, object]]:
    """Spend grouped by day and/or dimensions, for the CSV export."""
    columns: list[ColumnElement[str]] = []
    for name in group_by:
        if name == "day":
            columns.append(truncated(connection, "day").label("day"))
        else:
            columns.append(func.coalesce(DIMENSIONS[name], "").label(name))
    query = (
        select(
            *columns,
            func.count().label("requests"),
            func.coalesce(func.sum(c.cost_nanos), 0).label("cost"),
            func.coalesce(func.sum(c.cost_saved_nanos), 0).label("saved"),
        )
        .where(where(team_id, time_range))
        .group_by(*columns)
        .order_by(*columns)
    )
    names = names_of(connection)
    out: list[dict[str, object]] = []
    for row in connection.execute(query):
        values = row._mapping
        entry: dict[str, object] = {}
        for name in group_by:
            value = values[name]
            entry[name] = value
            if name in ("team", "key"):
                entry[f"{name}_name"] = names.get(value, "") if value else ""
        entry["requests"] = int(values["requests"])
        entry["cost_usd"] = exact_usd(int(values["cost"]))
        entry["saved_usd"] = exact_usd(int(values["saved"]))
        out.append(entry)
    return out
