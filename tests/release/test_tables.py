"""Migration 0016 creates exactly the tables keel.release queries."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

import keel.release  # noqa: F401 (defines its tables on the store's metadata)
from keel.store import metadata


def test_the_release_tables_match_the_migration(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": "keel_alembic_version"}
        )
        diffs = compare_metadata(context, metadata)
    ours = [d for d in diffs if "model_gates" in repr(d) or "model_deployments" in repr(d)]
    assert ours == []
