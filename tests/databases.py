"""Database fixtures for every package's tests: a test using them runs on SQLite (a file
in a temp dir) and, when KEEL_TEST_POSTGRES_URL is set, on PostgreSQL in a schema of its
own for this session, emptied before each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from keel.store import create_store_engine, normalize_url, upgrade

POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL")


class PostgresSchema:
    """A schema that exists for one test session; ``url`` connects with it first on
    the search path, so Keel's tables (and Alembic's version table) land in it."""

    def __init__(self, admin_url: str) -> None:
        self.name = f"keel_test_{uuid.uuid4().hex[:10]}"
        self.admin = create_store_engine(admin_url)
        url = normalize_url(admin_url).update_query_dict({"options": f"-csearch_path={self.name}"})
        self.url = url.render_as_string(hide_password=False)

    def reset(self) -> None:
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{self.name}"'))

    def drop(self) -> None:
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    if not POSTGRES_URL:
        pytest.skip("KEEL_TEST_POSTGRES_URL is not set: PostgreSQL variant not run")
    schema = PostgresSchema(POSTGRES_URL)
    schema.reset()
    yield schema
    schema.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no tables)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'keel.db'}"
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    schema.reset()
    return schema.url


@pytest.fixture
def bare_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty database."""
    engine = create_store_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    """An engine on a database migrated to head."""
    upgrade(bare_engine)
    return bare_engine
