"""A real Keel server (gateway and admin API, keys required) on a real port, in a
background thread, that a test can stop and start again on the same port and database."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from keel.access import AccessAdmin, Actor
from keel.core import AccessSettings, KeelSettings, PromptSettings, ServerSettings
from keel.prompts import PromptRegistry
from keel.server import KeelApp, build_app, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class KeelServer:
    """``start()``/``stop()`` a Keel server; keys and prompts live in its database."""

    home: Path
    port: int = field(default_factory=free_port)
    app: KeelApp | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'keel.db'}"

    def start(self) -> KeelServer:
        settings = KeelSettings(
            home=self.home,
            server=ServerSettings(port=self.port, graceful_timeout=5),
            access=AccessSettings(enabled=True, refresh_interval=0.2),
            prompts=PromptSettings(refresh_interval=0.2),
        )
        self.app = build_app(settings)
        # Started from a worker thread, uvicorn leaves the test's signal handlers alone.
        server = uvicorn.Server(uvicorn_config(self.app, log_level="warning"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "Keel did not start"
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None or self.app is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.app.engine.dispose()
        self._server = self._thread = None

    @property
    def registry(self) -> PromptRegistry:
        assert self.app is not None
        return PromptRegistry(self.app.engine, on_change=self.app.prompts.reload)

    def new_key(self, role: str = "member") -> str:
        """A key of a new team (a member key reads the organisation's prompts)."""
        assert self.app is not None
        admin = AccessAdmin(self.app.engine)
        actor = Actor.system("test")
        team = admin.create_team(actor, f"team-{role}-{free_port()}")
        return admin.create_key(actor, name=role, role=role, team_id=team.id).secret


@pytest.fixture
def keel_server(tmp_path: Path) -> Iterator[KeelServer]:
    server = KeelServer(tmp_path / "home").start()
    yield server
    server.stop()
