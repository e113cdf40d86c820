"""A real Keel app with the console at /ui on a real port, over a seeded store.

Until ``keel.server.build_app`` mounts the console itself, the fixture mounts it on the
built app (test-only composition); once the server does, the fixture uses its mount."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from bench.console_seed import Seeded, seed, seed_eval_run

from keel.core import AccessSettings, ConsoleSettings, KeelSettings, ServerSettings, StoreSettings
from tests.gateway.conftest import RunningGateway, start_gateway

SEED_REQUESTS = 3000
SEED_DAYS = 7
# Fixed, so that the seeded data and the aggregates the tests expect do not depend on
# when the suite runs (rows are at most 7 days before this; ranges are custom below).
SEED_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Console:
    keel: RunningGateway
    seeded: Seeded
    eval_run: str

    @property
    def url(self) -> str:
        return f"{self.keel.url}/ui"

    @contextlib.contextmanager
    def client(self, key: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client signed in with ``key`` (a session cookie), or anonymous."""
        with httpx.Client(base_url=self.url, timeout=20, follow_redirects=False) as client:
            if key is not None:
                response = client.post("/login", data={"key": key})
                assert response.status_code == 303, response.text
            yield client


def start_keel_with_console(settings: KeelSettings) -> RunningGateway:
    """Keel on a real port; ``build_app`` mounts the console at /ui."""
    return start_gateway(settings)


def console_settings(home: Path, database_url: str | None = None) -> KeelSettings:
    return KeelSettings(
        home=home,
        server=ServerSettings(port=0, graceful_timeout=5),
        store=StoreSettings(url=database_url) if database_url else StoreSettings(),
        access=AccessSettings(enabled=True, create_first_admin=False),
        console=ConsoleSettings(secret="test-console-secret"),
    )


def running_console(home: Path, database_url: str | None = None) -> Iterator[Console]:
    keel = start_keel_with_console(console_settings(home, database_url))
    try:
        seeded = seed(
            keel.app.engine, SEED_REQUESTS, days=SEED_DAYS, now=SEED_NOW, keep_records=True, batch=1000
        )
        keel.app.keys.reload()
        yield Console(keel, seeded, seed_eval_run(keel.app.engine))
    finally:
        keel.stop()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One seeded console (SQLite) per test module."""
    yield from running_console(tmp_path_factory.mktemp("console"))
