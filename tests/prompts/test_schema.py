"""Migration 0006 creates exactly the tables the prompt registry queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import DBAPIError

import keel.prompts  # noqa: F401 (puts the prompt tables on the shared metadata)
from keel.prompts import PromptRegistry, prompt_label_history, prompt_versions
from keel.store import metadata

_OURS = ("prompts", "prompt_versions", "prompt_labels", "prompt_label_history")


def _touches_ours(diff: Any) -> bool:
    # Diffs are tuples (or lists of tuples) holding tables, columns or names.
    text = repr(diff)
    return any(f"'{name}'" in text or f"<{name}>" in text for name in _OURS)


def test_migrated_prompt_tables_match_the_code(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": "keel_alembic_version"}
        )
        diffs = compare_metadata(context, metadata)
    assert [d for d in diffs if _touches_ours(d)] == []


def test_versions_and_label_history_are_append_only(engine: Engine) -> None:
    registry = PromptRegistry(engine)
    registry.create("p", type="text", template="x", actor="t")
    registry.set_label("p", "staging", 1, actor="t", admin=False)
    for table in (prompt_versions, prompt_label_history):
        change = {"to_version": 2} if table is prompt_label_history else {"commit_message": "rewritten"}
        for statement in (update(table).values(**change), delete(table)):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(statement)
    assert registry.get_version("p", version=1).commit_message == ""
    with engine.begin() as connection:  # inserting stays possible
        connection.execute(insert(prompt_label_history).values(**_history_row(registry)))


def _history_row(registry: PromptRegistry) -> dict[str, Any]:
    with registry.engine.connect() as connection:
        prompt_id = connection.exec_driver_sql("SELECT id FROM prompts").scalar_one()
    return {
        "prompt_id": prompt_id,
        "label": "staging",
        "from_version": 1,
        "to_version": 1,
        "action": "set",
        "at": datetime.now(UTC),
        "actor": "t",
    }
