"""Run a real gateway on a real port, in a background thread, in front of the fake upstream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from tests.fakes import FakeDeployment, FakeUpstream

from keel.access import ensure_first_admin
from keel.core import (
    AccessSettings,
    BreakerPolicy,
    DeploymentSettings,
    KeelSettings,
    ProviderSettings,
    RequestLogSettings,
    RetryPolicy,
    RouteSettings,
    ServerSettings,
    Timeouts,
)
from keel.server import KeelApp, build_app, uvicorn_config
from keel.store import RequestRecord, recent_requests


class AdminClient:
    """The admin API of a running gateway over HTTP, as an admin key (or any ``key=``)."""

    def __init__(self, url: str, key: str) -> None:
        self.key = key
        self.http = httpx.Client(base_url=f"{url}/admin", timeout=10)

    def call(
        self, method: str, path: str, json: Any = None, *, key: str | None = None, expect: int | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        response = self.http.request(method, path, json=json, headers=headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def post(self, path: str, json: Any = None, *, expect: int = 201) -> Any:
        return self.call("POST", path, json, expect=expect).json()

    def put(self, path: str, json: Any = None, *, expect: int = 200) -> Any:
        return self.call("PUT", path, json, expect=expect).json()

    def get(self, path: str, *, expect: int = 200) -> Any:
        return self.call("GET", path, expect=expect).json()

    def team(self, name: str) -> str:
        """A new team's id."""
        team_id: str = self.post("/teams", {"name": name})["id"]
        return team_id

    def new_key(self, name: str = "app", *, role: str = "service", **fields: Any) -> tuple[str, str]:
        """A new key: (its id, its plaintext)."""
        created = self.post("/keys", {"name": name, "role": role, **fields})
        return created["id"], created["key"]

    def close(self) -> None:
        self.http.close()


@dataclass
class RunningGateway:
    app: KeelApp
    server: uvicorn.Server
    thread: threading.Thread
    url: str
    _admin: AdminClient | None = None

    def admin(self) -> AdminClient:
        """The admin API as the organisation's first admin key (created on first use)."""
        if self._admin is None:
            secret = ensure_first_admin(self.app.engine)
            assert secret is not None, "an admin key exists already"
            self._admin = AdminClient(self.url, secret)
        return self._admin

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, api_key: str = "sk-client", **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def async_client(self, api_key: str = "sk-client", **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def flush_log(self) -> None:
        """Wait until every request answered so far is in the store. A handler queues
        its record after the client has the response but before its ASGI call returns:
        so wait until no call is running, then until the writer wrote all it accepted."""
        running = self.server.server_state.tasks
        writer = self.app.writer
        for _ in range(2000):
            if not running and writer.settled():
                return
            threading.Event().wait(0.005)
        raise AssertionError("the request log writer did not catch up")

    def records(self, **filters: Any) -> list[RequestRecord]:
        self.flush_log()
        return recent_requests(self.app.engine, limit=1000, **filters)

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.app.engine.dispose()


class _TestServer(uvicorn.Server):
    """uvicorn checks ``should_exit`` every 0.1 s; a test suite stopping a hundred
    gateways waits seconds for that alone."""

    async def main_loop(self) -> None:
        # on_tick refreshes the Date header when its counter is a multiple of 10: once a
        # second here too.
        ticks = 0
        while not await self.on_tick(0 if ticks == 0 else 1):
            ticks = (ticks + 1) % 100
            await asyncio.sleep(0.01)


def serve_in_thread(server: uvicorn.Server, what: str = "gateway") -> tuple[threading.Thread, str]:
    """Run ``server`` on a background thread until it listens; its thread and base URL.
    (uvicorn captures signals only on the main thread, so the test keeps its own.)"""
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(2000):
        if server.started:
            break
        threading.Event().wait(0.005)
    assert server.started, f"{what} did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return thread, f"http://127.0.0.1:{port}"


def start_gateway(settings: KeelSettings) -> RunningGateway:
    app = build_app(settings)
    server = _TestServer(uvicorn_config(app, log_level="warning"))
    thread, url = serve_in_thread(server)
    return RunningGateway(app, server, thread, url)


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
            mode=(mode or {}).get(route_name, "chat"),
            strategy=strategy,
            deployments=deployment_settings,
            fallbacks=(fallbacks or {}).get(route_name, []),
            **(route_options or {}).get(route_name, {}),
        )
    extra.setdefault("access", AccessSettings(enabled=False))
    # Batches written at once: tests read the log right after each call.
    extra.setdefault("request_log", RequestLogSettings(flush_interval=0.01))
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
