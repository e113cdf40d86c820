"""Building the SQLAlchemy engine for a database URL (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

# Applied to every new SQLite connection. WAL lets `keel logs` read while the gateway
# writes; NORMAL is durable across process crashes in WAL mode and much cheaper than
# FULL; busy_timeout makes a second writer wait for the lock instead of failing at once.
# busy_timeout first: every later statement may have to wait for another connection.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# Switching a new database to WAL needs an exclusive lock, and SQLite answers "database
# is locked" at once (without its busy handler) when several connections race for it,
# e.g. replicas starting together. WAL is persistent, so a retry soon finds it set.
_WAL_ATTEMPTS = 100
_WAL_RETRY_SECONDS = 0.05

# ``extra`` columns may carry values json cannot encode (a datetime, a Decimal): logging
# them as strings beats failing the whole batch insert.
_json_serializer = functools.partial(json.dumps, default=str, ensure_ascii=False)


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``, choosing psycopg 3 for a bare ``postgresql://`` URL (SQLAlchemy's
    own default would be psycopg2, which Keel does not depend on)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_store_engine(url: str | URL) -> Engine:
    """An engine for ``url``: SQLite with its parent directory created and the pragmas
    above, or PostgreSQL through psycopg 3 with connections checked before use."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True, json_serializer=_json_serializer)


def _create_sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    kwargs: dict[str, Any] = {"json_serializer": _json_serializer}
    if in_memory:
        # Each pooled connection would open its own empty database; the request log
        # writer runs in worker threads, so every thread must share the one connection.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _apply_sqlite_pragmas)
    return engine


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        for attempt in range(_WAL_ATTEMPTS):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(_WAL_RETRY_SECONDS)
    finally:
        cursor.close()


def ping(engine: Engine) -> bool:
    """Whether the database answers ``SELECT 1``; never raises (health checks call it)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def display_url(engine_or_url: Engine | str | URL) -> str:
    """The URL with its password hidden, for messages."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.render_as_string(hide_password=True)
