"""Budgets: a spending limit on a key, team, end user or model, per day, week, month or
in total; hard (refuse what would exceed it) or soft (allow, and alert).

Every change runs in one transaction with its audit entry and a bump of the ``spend``
change topic, so gateways reload their budgets and nothing is half-written.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, NotFound
from keel.spend._periods import PERIODS, Period
from keel.spend._price_store import CHANGE_TOPIC
from keel.spend._prices import Nanos
from keel.spend._tables import budgets
from keel.store import append_audit, bump_change

Scope = Literal["key", "team", "end_user", "model"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    scope: Scope
    scope_id: str
    period: Period
    limit_nanos: Nanos
    hard: bool
    # Alert when spend reaches this fraction of the limit (None: only at the limit).
    alert_at_fraction: float | None
    # The team that owns the budget: the team itself, a key's team; None for budgets on
    # end users and models set by an admin.
    team_id: str | None
    created_at: datetime
    created_by: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


def parse_scope(value: str) -> Scope:
    if value not in SCOPES:
        raise InvalidRequest(
            f"Unknown budget scope {value!r}: expected one of {', '.join(SCOPES)}.", param="scope"
        )
    return value


def parse_period(value: str) -> Period:
    if value not in PERIODS:
        raise InvalidRequest(
            f"Unknown budget period {value!r}: expected one of {', '.join(PERIODS)}.", param="period"
        )
    return value


def _validated(
    scope: str, scope_id: str, period: str, limit_nanos: int, alert_at_fraction: float | None
) -> tuple[Scope, str, Period]:
    kind = parse_scope(scope)
    when = parse_period(period)
    scope_id = scope_id.strip()
    if not scope_id or len(scope_id) > 255:
        raise InvalidRequest("scope_id must be a non-empty id of at most 255 characters.", param="scope_id")
    if isinstance(limit_nanos, bool) or not isinstance(limit_nanos, int) or limit_nanos <= 0:
        raise InvalidRequest(
            f"A budget's limit must be more than zero, got {limit_nanos!r} nano-USD.", param="limit"
        )
    if alert_at_fraction is not None and not 0 < alert_at_fraction <= 1:
        raise InvalidRequest(
            f"alert_at_fraction must be more than 0 and at most 1, got {alert_at_fraction}.",
            param="alert_at_fraction",
        )
    return kind, scope_id, when


def set_budget(
    engine: Engine,
    *,
    scope: str,
    scope_id: str,
    period: str,
    limit_nanos: Nanos,
    hard: bool = True,
    alert_at_fraction: float | None = 0.8,
    team_id: str | None = None,
    actor: str,
) -> Budget:
    """Create the budget of ``scope``/``scope_id``/``period``, or replace the one there is
    (keeping its id). ``team_id`` defaults to ``scope_id`` for a team budget."""
    kind, scope_id, when = _validated(scope, scope_id, period, limit_nanos, alert_at_fraction)
    if kind == "team":
        team_id = scope_id
    values = {
        "scope": kind,
        "scope_id": scope_id,
        "period": when,
        "limit_nanos": limit_nanos,
        "hard": hard,
        "alert_at_fraction": alert_at_fraction,
        "team_id": team_id,
    }
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                return _upsert(connection, values, actor)
        except IntegrityError:
            # Two first sets of one scope at once: the loser replaces the winner's row.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _upsert(connection: Connection, values: dict[str, Any], actor: str) -> Budget:
    existing = connection.execute(
        select(budgets).where(
            budgets.c.scope == values["scope"],
            budgets.c.scope_id == values["scope_id"],
            budgets.c.period == values["period"],
        )
    ).first()
    if existing is None:
        row = {
            **values,
            "id": f"bud_{uuid.uuid4().hex[:20]}",
            "created_at": datetime.now(UTC),
            "created_by": actor[:255],
        }
        connection.execute(insert(budgets).values(**row))
        budget = Budget(**row)
        action, before = "budget.create", None
    else:
        previous = _budget(existing._mapping)
        connection.execute(update(budgets).where(budgets.c.id == previous.id).values(**values))
        budget = Budget(**{**asdict(previous), **values})
        action, before = "budget.update", previous.as_json()
    append_audit(
        connection,
        actor=actor,
        action=action,
        target_type="budget",
        target_id=budget.id,
        team_id=budget.team_id,
        before=before,
        after=budget.as_json(),
    )
    bump_change(connection, CHANGE_TOPIC)
    return budget


def list_budgets(
    engine: Engine, *, team_id: str | None = None, scope: str | None = None, scope_id: str | None = None
) -> list[Budget]:
    query = select(budgets).order_by(budgets.c.scope, budgets.c.scope_id, budgets.c.period)
    if team_id is not None:
        query = query.where(budgets.c.team_id == team_id)
    if scope is not None:
        query = query.where(budgets.c.scope == parse_scope(scope))
    if scope_id is not None:
        query = query.where(budgets.c.scope_id == scope_id)
    with engine.connect() as connection:
        return [_budget(row._mapping) for row in connection.execute(query)]


def get_budget(engine: Engine, budget_id: str) -> Budget:
    with engine.connect() as connection:
        row = connection.execute(select(budgets).where(budgets.c.id == budget_id)).first()
    if row is None:
        raise NotFound(f"No budget {budget_id!r}.")
    return _budget(row._mapping)


def delete_budget(engine: Engine, budget_id: str, *, actor: str) -> Budget:
    with engine.begin() as connection:
        row = connection.execute(select(budgets).where(budgets.c.id == budget_id)).first()
        if row is None:
            raise NotFound(f"No budget {budget_id!r}.")
        budget = _budget(row._mapping)
        connection.execute(delete(budgets).where(budgets.c.id == budget_id))
        append_audit(
            connection,
            actor=actor,
            action="budget.delete",
            target_type="budget",
            target_id=budget.id,
            team_id=budget.team_id,
            before=budget.as_json(),
        )
        bump_change(connection, CHANGE_TOPIC)
    return budget


def _budget(row: Any) -> Budget:
    return Budget(
        id=row["id"],
        scope=row["scope"],
        scope_id=row["scope_id"],
        period=row["period"],
        limit_nanos=int(row["limit_nanos"]),
        hard=bool(row["hard"]),
        alert_at_fraction=row["alert_at_fraction"],
        team_id=row["team_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
