"""Rate limits on keys and teams: requests per minute and tokens per minute, stored in the
database and managed by API and CLI (limits on models come from ``keel.yaml``).

One limit per key or team. Every change runs in one transaction with its audit entry and
a bump of the ``spend`` change topic, so gateways reload their limits and nothing is
half-written. The gateway enforces them through ``Counters.take`` with the
``LimitWindow`` of each (``SpendLedger.limits_for``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Engine

from keel.core import InvalidRequest
from keel.spend._counters import LimitWindow
from keel.spend._scoped_rows import ScopedTable, checked_scope_id
from keel.spend._tables import rate_limits

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
    scope_id = checked_scope_id(scope_id)
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
    return _RATE_LIMITS.set_row(engine, values, actor)


def list_rate_limits(
    engine: Engine, *, team_id: str | None = None, scope: str | None = None, scope_id: str | None = None
) -> list[RateLimit]:
    kind = parse_limit_scope(scope) if scope is not None else None
    return _RATE_LIMITS.list_rows(engine, team_id=team_id, scope=kind, scope_id=scope_id)


def get_rate_limit(engine: Engine, limit_id: str) -> RateLimit:
    return _RATE_LIMITS.get_row(engine, limit_id)


def delete_rate_limit(engine: Engine, limit_id: str, *, actor: str) -> RateLimit:
    return _RATE_LIMITS.delete_row(engine, limit_id, actor=actor)


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


_RATE_LIMITS = ScopedTable(
    rate_limits,
    key_columns=("scope", "scope_id"),
    id_prefix="rl",
    audit_type="rate_limit",
    noun="rate limit",
    from_row=_rate_limit,
)
