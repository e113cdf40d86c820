"""Signals read from the request log over a rule's window: ``error_rate``,
``guard_trigger_rate`` (percent of requests), ``latency_p95`` and ``ttft_p95``
(milliseconds), ``spend_rate`` (the window's spend against the trailing windows').

Every one takes ``filters`` (route, model, team, key, endpoint), ``by`` (one series per
team, route, model or key instead of one for all) and ``min_requests`` (fewer requests in
a window is no data, never an alert: one slow call is not a degradation). Aggregates run
in SQL on SQLite and PostgreSQL alike; a percentile is the nearest-rank value, found with
``ORDER BY ... LIMIT 1 OFFSET`` after a count, so no rows travel to Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Connection, case, func, literal, or_, select

from keel.access import teams
from keel.alerts._signal import Observation, Signal, SignalContext, alert_signal, format_window
from keel.spend import format_usd, usd_to_nanos
from keel.store import request_log

GroupBy = Literal["team", "route", "model", "key"]

_GROUP_COLUMNS: dict[str, Any] = {
    "team": request_log.c.team_id,
    "route": request_log.c.route,
    "model": request_log.c.requested_model,
    "key": request_log.c.key_id,
}
# Guard decisions that let a request through untouched.
_QUIET_DECISIONS = ("allow", "pass")


class LogFilters(BaseModel):
    """Which requests a rule looks at (all when empty). ``team``: a team's name or id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: str | None = None
    model: str | None = None
    team: str | None = None
    key: str | None = None
    endpoint: str | None = None


def resolve_team(connection: Connection, name_or_id: str) -> str:
    """A team's id from its name or id; an unknown one is taken as an id (a team created
    later, or one whose rows are all that is left)."""
    found = connection.execute(
        select(teams.c.id).where(or_(teams.c.id == name_or_id, teams.c.name == name_or_id))
    ).scalar()
    return str(found) if found is not None else name_or_id


class _LogSignal:
    """What every request-log signal shares: the window's filters and the series."""

    def __init__(self, filters: LogFilters, by: GroupBy | None, min_requests: int) -> None:
        self.filters = filters
        self.by = by
        self.min_requests = min_requests

    def _conditions(self, connection: Connection, context: SignalContext) -> list[ColumnElement[bool]]:
        log, f = request_log.c, self.filters
        where = [log.created_at > context.start, log.created_at <= context.now]
        if f.route is not None:
            where.append(log.route == f.route)
        if f.model is not None:
            where.append(log.requested_model == f.model)
        if f.team is not None:
            where.append(log.team_id == resolve_team(connection, f.team))
        if f.key is not None:
            where.append(log.key_id == f.key)
        if f.endpoint is not None:
            where.append(log.endpoint == f.endpoint)
        return where

    def _group(self) -> list[Any]:
        return [_GROUP_COLUMNS[self.by].label("series")] if self.by is not None else []

    def _series(self, connection: Connection, group: Any) -> tuple[dict[str, str], str | None, str]:
        """The labels, team and a "where" phrase of the series ``group`` (a by-value)."""
        labels = {k: str(v) for k, v in self.filters.model_dump(exclude_none=True).items()}
        team_id = resolve_team(connection, self.filters.team) if self.filters.team is not None else None
        if self.by is not None:
            labels[self.by] = "" if group is None else str(group)
            if self.by == "team":
                team_id = None if group is None else str(group)
        where = ", ".join(f"{k} {v or '(none)'}" for k, v in sorted(labels.items()))
        return labels, team_id, (f" [{where}]" if where else "")


