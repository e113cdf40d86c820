"""Rate limits on keys and teams: requests per minute and tokens per minute, stored in the
database and managed by API and CLI (limits on models come from ``keel.yaml``).

One limit per key or team. Every change runs in one transaction with its audit entry and
a bump of the ``spend`` change topic, so gateways reload their limits and nothing is
half-written. The gateway enforces them through ``Counters.take`` with the
``LimitWindow`` of each (``SpendLedger.limits_for``).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, NotFound
from keel.spend._counters import LimitWindow
from keel.spend._price_store import CHANGE_TOPIC
from keel.spend._tables import rate_limits
from keel.store import append_audit, bump_change

LimitScope = Literal["key", "team"]
LIMIT_SCOPES: tuple[LimitScope, ...] = get_args(LimitScope)

# Far above any real limit, and within a signed 64-bit column and Redis's integers.
_MAX_PER_MINUTE = 10**15


@dataclass(frozen=True, slots=True)
class RateLimit:
    id: str
    scope: LimitScope
    scope_id: str
    rpm: int | None  # None: requests are not limited
    tpm: int | None  # None: tokens are not limited
    # The team that owns the limit: the team itself, a key's team (None: a key of no team).
    team_id: str | None
    created_at: datetime
    created_by: str

    @property
    def window(self) -> LimitWindow:
        """The bucket ``Counters.take`` enforces: keyed "key:<id>" or "team:<id>"."""
        return LimitWindow(f"{self.scope}:{self.scope_id}", self.rpm, self.tpm)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


def parse_limit_scope(value: str) -> LimitScope:
    if value not in LIMIT_SCOPES:
        raise InvalidRequest(
            f"Unknown rate-limit scope {value!r}: expected one of {', '.join(LIMIT_SCOPES)}.", param="scope"
        )
    return value


def _per_minute(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_PER_MINUTE:
        raise InvalidRequest(f"{name} must be a whole number more than zero, got {value!r}.", param=name)
    return value


def _validated(scope: str, scope_id: str, rpm: int | None, tpm: int | None) -> tuple[LimitScope, str]:
    kind = parse_limit_scope(scope)
    scope_id = scope_id.strip()
    if not scope_id or len(scope_id) > 255:
        raise InvalidRequest("scope_id must be a non-empty id of at most 255 characters.", param="scope_id")
    _per_minute(rpm, "rpm")
    _per_minute(tpm, "tpm")
    if rpm is None and tpm is None:
        raise InvalidRequest("A rate limit needs rpm, tpm or both.", param="rpm")
    return kind, scope_id


def set_rate_limit(
    engine: Engine,
    *,
    scope: str,
    scope_id: str,
    rpm: int | None = None,
    tpm: int | None = None,
    team_id: str | None = None,
    actor: str,
) -> RateLimit:
    """Create the limit of ``scope``/``scope_id``, or replace the one there is (keeping its
    id; an rpm or tpm left out is then no longer limited). ``team_id`` defaults to
    ``scope_id`` for a team limit. Checks no ids: callers resolve teams and keys first."""
    kind, scope_id = _validated(scope, scope_id, rpm, tpm)
    if kind == "team":
        team_id = scope_id
    values = {"scope": kind, "scope_id": scope_id, "rpm": rpm, "tpm": tpm, "team_id": team_id}
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                return _upsert(connection, values, actor)
        except IntegrityError:
            # Two first sets of one scope at once: the loser replaces the winner's row.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _upsert(connection: Connection, values: dict[str, Any], actor: str) -> RateLimit:
    existing = connection.execute(
        select(rate_limits).where(
            rate_limits.c.scope == values["scope"], rate_limits.c.scope_id == values["scope_id"]
        )
    ).first()
    if existing is None:
        row = {
            **values,
            "id": f"rl_{uuid.uuid4().hex[:20]}",
            "created_at": datetime.now(UTC),
            "created_by": actor[:255],
        }
        connection.execute(insert(rate_limits).values(**row))
        limit = RateLimit(**row)
        action, before = "rate_limit.create", None
    else:
        previous = _rate_limit(existing._mapping)
        connection.execute(update(rate_limits).where(rate_limits.c.id == previous.id).values(**values))
        limit = RateLimit(**{**asdict(previous), **values})
        action, before = "rate_limit.update", previous.as_json()
    append_audit(
        connection,
        actor=actor,
        action=action,
        target_type="rate_limit",
        target_id=limit.id,
        team_id=limit.team_id,
        before=before,
        after=limit.as_json(),
    )
    bump_change(connection, CHANGE_TOPIC)
    return limit


def list_rate_limits(
    engine: Engine, *, team_id: str | None = None, scope: str | None = None, scope_id: str | None = None
) -> list[RateLimit]:
    query = select(rate_limits).order_by(rate_limits.c.scope, rate_limits.c.scope_id)
    if team_id is not None:
        query = query.where(rate_limits.c.team_id == team_id)
    if scope is not None:
        query = query.where(rate_limits.c.scope == parse_limit_scope(scope))
    if scope_id is not None:
        query = query.where(rate_limits.c.scope_id == scope_id)
    with engine.connect() as connection:
        return [_rate_limit(row._mapping) for row in connection.execute(query)]


def get_rate_limit(engine: Engine, limit_id: str) -> RateLimit:
    with engine.connect() as connection:
        row = connection.execute(select(rate_limits).where(rate_limits.c.id == limit_id)).first()
    if row is None:
        raise NotFound(f"No rate limit {limit_id!r}.")
    return _rate_limit(row._mapping)


def delete_rate_limit(engine: Engine, limit_id: str, *, actor: str) -> RateLimit:
    with engine.begin() as connection:
        row = connection.execute(select(rate_limits).where(rate_limits.c.id == limit_id)).first()
        if row is None:
            raise NotFound(f"No rate limit {limit_id!r}.")
        limit = _rate_limit(row._mapping)
        connection.execute(delete(rate_limits).where(rate_limits.c.id == limit_id))
        append_audit(
            connection,
            actor=actor,
            action="rate_limit.delete",
            target_type="rate_limit",
            target_id=limit.id,
            team_id=limit.team_id,
            before=limit.as_json(),
        )
        bump_change(connection, CHANGE_TOPIC)
    return limit


def _rate_limit(row: Any) -> RateLimit:
    return RateLimit(
        id=row["id"],
        scope=row["scope"],
        scope_id=row["scope_id"],
        rpm=None if row["rpm"] is None else int(row["rpm"]),
        tpm=None if row["tpm"] is None else int(row["tpm"]),
        team_id=row["team_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
