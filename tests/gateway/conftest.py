"""Run a real gateway on a real port, in a background thread, in front of the fake upstream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from tests.fakes import FakeDeployment, FakeUpstream

from keel.core import (
    AccessSettings,
    BreakerPolicy,
    DeploymentSettings,
    KeelSettings,
    ProviderSettings,
    RetryPolicy,
    RouteSettings,
    ServerSettings,
    Timeouts,
)
from keel.server import KeelApp, build_app, uvicorn_config
from keel.store import RequestRecord, recent_requests


@dataclass
class RunningGateway:
    app: KeelApp
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="sk-client", max_retries=0, **kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key="sk-client", max_retries=0, **kwargs)

    def flush_log(self) -> None:
        """Wait until every request answered so far is in the store. A handler queues
        its record just after the client has the response, so wait until the number
        accepted holds still, then until all of those are written."""
        writer = self.app.writer
        seen, still = -1, 0
        for _ in range(200):
            if writer.accepted == seen and writer.settled():
                still += 1
                if still == 3:
                    return
            else:
                seen, still = writer.accepted, 0
            threading.Event().wait(0.05)
        raise AssertionError("the request log writer did not catch up")

    def records(self, **filters: Any) -> list[RequestRecord]:
        self.flush_log()
        return recent_requests(self.app.engine, limit=1000, **filters)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.app.engine.dispose()


def start_gateway(settings: KeelSettings) -> RunningGateway:
    app = build_app(settings)
    server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
    # The test owns signals; uvicorn must not install its handlers in a worker thread.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "gateway did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningGateway(app, server, thread, f"http://127.0.0.1:{port}")


def fake_settings(
    home: Path,
    routes: dict[str, list[FakeDeployment]],
    *,
    fallbacks: dict[str, list[str]] | None = None,
    strategy: str = "weighted",
    mode: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    breaker: BreakerPolicy | None = None,
    timeouts: Timeouts | None = None,
    max_body_bytes: int = 1024 * 1024,
    anthropic: tuple[str, ...] = (),
    route_options: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> KeelSettings:
    """Settings whose routes point at fake deployments (one provider entry each; routes
    named in ``anthropic`` speak the Messages API upstream). ``route_options`` adds
    settings to a route (``cache``, ``limits`` ...); ``extra`` to the whole config.
    Access control is off unless ``access`` is given: most tests are not about keys."""
    providers: dict[str, ProviderSettings] = {}
    models: dict[str, RouteSettings] = {}
    for route_name, deps in routes.items():
        deployment_settings = []
        for dep in deps:
            kind = "anthropic" if route_name in anthropic else "openai"
            base_url = dep.anthropic_base_url if kind == "anthropic" else dep.base_url
            providers[dep.name] = ProviderSettings(type=kind, base_url=base_url, api_key="sk-upstream")
            deployment_settings.append(
                DeploymentSettings(provider=dep.name, model="fake-chat", name=dep.name)
            )
        models[route_name] = RouteSettings(
            mode=(mode or {}).get(route_name, "chat"),  # type: ignore[arg-type]
            strategy=strategy,  # type: ignore[arg-type]
            deployments=deployment_settings,
            fallbacks=(fallbacks or {}).get(route_name, []),
            **(route_options or {}).get(route_name, {}),
        )
    extra.setdefault("access", AccessSettings(enabled=False))
    return KeelSettings(
        home=home,
        server=ServerSettings(port=0, max_body_bytes=max_body_bytes, graceful_timeout=10),
        providers=providers,
        models=models,
        retry=retry or RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.05),
        breaker=breaker or BreakerPolicy(failure_threshold=5, cooldown=30),
        timeouts=timeouts or Timeouts(connect=2, read=5, total=20, stream_idle=5),
        **extra,
    )


GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """``gateway_factory({"route": [deployment, ...]}, **settings_overrides)``."""
    running: list[RunningGateway] = []

    def make(routes: dict[str, list[FakeDeployment]], **kwargs: Any) -> RunningGateway:
        gw = start_gateway(fake_settings(tmp_path / f"home{len(running)}", routes, **kwargs))
        running.append(gw)
        return gw

    yield make
    for gw in running:
        gw.stop()


@pytest.fixture
def make_deployment(fake_upstream: FakeUpstream) -> Iterator[Callable[[], FakeDeployment]]:
    """Several fresh fake deployments in one test."""
    import uuid

    made: list[FakeDeployment] = []

    def make() -> FakeDeployment:
        dep = fake_upstream.deployment(f"d{uuid.uuid4().hex[:12]}")
        made.append(dep)
        return dep

    yield make
    for dep in made:
        dep.reset()
