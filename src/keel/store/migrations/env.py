"""Alembic environment for Keel's own migrations.

Keel runs migrations in code (``keel.store.upgrade``), never through ``alembic.ini``:
the caller opens the connection (and takes the lock that serialises concurrent
upgrades) and passes it in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from keel.store._migrate import VERSION_TABLE
from keel.store._tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("keel migrations run through keel.store.upgrade(), which supplies a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
