"""Alert test fixtures: a real HTTP receiver for webhooks and a tiny SMTP server, both on
real ports in threads of their own (so that CLI tests, which run their own event loop,
can reach them too), and helpers that seed the request log."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import Engine

from keel.core import AlertSettings
from keel.store import RequestRecord, insert_records
from tests.gateway.conftest import gateway_factory  # noqa: F401 (fixture for the drift alert test)


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@dataclass
class Receiver:
    """Collects every JSON POST; answers ``statuses`` in turn (then 200)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)

    def states(self, alert: str | None = None) -> list[str]:
        return [m["state"] for m in self.received if alert is None or m.get("alert") == alert]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    async def handle(request: web.Request) -> web.Response:
        got.attempts += 1
        status = got.statuses.pop(0) if got.statuses else 200
        if status == 200:
            got.received.append(await request.json())
            got.headers.append(dict(request.headers))
        return web.Response(status=status, text="ok" if status == 200 else "down")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    loop = _LoopThread()

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    got.url = f"http://127.0.0.1:{loop.run(start())}/hook"
    yield got
    loop.run(runner.cleanup())
    loop.close()


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


async def _smtp_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, box: Mailbox) -> None:
    """Just enough of RFC 5321 for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    async def say(line: str) -> None:
        writer.write(f"{line}\r\n".encode())
        await writer.drain()

    await say("220 test-smtp ready")
    sender, recipients = "", []
    while line := (await reader.readline()).decode().rstrip("\r\n"):
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            await say("250 test-smtp")
        elif verb == "MAIL":
            sender = line.split(":", 1)[1].strip().strip("<>")
            await say("250 ok")
        elif verb == "RCPT":
            recipients.append(line.split(":", 1)[1].strip().strip("<>"))
            await say("250 ok")
        elif verb == "DATA":
            await say("354 end with <CRLF>.<CRLF>")
            data = []
            while (chunk := (await reader.readline()).decode()) not in (".\r\n", ".\n", ""):
                data.append(chunk[1:] if chunk.startswith("..") else chunk)
            box.messages.append({"from": sender, "to": recipients, "data": "".join(data)})
            await say("250 queued")
        elif verb == "QUIT":
            await say("221 bye")
            break
        else:  # RSET, NOOP ...
            await say("250 ok")
    writer.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    loop = _LoopThread()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(lambda r, w: _smtp_session(r, w, box), box.host, 0)

    server = loop.run(start())
    box.port = server.sockets[0].getsockname()[1]
    yield box
    server.close()
    loop.close()


def alert_settings(receiver: Receiver, *rules: dict[str, Any], **channel: Any) -> AlertSettings:
    """Settings with one webhook channel ``hook`` to ``receiver``; every rule notifies it."""
    hook = {"type": "webhook", "url": receiver.url, "retries": 1, "backoff": 0, **channel}
    return AlertSettings.model_validate(
        {
            "interval": "1s",
            "console_url": "http://keel.test/ui/alerts",
            "channels": {"hook": hook},
            "rules": [{"channels": ["hook"], **rule} for rule in rules],
        }
    )


def seed_requests(engine: Engine, at: datetime, count: int, **values: Any) -> None:
    """``count`` request-log rows at ``at`` with ``values`` (latency_ms, status ...)."""
    defaults: dict[str, Any] = {"endpoint": "chat.completions", "requested_model": "gpt-x", "status": 200}
    insert_records(
        engine,
        [
            RequestRecord(id=uuid.uuid4().hex, created_at=at, **{**defaults, **values})  # type: ignore[arg-type]
            for _ in range(count)
        ],
    )
