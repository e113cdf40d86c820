from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

# The domain packages define their tables on the store's metadata when imported.
import keel.access
import keel.alerts
import keel.cache
import keel.evals._tables
import keel.feedback
import keel.monitor
import keel.prompts
import keel.release
import keel.spend  # noqa: F401
from keel.store import create_store_engine, current_revision, head_revision, metadata, upgrade


def test_upgrade_creates_request_log_with_its_indexes(bare_engine: Engine) -> None:
    assert current_revision(bare_engine) is None
    upgrade(bare_engine)
    assert current_revision(bare_engine) == head_revision()
    inspector = inspect(bare_engine)
    assert "request_log" in inspector.get_table_names()
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("request_log")}
    assert indexed >= {("created_at",), ("requested_model",), ("status",), ("key_id",), ("team_id",)}


def test_migrated_schema_matches_the_tables_queries_use(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": "keel_alembic_version"}
        )
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_upgrade_is_idempotent(bare_engine: Engine, database_url: str) -> None:
    upgrade(bare_engine)
    upgrade(bare_engine)
    upgrade(database_url)  # from a URL too
    assert current_revision(bare_engine) == head_revision()
    with bare_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM keel_alembic_version")).scalar() == 1


def test_replicas_starting_together_upgrade_one_after_another(database_url: str) -> None:
    # Separate engines stand for separate processes: each has its own connections.
    engines = [create_store_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        start.wait()
        try:
            upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            engine.dispose()
