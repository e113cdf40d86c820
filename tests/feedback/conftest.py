"""A gateway (access control on) in front of the fake upstream, and the feedback API on a
port of its own over the same store: the test-only stand-in for the composition root."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from keel.access import KeyRing
from keel.core import AccessSettings, RequestLogSettings
from keel.feedback import create_feedback_api
from tests.fakes import FakeDeployment
from tests.gateway.conftest import AdminClient, RunningGateway, fake_settings, serve_in_thread, start_gateway


@dataclass
class Stack:
    gateway: RunningGateway
    feedback_url: str
    admin: AdminClient
    admin_key: str
    # team name -> (team id, service key)
    teams: dict[str, tuple[str, str]]

    def ask(self, key: str, text: str, **kwargs: Any) -> str:
        """A chat call through the gateway; the request id it was logged under."""
        raw = self.gateway.client(key).chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": text}], **kwargs
        )
        raw.parse()
        request_id: str = raw.headers["x-request-id"]
        return request_id


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread, url = serve_in_thread(server, "feedback API")
    return server, thread, url


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(tmp_path: Path, upstream: FakeDeployment) -> Iterator[StackFactory]:
    stopping: list[Callable[[], None]] = []

    def make(flush_interval: float = 0.01, wait_for_log: float = 0.3) -> Stack:
        settings = fake_settings(
            tmp_path / f"home{len(stopping)}",
            {"chat": [upstream]},
            access=AccessSettings(enabled=True, create_first_admin=False),
            request_log=RequestLogSettings(flush_interval=flush_interval),
        )
        gateway = start_gateway(settings)
        stopping.append(gateway.stop)
        admin = gateway.admin()
        teams = {}
        for name in ("red", "blue"):
            team_id = admin.team(name)
            _, key = admin.new_key(f"{name}-app", role="service", team_id=team_id)
            teams[name] = (team_id, key)
        api = create_feedback_api(
            engine=gateway.app.engine, keys=KeyRing(gateway.app.engine), wait_for_log=wait_for_log
        )
        # Route for the bare path (a Mount alone redirects it with a 307), Mount for the rest.
        app = Starlette(
            routes=[Route("/v1/feedback", api, methods=["GET", "POST"]), Mount("/v1/feedback", api)]
        )
        server, thread, url = serve(app)

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=10)

        stopping.insert(0, stop)
        return Stack(gateway, url, admin, admin.key, teams)

    yield make
    for stop in stopping:
        stop()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
