"""Migration 0003 creates exactly the tables the access code queries."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from keel.access import api_keys, teams
from keel.store import metadata

ACCESS_TABLES = {"teams", "api_keys"}


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return _table_of(diff[0])
    for part in diff[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if name in ACCESS_TABLES:
            return str(name)
        if isinstance(part, str) and part in ACCESS_TABLES:
            return part
    return None


def test_the_migrated_access_tables_match_the_code(engine: Engine) -> None:
    assert {teams.name, api_keys.name} == ACCESS_TABLES
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": "keel_alembic_version"}
        )
        diffs = compare_metadata(context, metadata)
    assert [d for d in diffs if _table_of(d) in ACCESS_TABLES] == []
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= ACCESS_TABLES
    assert {u["name"] for u in inspector.get_unique_constraints("api_keys")} == {"uq_api_keys_key_hash"}
    assert [fk["referred_table"] for fk in inspector.get_foreign_keys("api_keys")] == ["teams"]
