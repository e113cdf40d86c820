"""Running the Alembic migrations shipped in ``keel/store/migrations`` from code.

No ``alembic.ini`` is read: the configuration is built here, and the connection is
handed to ``migrations/env.py``. Every upgrade runs in one transaction that first takes
a lock, so that replicas starting together upgrade one after another (the later ones
find the schema at head and do nothing):

- PostgreSQL: a transaction-level advisory lock (released by the commit);
- SQLite: ``BEGIN IMMEDIATE`` (the database write lock; others wait ``busy_timeout``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from keel.store._engine import create_store_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Not Alembic's default ``alembic_version``: Keel may share a database with other
# Alembic-managed applications (MLflow's tracking store is one).
VERSION_TABLE = "keel_alembic_version"
# Any fixed 64-bit number works; this one is "keel" in ASCII, easy to spot in pg_locks.
_ADVISORY_LOCK_KEY = 0x6B65656C


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    # Config values go through configparser interpolation: a "%" in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the shipped migrations lead to."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "keel ships at least one migration"
    return head


def upgrade(engine_or_url: Engine | str | URL) -> None:
    """Bring the database's schema to head; a no-op when it is already there."""
    if isinstance(engine_or_url, Engine):
        _upgrade(engine_or_url)
        return
    engine = create_store_engine(engine_or_url)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    with engine.connect() as connection:
        _lock_schema(connection)
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()


def _lock_schema(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        # The sqlite3 module would begin a deferred transaction, in which two processes
        # can both see "no schema yet"; IMMEDIATE takes the write lock up front.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when Keel's schema was never created."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