class _ShareSignal(_LogSignal):
    """Percent of the window's requests that match ``_matches``."""

    noun = ""

    def _matches(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        hits = func.coalesce(func.sum(case((self._matches(), 1), else_=0)), 0)
        with context.engine.connect() as connection:
            group = self._group()
            query = select(*group, func.count().label("total"), hits.label("hits")).where(
                *self._conditions(connection, context)
            )
            if group:
                query = query.group_by(group[0])
            out = []
            for row in connection.execute(query):
                total, matched = int(row.total), int(row.hits)
                if total == 0:
                    continue
                labels, team_id, where = self._series(connection, row.series if group else None)
                share = 100.0 * matched / total
                value = share if total >= self.min_requests else None
                summary = (
                    f"{self.noun} {share:.1f}% over {format_window(context.window)} "
                    f"({matched} of {total} requests){where}"
                )
                out.append(Observation(labels, value, summary, team_id))
            return out


class ErrorRate(_ShareSignal):
    noun = "error rate"

    def __init__(self, filters: LogFilters, by: GroupBy | None, min_requests: int, min_status: int) -> None:
        super().__init__(filters, by, min_requests)
        self.min_status = min_status

    def _matches(self) -> ColumnElement[bool]:
        # A stream that broke after its first byte answered 200 but carries error_type.
        return or_(request_log.c.status >= self.min_status, request_log.c.error_type.is_not(None))


class GuardTriggerRate(_ShareSignal):
    noun = "guard trigger rate"

    def _matches(self) -> ColumnElement[bool]:
        decisions = [
            func.coalesce(request_log.c.guards[(side, "decision")].as_string(), "allow")
            for side in ("input", "output")
        ]
        return or_(*(decision.not_in(_QUIET_DECISIONS) for decision in decisions))


class Percentile(_LogSignal):
    """The nearest-rank ``percentile`` of ``column`` (ms) over the window."""

    def __init__(
        self, filters: LogFilters, by: GroupBy | None, min_requests: int, percentile: float, column: str
    ) -> None:
        super().__init__(filters, by, min_requests)
        self.percentile = percentile
        self.column = request_log.c[column]
        self.noun = f"p{percentile:g} {'latency' if column == 'latency_ms' else 'time to first token'}"

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        with context.engine.connect() as connection:
            where = [*self._conditions(connection, context), self.column.is_not(None)]
            group = self._group()
            counts = select(*group, func.count().label("total")).where(*where)
            if group:
                counts = counts.group_by(group[0])
            out = []
            for row in connection.execute(counts).all():
                total = int(row.total)
                series = row.series if group else None
                labels, team_id, where_text = self._series(connection, series)
                if total < max(self.min_requests, 1):
                    summary = (
                        f"{self.noun}: {total} requests over {format_window(context.window)}{where_text}"
                    )
                    out.append(Observation(labels, None, summary, team_id))
                    continue
                rank = max(1, math.ceil(self.percentile / 100 * total))
                in_series = [] if not group else [_series_condition(group[0], series)]
                value = connection.execute(
                    select(self.column)
                    .where(*where, *in_series)
                    .order_by(self.column)
                    .offset(rank - 1)
                    .limit(1)
                ).scalar()
                if value is None:  # rows went away between the two queries
                    continue
                summary = (
                    f"{self.noun} {float(value):,.0f} ms over {format_window(context.window)} "
                    f"({total} requests){where_text}"
                )
                out.append(Observation(labels, float(value), summary, team_id))
            return out


def _series_condition(column: Any, value: Any) -> ColumnElement[bool]:
    inner = column.element  # the labelled column
    return inner.is_(None) if value is None else inner == value  # type: ignore[no-any-return]


class SpendRate(_LogSignal):
    """The window's spend against the mean of the ``baseline`` windows before it: their
    ratio (``method: factor``) or the z-score (``method: zscore``)."""

    def __init__(
        self,
        filters: LogFilters,
        by: GroupBy | None,
        method: Literal["factor", "zscore"],
        baseline: int,
        min_spend_nanos: int,
    ) -> None:
        super().__init__(filters, by, 0)
        self.method = method
        self.baseline = baseline
        self.min_spend_nanos = min_spend_nanos

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        log, window = request_log.c, context.window
        ends = [context.now - window * i for i in range(self.baseline + 1)]
        cost = func.coalesce(log.cost_nanos, 0)
        buckets = [
            func.coalesce(
                func.sum(case(((log.created_at > end - window) & (log.created_at <= end), cost), else_=0)),
                literal(0),
            ).label(f"b{i}")
            for i, end in enumerate(ends)
        ]
        with context.engine.connect() as connection:
            where = self._conditions(connection, context)
            # The query spans the baseline windows too, not only the current one.
            where[0] = log.created_at > context.now - window * (self.baseline + 1)
            group = self._group()
            query = select(*group, *buckets).where(*where)
            if group:
                query = query.group_by(group[0])
            out = []
            for row in connection.execute(query):
                spent = [int(row._mapping[f"b{i}"]) for i in range(len(ends))]
                current, past = spent[0], spent[1:]
                labels, team_id, where_text = self._series(connection, row.series if group else None)
                mean = sum(past) / len(past)
                floor = max(self.min_spend_nanos, 1)
                if self.method == "factor":
                    value = current / max(mean, floor)
                    shown = f"{value:.1f}x"
                else:
                    std = math.sqrt(sum((x - mean) ** 2 for x in past) / len(past))
                    value = (current - mean) / max(std, floor)
                    shown = f"z {value:.1f}"
                span = format_window(window)
                summary = (
                    f"spend ${format_usd(current)} in the last {span} vs ${format_usd(round(mean))} "
                    f"per {span} in the {self.baseline} windows before ({shown}){where_text}"
                )
                significant = current >= self.min_spend_nanos
                out.append(Observation(labels, value if significant else None, summary, team_id))
            return out


_ALL_REQUESTS = LogFilters()
MinRequests = Annotated[int, Field(ge=1)]
PercentileRank = Annotated[float, Field(gt=0, le=100)]


@alert_signal("error_rate")
def error_rate(
    filters: LogFilters = _ALL_REQUESTS,
    by: GroupBy | None = None,
    min_requests: MinRequests = 10,
    min_status: Annotated[int, Field(ge=100, le=599)] = 400,
) -> Signal:
    """Percent of requests that failed (status ≥ ``min_status``, or a broken stream)."""
    return ErrorRate(filters, by, min_requests, min_status)


@alert_signal("guard_trigger_rate")
def guard_trigger_rate(
    filters: LogFilters = _ALL_REQUESTS, by: GroupBy | None = None, min_requests: MinRequests = 10
) -> Signal:
    """Percent of requests a guard policy flagged, redacted or blocked."""
    return GuardTriggerRate(filters, by, min_requests)


@alert_signal("latency_p95")
def latency_p95(
    filters: LogFilters = _ALL_REQUESTS,
    by: GroupBy | None = None,
    min_requests: MinRequests = 10,
    percentile: PercentileRank = 95,
) -> Signal:
    """The 95th percentile (or ``percentile``) of total latency, in milliseconds."""
    return Percentile(filters, by, min_requests, percentile, "latency_ms")


@alert_signal("ttft_p95")
def ttft_p95(
    filters: LogFilters = _ALL_REQUESTS,
    by: GroupBy | None = None,
    min_requests: MinRequests = 10,
    percentile: PercentileRank = 95,
) -> Signal:
    """The 95th percentile of time to first token (streams), in milliseconds."""
    return Percentile(filters, by, min_requests, percentile, "ttft_ms")


@alert_signal("spend_rate")
def spend_rate(
    filters: LogFilters = _ALL_REQUESTS,
    by: GroupBy | None = None,
    method: Literal["factor", "zscore"] = "factor",
    baseline: Annotated[int, Field(ge=2, le=168)] = 12,
    min_spend_usd: Annotated[Decimal, Field(ge=0)] = Decimal("0.01"),
) -> Signal:
    """The window's spend as a multiple of the trailing windows' mean (or a z-score)."""
    return SpendRate(filters, by, method, baseline, usd_to_nanos(min_spend_usd))


__all__ = ["LogFilters", "resolve_team"]
