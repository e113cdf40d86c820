"""What budgets and rate limits share: settings stored one row per scope (and period),
each change made in one transaction with its audit entry and a bump of the ``spend``
change topic, so gateways reload them and nothing is half-written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, NotFound
from keel.spend._price_store import CHANGE_TOPIC
from keel.store import append_audit, bump_change


class _ScopedRecord(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def team_id(self) -> str | None: ...

    def as_json(self) -> dict[str, Any]: ...


RecordT = TypeVar("RecordT", bound=_ScopedRecord)


def checked_scope_id(scope_id: str) -> str:
    scope_id = scope_id.strip()
    if not scope_id or len(scope_id) > 255:
        raise InvalidRequest("scope_id must be a non-empty id of at most 255 characters.", param="scope_id")
    return scope_id


@dataclass(frozen=True, slots=True)
class ScopedTable(Generic[RecordT]):
    """One table of per-scope settings and how its rows become records."""

    table: Table
    # The columns one setting is unique by (a set replaces the row they name); lists are
    # ordered by them too.
    key_columns: tuple[str, ...]
    id_prefix: str
    # The audit log's name for a row: "<audit_type>.create", ".update", ".delete".
    audit_type: str
    # How messages name a row: "No <noun> 'id'."
    noun: str
    # A row (a mapping of column names to values) as a record.
    from_row: Callable[[Any], RecordT]

    def set_row(self, engine: Engine, values: dict[str, Any], actor: str) -> RecordT:
        """Insert the row ``values`` name by their key columns, or replace the one there
        is (keeping its id)."""
        for attempt in (1, 2):
            try:
                with engine.begin() as connection:
                    return self._upsert(connection, values, actor)
            except IntegrityError:
                # Two first sets of one scope at once: the loser replaces the winner's row.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _upsert(self, connection: Connection, values: dict[str, Any], actor: str) -> RecordT:
        columns = self.table.c
        existing = connection.execute(
            select(self.table).where(*(columns[name] == values[name] for name in self.key_columns))
        ).first()
        if existing is None:
            row = {
                **values,
                "id": f"{self.id_prefix}_{uuid.uuid4().hex[:20]}",
                "created_at": datetime.now(UTC),
                "created_by": actor[:255],
            }
            connection.execute(insert(self.table).values(**row))
            record = self.from_row(row)
            self._changed(connection, actor, "create", record, before=None, after=record.as_json())
        else:
            previous = self.from_row(existing._mapping)
            connection.execute(update(self.table).where(columns.id == previous.id).values(**values))
            record = self.from_row({**existing._mapping, **values})
            self._changed(
                connection, actor, "update", record, before=previous.as_json(), after=record.as_json()
            )
        return record

    def list_rows(
        self, engine: Engine, *, team_id: str | None, scope: str | None, scope_id: str | None
    ) -> list[RecordT]:
        columns = self.table.c
        query = select(self.table).order_by(*(columns[name] for name in self.key_columns))
        if team_id is not None:
            query = query.where(columns.team_id == team_id)
        if scope is not None:
            query = query.where(columns.scope == scope)
        if scope_id is not None:
            query = query.where(columns.scope_id == scope_id)
        with engine.connect() as connection:
            return [self.from_row(row._mapping) for row in connection.execute(query)]

    def get_row(self, engine: Engine, row_id: str) -> RecordT:
        with engine.connect() as connection:
            return self._existing(connection, row_id)

    def delete_row(self, engine: Engine, row_id: str, *, actor: str) -> RecordT:
        with engine.begin() as connection:
            record = self._existing(connection, row_id)
            connection.execute(delete(self.table).where(self.table.c.id == row_id))
            self._changed(connection, actor, "delete", record, before=record.as_json(), after=None)
        return record

    def _changed(
        self,
        connection: Connection,
        actor: str,
        action: str,
        record: RecordT,
        *,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """Audit a change in the transaction that makes it, and bump the ``spend`` topic so
        gateways reload."""
        append_audit(
            connection,
            actor=actor,
            action=f"{self.audit_type}.{action}",
            target_type=self.audit_type,
            target_id=record.id,
            team_id=record.team_id,
            before=before,
            after=after,
        )
        bump_change(connection, CHANGE_TOPIC)

    def _existing(self, connection: Connection, row_id: str) -> RecordT:
        row = connection.execute(select(self.table).where(self.table.c.id == row_id)).first()
        if row is None:
            raise NotFound(f"No {self.noun} {row_id!r}.")
        return self.from_row(row._mapping)
