from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import DBAPIError

from keel.store import append_audit, audit_log, bump_change, read_audit, read_changes


def test_bump_change_counts_per_topic(engine: Engine) -> None:
    assert read_changes(engine) == {}
    with engine.begin() as connection:
        bump_change(connection, "keys")
        bump_change(connection, "keys")
        bump_change(connection, "prompts")
    assert read_changes(engine) == {"keys": 2, "prompts": 1}


def test_a_rolled_back_change_does_not_bump(engine: Engine) -> None:
    def change_that_fails() -> None:
        with engine.begin() as connection:
            bump_change(connection, "keys")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert read_changes(engine) == {}


def test_audit_entries_are_listed_newest_first_and_filtered(engine: Engine) -> None:
    with engine.begin() as connection:
        append_audit(
            connection,
            actor="cli:root",
            action="team.create",
            target_type="team",
            target_id="t1",
            team_id="t1",
            after={"name": "search"},
        )
        append_audit(
            connection,
            actor="key:k1",
            action="key.revoke",
            target_type="key",
            target_id="k2",
            team_id="t2",
            before={"revoked": False},
            after={"revoked": True},
        )
    entries = read_audit(engine)
    assert [e.action for e in entries] == ["key.revoke", "team.create"]
    assert entries[0].before == {"revoked": False} and entries[0].after == {"revoked": True}
    assert entries[0].at.tzinfo is not None
    assert [e.target_id for e in read_audit(engine, team_id="t1")] == ["t1"]
    assert [e.action for e in read_audit(engine, target_type="key")] == ["key.revoke"]


def test_the_audit_log_refuses_updates_and_deletes(engine: Engine) -> None:
    with engine.begin() as connection:
        append_audit(connection, actor="cli:root", action="team.create", target_type="team", target_id="t1")
    for statement in (update(audit_log).values(actor="someone else"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(statement)
    assert [e.actor for e in read_audit(engine)] == ["cli:root"]
