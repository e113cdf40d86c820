"""The OpenAI-compatible endpoints: chat completions, completions, embeddings.

One handler serves all three (``Operation`` says what differs). For every request:
read and validate the body → resolve the route → dispatch upstream (retries, fallback)
→ answer (JSON or SSE) → record. The record is queued for the request log after the
response is sent but before the ASGI call returns, so a graceful shutdown, which waits
for in-flight calls and then drains the queue, loses nothing a client was answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ValidationError

from keel.core import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    InvalidRequest,
    JSONObject,
    KeelError,
    ProviderError,
)
from keel.gateway._asgi import (
    SSE_HEADERS,
    ClientDisconnected,
    DisconnectWatcher,
    Receive,
    Scope,
    Send,
    error_payload,
    parse_json_object,
    read_body,
    send_error,
    send_json,
)
from keel.gateway._dispatch import Dispatcher, DispatchTrace
from keel.gateway._recorder import Recorder, count_usage
from keel.gateway._routing import Route, Router
from keel.gateway._stream_text import StreamTranscript
from keel.providers import ChunkStream, Deployment, Provider, ProviderResponse
from keel.store import RequestRecord

log = logging.getLogger("keel.gateway")

# Status recorded when the client went away before the answer was complete (nginx's).
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class Operation:
    endpoint: str
    schema: type[BaseModel]
    mode: str
    call: str  # Provider method for a whole answer
    open_stream: str | None  # Provider method that opens a stream


CHAT = Operation("chat.completions", ChatCompletionRequest, "chat", "chat", "open_chat_stream")
COMPLETIONS = Operation(
    "completions", CompletionRequest, "completion", "completion", "open_completion_stream"
)
EMBEDDINGS = Operation("embeddings", EmbeddingRequest, "embedding", "embeddings", None)

# The operations a route of each mode serves (a chat model can serve completions too).
_SERVES = {"chat": {"chat", "completion"}, "completion": {"completion"}, "embedding": {"embedding"}}


def _validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{loc}'.", param=loc)
    return InvalidRequest(f"Invalid value for '{loc}': {first['msg']}.", param=loc)


def _input_text(body: JSONObject) -> str:
    """The text a request sends, for counting input tokens when none are reported."""
    if "messages" in body:
        parts: list[str] = []
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else "\n".join(p for p in prompt if isinstance(p, str))


class OpenAIEndpoint:
    """An ASGI app serving one ``Operation``."""

    def __init__(
        self,
        op: Operation,
        router: Router,
        dispatcher: Dispatcher,
        recorder: Recorder,
        max_body_bytes: int,
    ) -> None:
        self.op = op
        self._router = router
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # Time-ordered (nanoseconds, then 48 random bits): inserts land at the end of the
        # primary-key index instead of all over it, and it is cheaper than uuid4().
        record = self._recorder.new_record(
            f"{time.time_ns():x}{os.urandom(6).hex()}", datetime.now(UTC), self.op.endpoint
        )
        id_header = [(b"x-request-id", record.id.encode())]
        watcher: DisconnectWatcher | None = None
        raw = b""
        try:
            raw = await read_body(scope, receive, self._max_body)
            body = parse_json_object(raw)
            record.requested_model = str(body.get("model") or "")
            try:
                request = self.op.schema.model_validate(body)
            except ValidationError as exc:
                raise _validation_error(exc) from None
            route = self._router.get(request.model)  # type: ignore[attr-defined]
            record.route = route.name
            if self.op.mode not in _SERVES[route.settings.mode]:
                raise InvalidRequest(
                    f"The model '{route.name}' is a {route.settings.mode} model; "
                    f"it cannot serve {self.op.endpoint}.",
                    param="model",
                )
            record.stream = bool(body.get("stream"))
            watcher = DisconnectWatcher(receive, send)
            send = watcher.send
            if record.stream and self.op.open_stream is not None:
                await self._stream(route, body, record, started, send, id_header)
            else:
                await self._unary(route, body, record, send, id_header)
        except ClientDisconnected:
            record.status = CLIENT_CLOSED
            record.error_type = "client_disconnected"
        except asyncio.CancelledError:
            if watcher is None or not watcher.disconnected:
                raise
            record.status = CLIENT_CLOSED
            record.error_type = "client_disconnected"
        except KeelError as exc:
            record.status = exc.status
            record.error_type = getattr(exc, "kind", None) or exc.type
            record.error_message = exc.message
            await send_error(send, exc, id_header)
        except Exception as exc:
            # A bug, not a client or upstream problem: log it, answer 500 if the
            # response has not started, and still record the request.
            log.exception("request %s failed", record.id)
            record.status = 500
            record.error_type = "internal_error"
            record.error_message = f"{type(exc).__name__}: {exc}"[:500]
            with contextlib.suppress(Exception):
                await send_error(send, KeelError("Internal error in the gateway."), id_header)
        finally:
            if watcher is not None:
                watcher.stop()
            record.latency_ms = (time.perf_counter() - started) * 1000
            await self._recorder.finish(record, raw)

    async def _unary(
        self,
        route: Route,
        body: JSONObject,
        record: RequestRecord,
        send: Send,
        id_header: list[tuple[bytes, bytes]],
    ) -> None:
        method = self.op.call

        async def call(provider: Provider, deployment: Deployment) -> ProviderResponse:
            fn = getattr(provider, method)
            result: ProviderResponse = await fn(body, deployment)
            return result

        trace = DispatchTrace()
        try:
            done = await self._dispatcher.call(route, call, trace)
        finally:
            self._recorder.note_trace(record, trace)
        payload = orjson.dumps(done.result.body)
        record.status = 200
        self._recorder.note_usage(record, done.result.usage)
        self._recorder.note_response(record, payload)
        await send_json(send, 200, payload, id_header)

    async def _stream(
        self,
        route: Route,
        body: JSONObject,
        record: RequestRecord,
        started: float,
        send: Send,
        id_header: list[tuple[bytes, bytes]],
    ) -> None:
        method = self.op.open_stream
        assert method is not None
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        async def open_stream(provider: Provider, deployment: Deployment) -> ChunkStream:
            fn = getattr(provider, method)
            stream: ChunkStream = await fn(body, deployment)
            return stream

        trace = DispatchTrace()
        try:
            done = await self._dispatcher.call(route, open_stream, trace)
        finally:
            self._recorder.note_trace(record, trace)
        stream = done.result
        transcript = StreamTranscript()
        # From here the client has a 200: a failure becomes an error event, never a retry.
        record.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *id_header]})
        pending: list[bytes] = []
        try:
            async for chunk in stream:
                data = chunk.data
                if not data.get("choices") and data.get("usage") is not None and not client_wants_usage:
                    continue  # the usage-only chunk Keel asked for on its own behalf
                if record.ttft_ms is None:
                    record.ttft_ms = (time.perf_counter() - started) * 1000
                transcript.add(data)
                pending.append(
                    b"data: " + (chunk.raw if chunk.raw is not None else orjson.dumps(data)) + b"\n\n"
                )
                if not stream.buffered():
                    # Chunks that arrived together leave together: one write, not many.
                    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
                    pending.clear()
            pending.append(b"data: [DONE]\n\n")
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
        except ProviderError as exc:
            record.error_type = exc.kind
            record.error_message = exc.message
            pending.append(b"data: " + orjson.dumps(error_payload(exc)) + b"\n\n")
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
        finally:
            await stream.aclose()
            usage = stream.usage or count_usage(
                done.state.deployment, done.state.provider, _input_text(body), transcript.text()
            )
            self._recorder.note_usage(record, usage)
            if self._recorder.keeps_bodies:
                self._recorder.note_response(record, orjson.dumps(transcript.summary()))
