"""The audit log: who changed what, when, with the object before and after.

Rows are only ever appended (the database refuses UPDATE and DELETE on the table).
``append_audit`` takes the caller's connection so that the entry commits or rolls back
with the change it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from keel.store._tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    team_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def append_audit(
    connection: Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    team_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record one change inside the caller's transaction. ``before``/``after`` must be
    JSON-serialisable and must never hold a secret (a key's hash or plaintext)."""
    connection.execute(
        insert(audit_log).values(
            at=datetime.now(UTC),
            actor=actor[:255],
            action=action,
            target_type=target_type,
            target_id=target_id,
            team_id=team_id,
            before=before,
            after=after,
        )
    )


def read_audit(
    engine: Engine,
    *,
    limit: int = 100,
    team_id: str | None = None,
    target_type: str | None = None,
    since: datetime | None = None,
) -> list[AuditEntry]:
    """Most recent first. ``team_id`` limits to changes within one team."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if team_id is not None:
        query = query.where(audit_log.c.team_id == team_id)
    if target_type is not None:
        query = query.where(audit_log.c.target_type == target_type)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    with engine.connect() as connection:
        return [AuditEntry(**row._mapping) for row in connection.execute(query)]
