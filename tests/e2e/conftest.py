"""Stacks of real gateway processes: on SQLite, or on PostgreSQL and Redis (skipped,
saying so, when KEEL_TEST_POSTGRES_URL or KEEL_TEST_REDIS_URL is not set; CI sets both)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.databases import PostgresSchema
from tests.e2e.harness import Stack
from tests.fakes import FakeUpstream

POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL")


@pytest.fixture
def sqlite_stack(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[Stack]:
    """Gateways on one SQLite file, with in-process counters."""
    stack = Stack(tmp_path, fake_upstream, f"sqlite:///{tmp_path / 'data' / 'keel.db'}").setup()
    yield stack
    stack.teardown()


@pytest.fixture
def shared_stack(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[Stack]:
    """Gateways on a PostgreSQL schema of their own, sharing counters in Redis under a
    key prefix of their own."""
    if not POSTGRES_URL or not REDIS_URL:
        pytest.skip(
            "KEEL_TEST_POSTGRES_URL and KEEL_TEST_REDIS_URL must both be set for the "
            "PostgreSQL + Redis variant (CI sets them)"
        )
    schema = PostgresSchema(POSTGRES_URL)
    schema.reset()
    prefix = f"keele2e:{uuid.uuid4().hex[:10]}:"
    stack = Stack(tmp_path, fake_upstream, schema.url, REDIS_URL, prefix)
    try:
        stack.setup()
        yield stack
    finally:
        stack.teardown()
        schema.drop()
        with Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Stack:
    """The stack a test is parametrised with (``indirect``): "sqlite" or "shared"."""
    kind: str = request.param
    return request.getfixturevalue(f"{kind}_stack")  # type: ignore[no-any-return]
