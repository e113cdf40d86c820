"""The cheapest gateway on Keel's stack: the floor that Keel's own cost is measured against.

A raw ASGI app on uvicorn (uvloop + httptools, as Keel runs) that forwards every ``POST``
to the same path on the upstream through one pooled aiohttp ``ClientSession``. The
request body is parsed and re-serialised with orjson, because any gateway must at least
read the request to route it. A non-streaming answer is read whole and returned with
its ``Content-Length``; a streaming one (``"stream": true``) is relayed piece by piece as
the upstream's bytes arrive. No routing, validation, recording, logging or metrics:
what this process spends per request is what the server and client libraries cost.

``GET /health`` answers 200 without touching the upstream.

    python -m bench.floor_proxy --port 8200 --upstream http://127.0.0.1:8100
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = {"Content-Type": "application/json"}
_HEALTH_HEAD: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
_HEALTH_BODY: Message = {"type": "http.response.body", "body": b"ok"}
_STREAM_HEAD: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
}


class FloorProxy:
    """The ASGI app; its one client session lives from lifespan start to lifespan end."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The same pool settings as Keel's provider client, so that the
                # comparison is between the gateways and not their connection reuse.
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=256, limit_per_host=0, keepalive_timeout=30),
                    headers=_JSON_HEADERS,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trust_env=False,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET" and scope["path"] == "/health":
            await send(_HEALTH_HEAD)
            await send(_HEALTH_BODY)
            return
        body = await _read_body(receive)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            await _plain(send, 400, b"request body is not JSON")
            return
        stream = isinstance(payload, dict) and payload.get("stream") is True
        session = self._session
        assert session is not None, "lifespan startup has not run"
        try:
            async with session.post(
                self._upstream + scope["path"], data=orjson.dumps(payload), allow_redirects=False
            ) as resp:
                if stream and resp.status == 200:
                    await send(_STREAM_HEAD)
                    async for piece in resp.content.iter_any():
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return
                answer = await resp.read()
                content_type = resp.headers.get("Content-Type", "application/json").encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": resp.status,
                        "headers": [
                            (b"content-type", content_type),
                            (b"content-length", str(len(answer)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
        except (aiohttp.ClientError, TimeoutError):
            # Before the response has started this is a clean 502; after, uvicorn
            # closes the connection, which the client sees as an incomplete stream.
            await _plain(send, 502, b"upstream failed")


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    pieces = [body]
    while message.get("more_body", False):
        message = await receive()
        pieces.append(message.get("body", b""))
    return b"".join(pieces)


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": text})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8100")
    args = parser.parse_args(argv)
    # The server settings of Keel's own `uvicorn_config`, less the graceful-shutdown timeout.
    uvicorn.run(
        FloorProxy(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        timeout_keep_alive=30,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
