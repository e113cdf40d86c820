"""The admin API under test: ``create_admin_app`` on the ``engine`` fixture (SQLite, and
PostgreSQL when configured), a real ``KeyRing``, and an ``httpx.AsyncClient`` over ASGI.

Other domains add their services by overriding ``admin_services`` in their test module::

    @pytest.fixture
    def admin_services(engine: Engine) -> dict[str, object]:
        return {"spend": SpendService(engine)}
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from keel.access import KeyRing, ensure_first_admin
from keel.admin import create_admin_app
from tests.access.clock import FakeClock
from tests.reports.conftest import seeded  # noqa: F401 (fixture for the reports API test)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyring_clock() -> FakeClock:
    """The key ring's clock: move it forward to make keys expire."""
    return FakeClock()


@pytest.fixture
def keyring(engine: Engine, keyring_clock: FakeClock) -> KeyRing:
    keys = KeyRing(engine, refresh_interval=0.05, clock=keyring_clock)
    keys.load()
    return keys


@pytest.fixture
def admin_key(engine: Engine, keyring: KeyRing) -> str:
    """The plaintext of the organisation's first admin key."""
    secret = ensure_first_admin(engine)
    assert secret is not None
    keyring.reload()
    return secret


@pytest.fixture
def admin_services() -> dict[str, object]:
    """Services besides ``engine`` and ``keys`` (override to add yours)."""
    return {}


@pytest.fixture
def admin_app(engine: Engine, keyring: KeyRing, admin_services: dict[str, object]) -> FastAPI:
    return create_admin_app(engine=engine, keys=keyring, **admin_services)


@pytest.fixture
async def admin_client(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        yield client
