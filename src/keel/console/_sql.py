"""SQL pieces every console query shares: the viewer's team scope, the time range, the
truncated timestamp charts group by, errors, guard decisions, percentiles.

The aggregates read only columns of the covering indexes on ``request_log`` (migration
0013: ``created_at`` or ``team_id`` first, then the columns grouped and summed), so a
month of traffic is one index range scan, never a read of the rows and their bodies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, or_, select, text, true

from keel.console._range import TimeRange, Unit
from keel.store import request_log

c = request_log.c
SQLITE_SAMPLE = 20_000
TRIGGERED = ("flag", "redact", "block")
_SQLITE_PREFIX: dict[Unit, int] = {"minute": 16, "hour": 13, "day": 10}
_PG_FORMAT: dict[Unit, str] = {"minute": "YYYY-MM-DD HH24:MI", "hour": "YYYY-MM-DD HH24", "day": "YYYY-MM-DD"}
_PARSE_FORMAT: dict[Unit, str] = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H", "day": "%Y-%m-%d"}


def scope(team_id: str | None) -> ColumnElement[bool]:
    """The rows a viewer may see: one team's, or (None, admins) every row."""
    return c.team_id == team_id if team_id is not None else true()


def in_range(time_range: TimeRange) -> ColumnElement[bool]:
    return and_(c.created_at >= time_range.since, c.created_at < time_range.until)


def where(team_id: str | None, time_range: TimeRange, *more: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(scope(team_id), in_range(time_range), *more)


def failed() -> ColumnElement[bool]:
    # As the request log's "error" filter: a stream that broke after its first byte keeps
    # status 200 but has an error type.
    return or_(c.status >= 400, c.error_type.is_not(None))


def succeeded() -> ColumnElement[bool]:
    return and_(c.status < 400, c.error_type.is_(None))


def truncated(connection: Connection, unit: Unit) -> ColumnElement[str]:
    """``created_at`` cut to the minute, hour or day, as text (UTC)."""
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", c.created_at), _PG_FORMAT[unit])
    # SQLite stores UTC text ('2026-11-25 14:30:05.123456'): a prefix is the truncation.
    return func.substr(c.created_at, 1, _SQLITE_PREFIX[unit])


def bucket_time(text: str, unit: Unit) -> datetime:
    return datetime.strptime(text, _PARSE_FORMAT[unit]).replace(tzinfo=UTC)


def guard_decision(stage: str) -> ColumnElement[str]:
    """The decision of a request's input or output guard policy (NULL: no policy)."""
    decision: ColumnElement[str] = c.guards[(stage, "decision")].as_string()
    return decision


# Word for word the condition of the partial index ix_request_log_guard_triggers
# (migration 0013): SQLite uses a partial index only for a query that repeats its WHERE.
GUARD_TRIGGERED_SQL = {
    "sqlite": (
        "json_extract(guards, '$.input.decision') IN ('flag', 'redact', 'block') "
        "OR json_extract(guards, '$.output.decision') IN ('flag', 'redact', 'block')"
    ),
    "postgresql": (
        "(guards -> 'input' ->> 'decision') IN ('flag', 'redact', 'block') "
        "OR (guards -> 'output' ->> 'decision') IN ('flag', 'redact', 'block')"
    ),
}


def guard_triggered(connection: Connection) -> ColumnElement[bool]:
    """A guard flagged, redacted or blocked the request (its input or its output)."""
    sql = GUARD_TRIGGERED_SQL.get(connection.dialect.name)
    if sql is None:
        return or_(guard_decision("input").in_(TRIGGERED), guard_decision("output").in_(TRIGGERED))
    return text(f"({sql})")  # type: ignore[return-value]


def guard_verdict_is(connection: Connection, decision: str) -> ColumnElement[bool]:
    """Requests whose worst guard decision (input or output) is ``decision``."""
    if decision == "any":
        return guard_triggered(connection)
    if decision in TRIGGERED:
        # The triggered condition too, so that the partial index serves the filter.
        return and_(
            guard_triggered(connection),
            or_(guard_decision("input") == decision, guard_decision("output") == decision),
        )
    if decision == "none":
        return c.guards.is_(None)
    if decision == "allow":
        return and_(
            c.guards.is_not(None),
            func.coalesce(guard_decision("input"), "allow") == "allow",
            func.coalesce(guard_decision("output"), "allow") == "allow",
        )
    return or_(guard_decision("input") == decision, guard_decision("output") == decision)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """PostgreSQL's ``percentile_cont`` on sorted values (None for none)."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bucket_of(time_range: TimeRange, text: str) -> datetime:
    """The chart bucket a truncated time (from ``truncated``) falls in."""
    return time_range.floor(bucket_time(text, time_range.unit))


def latency_percentiles(
    connection: Connection,
    condition: ColumnElement[bool],
    time_range: TimeRange,
    quantiles: Sequence[float] = (0.5, 0.95),
) -> tuple[dict[datetime, tuple[float | None, ...]], tuple[float | None, ...]]:
    """Latency quantiles of successful requests: per chart bucket, and over all.

    PostgreSQL computes them (``percentile_cont``). SQLite has no percentile function,
    so the latencies are read off the covering index (two small columns) and sorted here;
    above ``SQLITE_SAMPLE`` requests, from an evenly spread sample of about that many
    (every k-th row by rowid): reading 100,000 rows into Python alone would take most of
    a page's time budget, and a p95 from 20,000 values is within about 1% of the exact one.
    """
    served = and_(condition, succeeded(), c.latency_ms.is_not(None))
    if connection.dialect.name == "postgresql":
        seconds = int(time_range.bucket.total_seconds())
        bucket = func.floor(func.extract("epoch", c.created_at) / seconds)
        columns = [func.percentile_cont(q).within_group(c.latency_ms) for q in quantiles]
        per = {
            datetime.fromtimestamp(int(row[0]) * seconds, UTC): tuple(_float(v) for v in row[1:])
            for row in connection.execute(select(bucket, *columns).where(served).group_by(bucket))
        }
        overall_row = connection.execute(select(*columns).where(served)).one()
        return per, tuple(_float(v) for v in overall_row)
    served_count = connection.execute(select(func.count()).where(served)).scalar_one()
    if served_count > SQLITE_SAMPLE:
        step = math.ceil(served_count / SQLITE_SAMPLE)
        served = and_(served, literal_column("request_log.rowid") % step == 0)
    starts: dict[str, datetime] = {}
    by_bucket: dict[datetime, list[float]] = {}
    everything: list[float] = []
    query = select(truncated(connection, time_range.unit), c.latency_ms).where(served)
    for at, latency in connection.execute(query):
        start = starts.get(at)
        if start is None:
            start = starts[at] = bucket_of(time_range, at)
        by_bucket.setdefault(start, []).append(latency)
        everything.append(latency)
    everything.sort()
    per_bucket: dict[datetime, tuple[float | None, ...]] = {}
    for start, values in by_bucket.items():
        values.sort()
        per_bucket[start] = tuple(percentile(values, q) for q in quantiles)
    return per_bucket, tuple(percentile(everything, q) for q in quantiles)


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None
