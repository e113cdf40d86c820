"""The schema as SQLAlchemy Core tables. Migrations (``migrations/versions``) create it;
this module is what queries and inserts are written against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

# Stable constraint names, so that later migrations (and SQLite batch mode) can name them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    SQLite has no time zone type and returns naive values; PostgreSQL returns them in the
    session's time zone. Values are stored as UTC; a naive value is taken to be UTC
    already (Keel creates its timestamps with ``datetime.now(UTC)``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite stores the text form; without the offset every value sorts and compares
        # as plain text, which is what ``ORDER BY created_at`` relies on.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Columns the console's aggregates read, carried in its indexes so that a page over a
# time range never touches the table itself.
_CONSOLE_COVERED = (
    "key_id",
    "requested_model",
    "end_user",
    "status",
    "error_type",
    "cache_status",
    "cost_nanos",
    "cost_saved_nanos",
    "latency_ms",
)

request_log = Table(
    "request_log",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("requested_model", String(255), nullable=False),
    Column("status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("route", String(255)),
    Column("provider", String(255)),
    Column("deployment", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("input_tokens", Integer),
    Column("cached_input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("usage_source", String(16)),
    Column("key_id", String(64)),
    Column("team_id", String(64)),
    Column("end_user", String(255)),
    Column("request_body", Text),
    Column("response_body", Text),
    Column("body_truncated", Boolean, nullable=False, default=False),
    Column("extra", JSON),
    Column("cost_nanos", BigInteger),
    Column("cache_status", String(16)),
    Column("cost_saved_nanos", BigInteger),
    Column("prompt_name", String(255)),
    Column("prompt_version", Integer),
    Column("guards", JSON),
    Index("ix_request_log_created_at", "created_at"),
    Index("ix_request_log_requested_model", "requested_model"),
    Index("ix_request_log_status", "status"),
    Index("ix_request_log_key_id", "key_id"),
    Index("ix_request_log_team_id", "team_id"),
    Index("ix_request_log_prompt_name", "prompt_name", "created_at"),
    # The console's aggregates (migration 0013): covering indexes, and a partial one of the
    # requests a guard triggered on (its condition is keel.console._sql.GUARD_TRIGGERED_SQL;
    # SQLite uses a partial index only when the query repeats the condition word for word).
    Index("ix_request_log_console_time", "created_at", "team_id", *_CONSOLE_COVERED),
    Index("ix_request_log_console_team", "team_id", "created_at", *_CONSOLE_COVERED),
    Index(
        "ix_request_log_guard_triggers",
        "created_at",
        "team_id",
        sqlite_where=text(
            "json_extract(guards, '$.input.decision') IN ('flag', 'redact', 'block') "
            "OR json_extract(guards, '$.output.decision') IN ('flag', 'redact', 'block')"
        ),
        postgresql_where=text(
            "(guards -> 'input' ->> 'decision') IN ('flag', 'redact', 'block') "
            "OR (guards -> 'output' ->> 'decision') IN ('flag', 'redact', 'block')"
        ),
    ),
)


# One row per kind of runtime object (keys, budgets, prompts ...): its version goes up in
# the transaction that changes one, so a process holding them in memory knows to reload.
keel_changes = Table(
    "keel_changes",
    metadata,
    Column("topic", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)


# Append-only: the migration adds triggers that refuse UPDATE and DELETE, so no API (and
# no bug) can rewrite history.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(255)),
    Column("team_id", String(64)),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_team_id", "team_id"),
)
