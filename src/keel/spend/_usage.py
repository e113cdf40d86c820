"""Usage reports from the request log: requests, tokens, cost and cache savings, grouped
by key, team, end user, model and/or day (UTC), computed by the database (GROUP BY)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Engine, case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from keel.core import InvalidRequest
from keel.spend._prices import Nanos, format_usd
from keel.store import request_log

UsageGroup = Literal["key", "team", "user", "model", "day"]
USAGE_GROUPS: tuple[UsageGroup, ...] = get_args(UsageGroup)


@dataclass(frozen=True, slots=True)
class UsageRow:
    # One value per ``group_by`` entry, in its order (None: requests without one).
    group: dict[str, str | None]
    requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_nanos: Nanos
    saved_nanos: Nanos
    cache_hits: int
    # Requests with tokens but no price (free, and worth knowing about).
    unpriced_requests: int

    def as_json(self) -> dict[str, Any]:
        return {
            **self.group,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "cost_nanos": self.cost_nanos,
            "cost_usd": format_usd(self.cost_nanos),
            "saved_nanos": self.saved_nanos,
            "saved_usd": format_usd(self.saved_nanos),
            "cache_hits": self.cache_hits,
            "unpriced_requests": self.unpriced_requests,
        }


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime, *, param: str = "since") -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` (before ``now``) or an ISO time or date (naive means
    UTC), in UTC."""
    try:
        match = _DURATION.match(text)
        if match:
            amount, unit = match.groups()
            return now - timedelta(**{_UNITS[unit.lower()]: int(amount)})
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{param} takes a duration such as 30m, 12h or 7d, or an ISO time; got {text!r}.", param=param
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_group_by(value: str | list[str] | tuple[str, ...]) -> list[UsageGroup]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    out: list[UsageGroup] = []
    for item in items:
        if item not in USAGE_GROUPS:
            raise InvalidRequest(
                f"Cannot group usage by {item!r}: expected some of {', '.join(USAGE_GROUPS)}.", param="by"
            )
        if item not in out:
            out.append(item)
    return out


def _day(engine: Engine) -> ColumnElement[str]:
    if engine.dialect.name == "postgresql":
        # Literals, not bound parameters: PostgreSQL matches the GROUP BY expression to the
        # selected one only when both are the same text.
        utc = func.timezone(literal_column("'UTC'"), request_log.c.created_at)
        return func.to_char(utc, literal_column("'YYYY-MM-DD'"))
    # SQLite keeps UTC text ("2025-03-01 12:00:00.000000"): its first ten characters.
    return func.substr(request_log.c.created_at, literal_column("1"), literal_column("10"))


def usage_report(
    engine: Engine,
    *,
    group_by: list[UsageGroup] | tuple[UsageGroup, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    team_id: str | None = None,
    key_id: str | None = None,
) -> list[UsageRow]:
    """Totals per group, largest cost first (then by group values)."""
    names = parse_group_by(list(group_by))
    columns: dict[str, ColumnElement[Any]] = {
        "key": request_log.c.key_id,
        "team": request_log.c.team_id,
        "user": request_log.c.end_user,
        "model": request_log.c.requested_model,
    }
    if "day" in names:
        columns["day"] = _day(engine)
    groups = [(name, columns[name].label(f"g_{name}")) for name in names]
    cost = func.coalesce(func.sum(request_log.c.cost_nanos), 0)
    tokens = func.coalesce(request_log.c.input_tokens, 0) + func.coalesce(request_log.c.output_tokens, 0)
    query = select(
        *[column for _, column in groups],
        func.count().label("requests"),
        func.coalesce(func.sum(request_log.c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(request_log.c.cached_input_tokens), 0).label("cached_input_tokens"),
        func.coalesce(func.sum(request_log.c.output_tokens), 0).label("output_tokens"),
        cost.label("cost_nanos"),
        func.coalesce(func.sum(request_log.c.cost_saved_nanos), 0).label("saved_nanos"),
        func.coalesce(
            func.sum(case((request_log.c.cache_status.in_(("hit", "semantic_hit")), 1), else_=0)), 0
        ).label("cache_hits"),
        func.coalesce(
            func.sum(case(((request_log.c.cost_nanos.is_(None)) & (tokens > 0), 1), else_=0)), 0
        ).label("unpriced_requests"),
    )
    if since is not None:
        query = query.where(request_log.c.created_at >= since)
    if until is not None:
        query = query.where(request_log.c.created_at < until)
    if team_id is not None:
        query = query.where(request_log.c.team_id == team_id)
    if key_id is not None:
        query = query.where(request_log.c.key_id == key_id)
    if groups:
        query = query.group_by(*[column for _, column in groups])
        query = query.order_by(cost.desc(), *[column for _, column in groups])
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    out = []
    for row in rows:
        data = row._mapping
        if not groups and not data["requests"]:
            continue
        out.append(
            UsageRow(
                group={name: data[f"g_{name}"] for name, _ in groups},
                requests=int(data["requests"]),
                input_tokens=int(data["input_tokens"]),
                cached_input_tokens=int(data["cached_input_tokens"]),
                output_tokens=int(data["output_tokens"]),
                cost_nanos=int(data["cost_nanos"]),
                saved_nanos=int(data["saved_nanos"]),
                cache_hits=int(data["cache_hits"]),
                unpriced_requests=int(data["unpriced_requests"]),
            )
        )
    return out


USAGE_FIELDS = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_nanos",
    "cost_usd",
    "saved_nanos",
    "saved_usd",
    "cache_hits",
    "unpriced_requests",
)


def usage_csv(rows: list[UsageRow], group_by: list[UsageGroup] | tuple[UsageGroup, ...]) -> str:
    """The report as CSV with a header line: the group columns, then the totals."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*group_by, *USAGE_FIELDS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_json())
    return out.getvalue()
