"""Budgets: a spending limit on a key, team, end user or model, per day, week, month or
in total; hard (refuse what would exceed it) or soft (allow, and alert).

Every change runs in one transaction with its audit entry and a bump of the ``spend``
change topic, so gateways reload their budgets and nothing is half-written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Engine

from keel.core import InvalidRequest
from keel.spend._periods import PERIODS, Period
from keel.spend._prices import Nanos
from keel.spend._scoped_rows import ScopedTable, checked_scope_id
from keel.spend._tables import budgets

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
    scope_id = checked_scope_id(scope_id)
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
    return _BUDGETS.set_row(engine, values, actor)


def list_budgets(
    engine: Engine, *, team_id: str | None = None, scope: str | None = None, scope_id: str | None = None
) -> list[Budget]:
    kind = parse_scope(scope) if scope is not None else None
    return _BUDGETS.list_rows(engine, team_id=team_id, scope=kind, scope_id=scope_id)


def get_budget(engine: Engine, budget_id: str) -> Budget:
    return _BUDGETS.get_row(engine, budget_id)


def delete_budget(engine: Engine, budget_id: str, *, actor: str) -> Budget:
    return _BUDGETS.delete_row(engine, budget_id, actor=actor)


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


_BUDGETS = ScopedTable(
    budgets,
    key_columns=("scope", "scope_id", "period"),
    id_prefix="bud",
    audit_type="budget",
    noun="budget",
    from_row=_budget,
)
