"""Per-version metrics of a prompt, from the request log: requests, errors, latency
percentiles, tokens and cost of each version that served calls.

Counts and sums are one ``GROUP BY`` in the database. Latency percentiles are
``percentile_cont`` on PostgreSQL; SQLite has no percentile function, so there the
latencies of each version are read and interpolated here, the same way (linear
between the two nearest ranks), so that both databases give the same numbers.

Latency is that of successful requests: a call refused for a missing variable answers
in a millisecond and says nothing about how fast the version serves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from keel.core import InvalidRequest, JSONObject, NotFound
from keel.prompts._tables import prompt_labels, prompt_versions, prompts
from keel.store import request_log

PERCENTILES = (0.5, 0.95)


@dataclass(frozen=True, slots=True)
class VersionStats:
    """What one version of a prompt served in the period asked for. ``labels`` are the
    labels pointing at it now. Latencies are in milliseconds (None: no successful
    request with a latency); cost in nano-USD (requests without a price count as 0)."""

    version: int
    labels: tuple[str, ...]
    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_nanos: int
    first_request_at: datetime | None
    last_request_at: datetime | None

    @property
    def error_rate(self) -> float | None:
        """Errors over requests (None without requests)."""
        return self.errors / self.requests if self.requests else None

    def to_json(self) -> JSONObject:
        return {
            "version": self.version,
            "labels": list(self.labels),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "cost_nanos": self.cost_nanos,
            "first_request_at": _iso(self.first_request_at),
            "last_request_at": _iso(self.last_request_at),
        }


def prompt_stats(
    engine: Engine,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    team_id: str | None = None,
) -> list[VersionStats]:
    """One entry per version of prompt ``name`` (oldest first; versions without requests
    have zeros), from requests logged in ``[since, until)`` and, with ``team_id``, made
    by that team's keys only. An unknown prompt is NotFound."""
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("'until' must be later than 'since'.", param="until")
    conditions = [request_log.c.prompt_name == name, request_log.c.prompt_version.is_not(None)]
    if since is not None:
        conditions.append(request_log.c.created_at >= since)
    if until is not None:
        conditions.append(request_log.c.created_at < until)
    if team_id is not None:
        conditions.append(request_log.c.team_id == team_id)
    where = and_(*conditions)
    with engine.connect() as connection:
        prompt_id = connection.execute(select(prompts.c.id).where(prompts.c.name == name)).scalar()
        if prompt_id is None:
            raise NotFound(f"Unknown prompt '{name}'.", param="name")
        numbers = list(
            connection.execute(
                select(prompt_versions.c.version).where(prompt_versions.c.prompt_id == prompt_id)
            ).scalars()
        )
        labels: dict[int, list[str]] = {}
        for row in connection.execute(
            select(prompt_labels.c.label, prompt_labels.c.version)
            .where(prompt_labels.c.prompt_id == prompt_id)
            .order_by(prompt_labels.c.label)
        ):
            labels.setdefault(row.version, []).append(row.label)
        totals = {row.prompt_version: row for row in connection.execute(_totals_query(where))}
        latencies = _latency_percentiles(connection, where)
    return [
        _stats(number, tuple(labels.get(number, ())), totals.get(number), latencies.get(number))
        for number in sorted({*numbers, *totals})
    ]


def _failed() -> ColumnElement[bool]:
    # As the request log's own "error" filter: a stream that broke after its first byte
    # keeps status 200 but has an error type.
    return or_(request_log.c.status >= 400, request_log.c.error_type.is_not(None))


def _succeeded() -> ColumnElement[bool]:
    return and_(request_log.c.status < 400, request_log.c.error_type.is_(None))


def _totals_query(where: ColumnElement[bool]) -> Any:
    c = request_log.c
    return (
        select(
            c.prompt_version,
            func.count().label("requests"),
            func.sum(case((_failed(), 1), else_=0)).label("errors"),
            func.sum(func.coalesce(c.input_tokens, 0)).label("input_tokens"),
            func.sum(func.coalesce(c.cached_input_tokens, 0)).label("cached_input_tokens"),
            func.sum(func.coalesce(c.output_tokens, 0)).label("output_tokens"),
            func.sum(func.coalesce(c.cost_nanos, 0)).label("cost_nanos"),
            func.min(c.created_at).label("first_at"),
            func.max(c.created_at).label("last_at"),
        )
        .where(where)
        .group_by(c.prompt_version)
    )


def _latency_percentiles(connection: Connection, where: ColumnElement[bool]) -> dict[int, tuple[float, ...]]:
    c = request_log.c
    served = and_(where, _succeeded(), c.latency_ms.is_not(None))
    if connection.dialect.name == "postgresql":
        columns = [func.percentile_cont(q).within_group(c.latency_ms) for q in PERCENTILES]
        query = select(c.prompt_version, *columns).where(served).group_by(c.prompt_version)
        return {row[0]: tuple(float(v) for v in row[1:]) for row in connection.execute(query)}
    by_version: dict[int, list[float]] = {}
    query = select(c.prompt_version, c.latency_ms).where(served).order_by(c.prompt_version, c.latency_ms)
    for version, latency in connection.execute(query):
        by_version.setdefault(version, []).append(float(latency))
    return {
        version: tuple(percentile(values, q) for q in PERCENTILES) for version, values in by_version.items()
    }


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``ordered`` (sorted, not empty), interpolated linearly
    between the nearest ranks: PostgreSQL's ``percentile_cont``, numpy's default."""
    if not ordered:
        raise ValueError("percentile of no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _stats(
    version: int, labels: tuple[str, ...], totals: Any | None, latencies: tuple[float, ...] | None
) -> VersionStats:
    p50, p95 = latencies if latencies is not None else (None, None)
    if totals is None:
        return VersionStats(version, labels, 0, 0, p50, p95, 0, 0, 0, 0, None, None)
    return VersionStats(
        version=version,
        labels=labels,
        requests=int(totals.requests),
        errors=int(totals.errors or 0),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        input_tokens=int(totals.input_tokens or 0),
        cached_input_tokens=int(totals.cached_input_tokens or 0),
        output_tokens=int(totals.output_tokens or 0),
        cost_nanos=int(totals.cost_nanos or 0),
        first_request_at=totals.first_at,
        last_request_at=totals.last_at,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
