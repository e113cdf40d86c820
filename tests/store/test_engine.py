from __future__ import annotations

import socket
import threading
from pathlib import Path

from sqlalchemy import Engine, text

from keel.store import create_store_engine, ping


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sqlite_creates_parent_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "keel.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert path.exists()
    # synchronous: 1 is NORMAL.
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000, "foreign_keys": 1}


def test_in_memory_sqlite_is_one_database_across_threads() -> None:
    # The request log writer inserts from worker threads.
    engine = create_store_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))

    def insert() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    thread = threading.Thread(target=insert)
    thread.start()
    thread.join()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_plain_postgresql_url_uses_psycopg_3_with_pre_ping() -> None:
    engine = create_store_engine("postgresql://user:secret@127.0.0.1:5432/keel")
    assert engine.dialect.driver == "psycopg"
    assert engine.pool._pre_ping


def test_ping_answers_true_on_a_live_database(bare_engine: Engine) -> None:
    assert ping(bare_engine) is True


def test_ping_answers_false_without_raising_when_unreachable() -> None:
    engine = create_store_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/keel")
    assert ping(engine) is False
