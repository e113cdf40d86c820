"""Readiness follows the store: 503 while it cannot be reached."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from keel.core import KeelSettings
from keel.gateway import Gateway, create_app
from keel.telemetry import GatewayMetrics


def _client(tmp_path: Path, store_up: bool) -> TestClient:
    async def ready() -> bool:
        return store_up

    gateway = Gateway(KeelSettings(home=tmp_path), {}, None, GatewayMetrics(), ready)
    return TestClient(create_app(gateway))


def test_ready_reports_an_unreachable_store(tmp_path: Path) -> None:
    with _client(tmp_path, store_up=False) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "store": "unreachable"}
        assert client.get("/health/live").status_code == 200


def test_ready_when_the_store_answers(tmp_path: Path) -> None:
    with _client(tmp_path, store_up=True) as client:
        assert client.get("/health/ready").json() == {"status": "ready", "store": "ok"}
