"""A fast local OpenAI-compatible upstream for the gateway benchmark.

A raw asyncio protocol (on uvloop when available) answering ``POST
/v1/chat/completions`` with precomputed bytes, so that the upstream costs as little CPU
as possible and the benchmark measures the gateway rather than its stand-in upstream:

- non-streaming: one fixed chat completion with usage, ``Content-Length`` framed;
- ``"stream": true``: ``STREAM_CHUNKS`` content chunks, a usage-only chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``, chunked-encoded.
  Each chunk is its own socket write, one event-loop turn after the previous one, so a
  reader that keeps up sees separate chunks as it would from a real model.

``--latency-ms`` delays unstreamed answers (the eval benchmark's model latency).

It speaks just enough HTTP/1.1 for keep-alive clients (aiohttp, httpx, curl): one
request at a time per connection, ``Content-Length`` or chunked request bodies.
``GET /health`` answers 200. Run it as ``python -m bench.upstream --port 8100``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable
from typing import cast

import orjson

MODEL = "bench-model"
STREAM_CHUNKS = 10
_WORDS = ("Keel", " is", " a", " gateway", " that", " records", " every", " call", " it", " proxies.")
_CONTENT = "".join(_WORDS)
_USAGE = {"prompt_tokens": 24, "completion_tokens": STREAM_CHUNKS, "total_tokens": 24 + STREAM_CHUNKS}
_MAX_HEADER_BYTES = 64 * 1024
# Seconds before an unstreamed answer is sent (``--latency-ms``): a model's think time.
_latency_s = 0.0


def _completion_body() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _CONTENT},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _USAGE,
        }
    )


def _stream_event(delta: dict[str, str], finish_reason: str | None) -> bytes:
    data = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
    )
    return b"data: " + data + b"\n\n"


def _chunked(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk carrying ``payload``."""
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _stream_frames(include_usage: bool) -> tuple[bytes, ...]:
    """The socket writes of one streamed answer, headers folded into the first one."""
    events = [
        _stream_event(
            {"role": "assistant", "content": word} if i == 0 else {"content": word},
            "stop" if i == STREAM_CHUNKS - 1 else None,
        )
        for i, word in enumerate(_WORDS)
    ]
    if include_usage:
        usage = orjson.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": MODEL,
                "choices": [],
                "usage": _USAGE,
            }
        )
        events.append(b"data: " + usage + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    frames = [_chunked(event) for event in events]
    frames[0] = _STREAM_HEAD + frames[0]
    frames[-1] += b"0\r\n\r\n"
    return tuple(frames)


_BODY = _completion_body()
_UNARY_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_STREAM_WITH_USAGE = _stream_frames(include_usage=True)
_STREAM_WITHOUT_USAGE = _stream_frames(include_usage=False)
_HEALTH_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
_NOT_FOUND_RESPONSE = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot found"
)
_BAD_REQUEST_RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
    b"connection: close\r\n\r\nbad request"
)


class _Request:
    __slots__ = ("body", "method", "path")

    def __init__(self, method: bytes, path: bytes, body: bytes) -> None:
        self.method = method
        self.path = path
        self.body = body


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        # True while a streamed answer is still being written: later requests wait.
        self._streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        self._serve_buffered()

    def _serve_buffered(self) -> None:
        while not self._streaming and self._transport is not None:
            try:
                parsed = _parse_request(self._buffer)
            except ValueError:
                self._fail()
                return
            if parsed is None:
                if len(self._buffer) > _MAX_HEADER_BYTES and b"\r\n\r\n" not in self._buffer:
                    self._fail()
                return
            request, consumed = parsed
            self._buffer = self._buffer[consumed:]
            self._answer(request)

    def _fail(self) -> None:
        if self._transport is not None:
            self._transport.write(_BAD_REQUEST_RESPONSE)
            self._transport.close()

    def _answer(self, request: _Request) -> None:
        transport = self._transport
        assert transport is not None
        if request.method == b"POST" and request.path.endswith(b"/chat/completions"):
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                self._fail()
                return
            if isinstance(body, dict) and body.get("stream"):
                options = body.get("stream_options")
                usage = isinstance(options, dict) and bool(options.get("include_usage"))
                self._stream(_STREAM_WITH_USAGE if usage else _STREAM_WITHOUT_USAGE)
            elif _latency_s > 0:
                # Later requests on this connection wait, as they would behind a model.
                self._streaming = True
                asyncio.get_running_loop().call_later(_latency_s, self._write_later, _UNARY_RESPONSE)
            else:
                transport.write(_UNARY_RESPONSE)
        elif request.method == b"GET" and request.path == b"/health":
            transport.write(_HEALTH_RESPONSE)
        else:
            transport.write(_NOT_FOUND_RESPONSE)

    def _write_later(self, payload: bytes) -> None:
        self._streaming = False
        if self._transport is not None:
            self._transport.write(payload)
            self._serve_buffered()

    def _stream(self, frames: tuple[bytes, ...]) -> None:
        self._streaming = True
        loop = asyncio.get_running_loop()

        def write(i: int) -> None:
            transport = self._transport
            if transport is None:
                return
            transport.write(frames[i])
            if i + 1 < len(frames):
                loop.call_soon(write, i + 1)
            else:
                self._streaming = False
                if self._buffer:
                    self._serve_buffered()

        write(0)


def _parse_request(buffer: bytes) -> tuple[_Request, int] | None:
    """A whole request at the start of ``buffer`` and its length, or ``None`` when more
    bytes are needed; ``ValueError`` when the bytes are not HTTP this server understands."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = buffer[:head_end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, path, _ = parts
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    start = head_end + 4
    if not chunked:
        end = start + length
        if len(buffer) < end:
            return None
        return _Request(method, path, buffer[start:end]), end
    return _parse_chunked(method, path, buffer, start)


def _parse_chunked(method: bytes, path: bytes, buffer: bytes, pos: int) -> tuple[_Request, int] | None:
    pieces: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buffer[pos:line_end].split(b";")[0], 16)
        data_start = line_end + 2
        if size == 0:
            # Trailers are not expected from the clients this serves; skip to the blank line.
            trailer_end = buffer.find(b"\r\n", data_start)
            if trailer_end < 0:
                return None
            return _Request(method, path, b"".join(pieces)), trailer_end + 2
        if len(buffer) < data_start + size + 2:
            return None
        pieces.append(buffer[data_start : data_start + size])
        pos = data_start + size + 2


def _install_fast_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


async def serve(host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of each unstreamed answer")
    args = parser.parse_args(argv)
    global _latency_s
    _latency_s = args.latency_ms / 1000

    def announce(port: int) -> None:
        # The benchmark reads this line to learn the port and that the server is up.
        print(f"upstream listening on http://{args.host}:{port} (pid {os.getpid()})", flush=True)

    with asyncio.Runner(loop_factory=_install_fast_loop()) as runner:
        runner.run(serve(args.host, args.port, announce))


if __name__ == "__main__":
    main()
