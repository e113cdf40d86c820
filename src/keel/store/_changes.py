"""Change versions: how a process that keeps runtime objects in memory (keys, budgets,
prices, prompts) learns that another process changed them.

Whoever changes objects of a topic calls ``bump_change`` in the same transaction; a
process polls ``read_changes`` (one small query) and reloads the topics whose version
moved. Polling the store works with any number of replicas and needs no broker.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from keel.store._tables import keel_changes


def bump_change(connection: Connection, topic: str) -> None:
    """Advance ``topic``'s version inside the caller's transaction."""
    result = connection.execute(
        update(keel_changes).where(keel_changes.c.topic == topic).values(version=keel_changes.c.version + 1)
    )
    if result.rowcount:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(keel_changes).values(topic=topic, version=1)
    # Two first bumps at once: the loser's insert becomes an increment.
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[keel_changes.c.topic], set_={"version": keel_changes.c.version + 1}
        )
    )


def read_changes(engine: Engine) -> dict[str, int]:
    """Every topic's current version (a topic never bumped is absent)."""
    with engine.connect() as connection:
        return {row.topic: row.version for row in connection.execute(select(keel_changes))}
