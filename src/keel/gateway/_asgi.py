"""Small raw-ASGI helpers for the data plane.

The OpenAI endpoints are plain ASGI callables rather than Starlette request/response
objects: the gateway needs to read the body under a size limit, keep listening for the
client's disconnect while upstream works, and stream without extra layers. Everything
else (health, metrics, later the admin API and console) uses Starlette/FastAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from keel.core import InvalidRequest, KeelError, PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientDisconnected(Exception):
    """The client closed the connection before the response was complete."""


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (413) early when
    ``Content-Length`` says so, and while reading otherwise."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return value


def error_payload(exc: KeelError) -> dict[str, Any]:
    """OpenAI's error format."""
    return {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}


async def send_json(
    send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, exc: KeelError, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = list(extra_headers or [])
    retry_after = getattr(exc, "retry_after", None)
    if exc.status == 429 and retry_after:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await send_json(send, exc.status, orjson.dumps(error_payload(exc)), headers)


class DisconnectWatcher:
    """Cancels the handling task when the client disconnects.

    Once the body is read, the only message ASGI can still deliver is
    ``http.disconnect``; a background task waits for it and cancels the handler, which
    cancels the upstream call it is awaiting. ``disconnected`` tells that cancellation
    apart from a server shutdown. Servers also answer ``receive`` with
    ``http.disconnect`` once the response is complete, so sends go through ``send``
    here, which notes the last body message before it goes out.

    The task starts only after ``grace`` seconds: most calls through a fast upstream
    finish sooner, and a task per request is a measurable share of the gateway's CPU.
    A client that leaves earlier is noticed when the task starts (its ``receive`` then
    answers at once), so an abandoned call runs at most ``grace`` longer.
    """

    __slots__ = ("_handler", "_receive", "_response_done", "_send", "_task", "_timer", "disconnected")

    def __init__(self, receive: Receive, send: Send, grace: float = 0.05) -> None:
        self.disconnected = False
        self._response_done = False
        self._receive = receive
        self._send = send
        handler = asyncio.current_task()
        assert handler is not None
        self._handler = handler
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(grace, self._start)

    def _start(self) -> None:
        self._timer = None
        if not self._response_done:
            self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._response_done:
                    self.disconnected = True
                    self._handler.cancel()
                return

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._response_done = True
        await self._send(message)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
