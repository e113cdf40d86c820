"""Gateways with release overlays: a real gateway on a real port (tests/gateway's
harness) whose router a ``ReleaseWatcher`` keeps in step with the store, as server.py
wires it, running on an event loop of its own."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.access import Actor
from keel.core import KeelSettings, ProviderSettings, RetryPolicy
from keel.release import ReleaseSettings, ReleaseWatcher, record_gate
from tests.fakes import FakeDeployment, FakeUpstream
from tests.gateway.conftest import RunningGateway, fake_settings, start_gateway

OPERATOR = Actor.cli()


class LoopThread:
    """An event loop in a thread, for async components a sync test drives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@dataclass
class ReleaseGateway:
    gateway: RunningGateway
    watcher: ReleaseWatcher
    loop: LoopThread

    @property
    def engine(self) -> Any:
        return self.gateway.app.engine

    def sync(self) -> None:
        """Apply the store's deployments now (as the watcher's next poll would)."""
        self.loop.run(self.watcher.reload())

    def chat(self, n: int, *, model: str = "chat") -> list[str]:
        """``n`` chat calls; the ids of those that answered 200."""
        client = self.gateway.client()
        ids = []
        for _ in range(n):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=model, messages=[{"role": "user", "content": "hi"}]
                )
            except Exception:
                continue
            ids.append(raw.headers["x-request-id"])
        return ids

    def deployments_served(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.gateway.records():
            counts[record.deployment or "-"] = counts.get(record.deployment or "-", 0) + 1
        return counts


def with_providers(settings: KeelSettings, extra: dict[str, FakeDeployment]) -> KeelSettings:
    """``settings`` plus a configured (openai-type) provider per fake deployment."""
    providers = dict(settings.providers)
    for name, dep in extra.items():
        providers[name] = ProviderSettings(type="openai", base_url=dep.base_url, api_key="sk-upstream")
    return settings.model_copy(update={"providers": providers})


ReleaseGatewayFactory = Callable[..., ReleaseGateway]


@pytest.fixture
def make_deployment(fake_upstream: FakeUpstream) -> Iterator[Callable[[], FakeDeployment]]:
    """Fresh fake deployments (one model version each) on the session's fake server."""
    made: list[FakeDeployment] = []

    def make() -> FakeDeployment:
        made.append(fake_upstream.deployment(f"d{uuid.uuid4().hex[:12]}"))
        return made[-1]

    yield make
    for dep in made:
        dep.reset()


@pytest.fixture
def release_gateway(tmp_path: Path) -> Iterator[ReleaseGatewayFactory]:
    """``release_gateway(production, canaries={"provider name": fake}, retries=3)``: a
    gateway whose route ``chat`` is served by ``production``, with providers for the
    canaries, and a watcher polling the store every 50 ms."""
    made: list[ReleaseGateway] = []

    def make(
        production: FakeDeployment, *, canaries: dict[str, FakeDeployment] | None = None, retries: int = 3
    ) -> ReleaseGateway:
        settings = fake_settings(
            tmp_path / f"home{len(made)}",
            {"chat": [production]},
            retry=RetryPolicy(max_attempts=retries, backoff_base=0.01, backoff_max=0.02),
        )
        gateway = start_gateway(with_providers(settings, canaries or {}))
        loop = LoopThread()
        watcher = ReleaseWatcher(
            gateway.app.settings, gateway.app.engine, apply=gateway.app.gateway.router.set_overlays
        )
        watcher.settings = ReleaseSettings(refresh_interval=0.05, interval=3600, min_requests=20)
        loop.run(watcher.start())
        made.append(ReleaseGateway(gateway, watcher, loop))
        return made[-1]

    yield make
    for rg in made:
        rg.loop.run(rg.watcher.stop())
        rg.loop.stop()
        rg.gateway.stop()


def passing_gate(engine: Any, model: str, version: int) -> None:
    record_gate(
        engine,
        model=model,
        version=version,
        baseline_version=version - 1 if version > 1 else None,
        suite="unit",
        eval_run_id=None,
        passed=True,
        checks=[{"rule": "ok", "passed": True, "detail": "fine"}],
        actor="test",
    )
