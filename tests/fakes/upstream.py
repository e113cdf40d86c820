"""A local stand-in for external LLM providers (OpenAI- and Anthropic-compatible).

The server runs in a background thread with its own event loop, so sync tests, async tests
and a gateway running in yet another thread can all talk to it over real TCP on 127.0.0.1.

Every path starts with a *name* segment (``/{name}/v1/chat/completions``): each name is an
independent deployment with its own fault script and request log, so tests sharing one server
never see each other's traffic.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes import _wire
from tests.fakes._wire import embedding_for, iter_sse_data

__all__ = ["FakeDeployment", "FakeUpstream", "Fault", "ReceivedRequest", "embedding_for", "iter_sse_data"]

DEFAULT_MODELS = ("fake-chat", "fake-embed")


@dataclass
class Fault:
    """How to misbehave (or what to answer) for one request; the defaults mean "behave".

    Order: ``delay`` first, then ``drop``, then ``status`` (an error body in the endpoint's
    provider format), else the normal answer shaped by the rest. "Chunks" are content chunks
    (text or tool-argument pieces), not the role/finish/usage chunks around them:
    ``cut_after_chunks`` closes the connection after N of them (no finish chunk, no [DONE]);
    ``stall_after_chunks`` sleeps ``stall`` seconds after N of them, then finishes normally.
    ``chunks`` slices the reply into N equal character runs (default: one per word).
    ``tool_call`` ({"name", "arguments": dict | str}) applies only when the request has tools.
    ``retry_after`` adds a Retry-After header to whatever is sent.
    """

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0
    drop: bool = False
    cut_after_chunks: int | None = None
    stall_after_chunks: int | None = None
    stall: float = 0
    chunk_delay: float = 0
    chunks: int | None = None
    no_usage: bool = False
    reply: str | None = None
    tool_call: dict[str, Any] | None = None
    # Overrides the error message sent with ``status``.
    message: str | None = None


@dataclass
class ReceivedRequest:
    """One request as the fake saw it. ``completed``/``cancelled``/``status`` are updated live
    by the server thread as the handler progresses."""

    name: str
    method: str
    # The path after the name segment, e.g. "/v1/chat/completions".
    path: str
    headers: CIMultiDict[str]
    json: Any
    # ``time.monotonic()`` when the request's body had been read.
    received_at: float
    fault: Fault
    query: dict[str, str] = field(default_factory=dict)
    # HTTP status sent; None while no headers went out (dropped, still delayed, cancelled early).
    status: int | None = None
    completed: bool = False
    cancelled: bool = False
    # Set when the fake itself closed the connection (drop / cut), so that the resulting
    # handler cancellation is not mistaken for a client disconnect.
    closed_by_server: bool = False
    # The OpenAI-style usage of the answer the fake composed (its own count: one token a
    # word), set before any of it is sent; None for errors.
    usage: dict[str, int] | None = None

    @property
    def api_key(self) -> str | None:
        """The key the client sent: the Bearer token, else the ``x-api-key`` header."""
        auth = self.headers.get("Authorization")
        if auth is not None and auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("x-api-key")


class FakeUpstream:
    """The fake provider server. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port: int | None = None
        self._cond = threading.Condition(threading.RLock())
        self._queues: dict[str, deque[Fault]] = {}
        self._defaults: dict[str, Fault] = {}
        self._records: dict[str, list[ReceivedRequest]] = {}
        self._models: dict[str, list[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(ready, errors), name="fake-upstream", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError("fake upstream failed to start") from errors[0]
        if self._port is None:
            raise RuntimeError("fake upstream did not start within 10 s")
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None
        self._port = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._open())
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            return
        ready.set()
        self._loop.run_forever()

    async def _open(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{name}/v1/chat/completions", self._chat)
        app.router.add_post("/{name}/v1/completions", self._completions)
        app.router.add_post("/{name}/v1/embeddings", self._embeddings)
        app.router.add_get("/{name}/v1/models", self._list_models)
        # The Anthropic SDK appends /v1/messages to its base URL; some clients are given a
        # base URL ending in /v1 already, so both spellings land here.
        app.router.add_post("/{name}/v1/messages", self._messages)
        app.router.add_post("/{name}/messages", self._messages)
        app.router.add_route("*", "/{name}/{tail:.*}", self._unknown)
        # handler_cancellation: without it aiohttp keeps running a handler whose client has
        # gone away, and ``cancelled`` could never be observed.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0)
        await site.start()
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.Server)
        self._port = server.sockets[0].getsockname()[1]

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("fake upstream is not running")
        return f"http://{self._host}:{self._port}"

    def base_url_for(self, name: str) -> str:
        """OpenAI-style base URL (ends in /v1); also serves Anthropic's /v1/messages."""
        return f"{self.url}/{name}/v1"

    def anthropic_base_url_for(self, name: str) -> str:
        """Base URL for the Anthropic SDK, which appends /v1/messages itself."""
        return f"{self.url}/{name}"

    def deployment(self, name: str) -> FakeDeployment:
        return FakeDeployment(self, name)

    # -- behaviour -------------------------------------------------------------------------

    def script(self, name: str, *faults: Fault) -> None:
        """Queue faults, consumed one per request to ``name`` (any endpoint)."""
        with self._cond:
            self._queues.setdefault(name, deque()).extend(faults)

    def set_default(self, name: str, fault: Fault | None) -> None:
        """Fault for every request to ``name`` once its script is used up (None clears it)."""
        with self._cond:
            if fault is None:
                self._defaults.pop(name, None)
            else:
                self._defaults[name] = fault

    def set_models(self, name: str, model_ids: list[str]) -> None:
        with self._cond:
            self._models[name] = list(model_ids)

    def reset(self, name: str) -> None:
        """Forget the script, default, models and recorded requests of ``name``."""
        with self._cond:
            self._queues.pop(name, None)
            self._defaults.pop(name, None)
            self._records.pop(name, None)
            self._models.pop(name, None)
            self._cond.notify_all()

    # -- recording -------------------------------------------------------------------------

    def requests(self, name: str) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._records.get(name, ()))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true; raise TimeoutError after ``timeout`` seconds.
        Do not call from an event loop that the awaited traffic needs: use ``wait_for_async``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                # Short waits as a backstop for predicates that depend on more than our state.
                self._cond.wait(min(remaining, 0.05))

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    def _record(self, rec: ReceivedRequest) -> None:
        with self._cond:
            self._records.setdefault(rec.name, []).append(rec)
            self._cond.notify_all()

    def _next_fault(self, name: str) -> Fault:
        with self._cond:
            queue = self._queues.get(name)
            if queue:
                return queue.popleft()
            return self._defaults.get(name, Fault())

    def _update(self, rec: ReceivedRequest, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(rec, key, value)
            self._cond.notify_all()

    # -- request plumbing ------------------------------------------------------------------

    async def _begin(self, request: web.Request) -> ReceivedRequest:
        name = request.match_info["name"]
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        rec = ReceivedRequest(
            name=name,
            method=request.method,
            path=request.path[len(name) + 1 :],
            headers=CIMultiDict(request.headers),
            json=body,
            received_at=time.monotonic(),
            fault=self._next_fault(name),
            query=dict(request.query),
        )
        self._record(rec)
        return rec

    async def _run(
        self,
        request: web.Request,
        style: _wire.ErrorStyle,
        respond: Callable[[ReceivedRequest, _Writer], Any],
    ) -> web.StreamResponse:
        """Record, apply the request-level faults, then let ``respond`` answer."""
        rec = await self._begin(request)
        fault = rec.fault
        writer = _Writer(self, request, rec)
        try:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                await writer.close_connection()
            if fault.status is not None:
                resp = _wire.error_response(style, fault.status, fault.message, fault.retry_after)
            else:
                if not isinstance(rec.json, dict) and request.method == "POST":
                    resp = _wire.error_response(
                        style, 400, "request body must be a JSON object", fault.retry_after
                    )
                else:
                    resp = await respond(rec, writer)
            if not resp.prepared:
                # Marked before the bytes go out: a client that has read the whole answer
                # must never observe completed=False.
                self._update(rec, status=resp.status, completed=True)
                await resp.prepare(request)
                await resp.write_eof()
            return resp
        except asyncio.CancelledError:
            self._update(rec, completed=False, cancelled=not rec.closed_by_server)
            raise
        except ConnectionResetError:
            # A write hit a transport the client had already closed.
            self._update(rec, completed=False, cancelled=not rec.closed_by_server)
            # Raised as cancellation so aiohttp drops it quietly instead of logging a 500.
            raise asyncio.CancelledError() from None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}fake{next(self._ids)}"

    # -- OpenAI endpoints ------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "openai", self._respond_chat)

    async def _respond_chat(self, rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
        body: dict[str, Any] = rec.json
        fault = rec.fault
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            problem = "messages: a non-empty list is required"
            return _wire.error_response("openai", 400, problem, fault.retry_after)
        tool_call = _wire.tool_call_of(fault.tool_call, body)
        reply, truncated = _wire.truncate(
            _wire.reply_text(fault.reply, _wire.last_user_text(messages), _wire.wants_json(body)),
            body.get("max_completion_tokens", body.get("max_tokens")),
        )
        finish = "tool_calls" if tool_call else ("length" if truncated else "stop")
        n = int(body.get("n") or 1)
        prompt_tokens = sum(_wire.words(_wire.openai_content_text(m.get("content"))) for m in messages)
        completion_tokens = n * (_wire.words(tool_call["arguments"]) if tool_call else _wire.words(reply))
        usage = _wire.openai_usage(prompt_tokens, completion_tokens)
        self._update(rec, usage=usage)
        chat_id = self._new_id("chatcmpl-")
        model = body.get("model", "fake-chat")
        created = int(time.time())

        if not body.get("stream"):
            choices = []
            for i in range(n):
                message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
                if tool_call:
                    message["content"] = None
                    message["tool_calls"] = [_wire.openai_tool_call(tool_call, i)]
                choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
            payload: dict[str, Any] = {
                "id": chat_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": choices,
            }
            if not fault.no_usage:
                payload["usage"] = usage
            return _wire.json_response(payload, fault.retry_after)

        include_usage = _wire.include_usage(body) and not fault.no_usage

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": choices,
            }
            if include_usage:
                out["usage"] = None
            return out

        def choice(i: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        await writer.open_sse()
        for i in range(n):
            if tool_call:
                call = _wire.openai_tool_call(tool_call, i)
                first = {**call, "index": 0, "function": {"name": tool_call["name"], "arguments": ""}}
                await writer.sse(
                    chunk([choice(i, {"role": "assistant", "content": None, "tool_calls": [first]})])
                )
                for piece in _wire.pieces(tool_call["arguments"], fault.chunks):
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    await writer.content(chunk([choice(i, delta)]))
            else:
                await writer.sse(chunk([choice(i, {"role": "assistant", "content": "", "refusal": None})]))
                for piece in _wire.pieces(reply, fault.chunks):
                    await writer.content(chunk([choice(i, {"content": piece})]))
        await writer.checkpoint()
        for i in range(n):
            await writer.sse(chunk([choice(i, {}, finish)]))
        if include_usage:
            await writer.sse({**chunk([]), "usage": usage})
        return await writer.finish_sse(done=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "openai", self._respond_completions)

    async def _respond_completions(self, rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
        body: dict[str, Any] = rec.json
        fault = rec.fault
        prompt = body.get("prompt", "")
        prompts = [str(p) for p in prompt] if isinstance(prompt, list) else [str(prompt)]
        n = int(body.get("n") or 1)
        max_tokens = body.get("max_tokens")
        replies = [
            _wire.truncate(fault.reply if fault.reply is not None else "echo: " + p, max_tokens)
            for p in prompts
        ]
        usage = _wire.openai_usage(
            sum(_wire.words(p) for p in prompts), n * sum(_wire.words(text) for text, _ in replies)
        )
        cmpl_id = self._new_id("cmpl-")
        model = body.get("model", "fake-chat")
        created = int(time.time())
        # With several prompts OpenAI numbers choices prompt-major: index = prompt * n + i.
        indexed = [
            (p * n + i, text, truncated) for p, (text, truncated) in enumerate(replies) for i in range(n)
        ]

        def finish_of(truncated: bool) -> str:
            return "length" if truncated else "stop"

        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": cmpl_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": idx, "text": text, "logprobs": None, "finish_reason": finish_of(truncated)}
                    for idx, text, truncated in indexed
                ],
            }
            if not fault.no_usage:
                payload["usage"] = usage
            return _wire.json_response(payload, fault.retry_after)

        include_usage = _wire.include_usage(body) and not fault.no_usage

        def chunk(idx: int, text: str, finish_reason: str | None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": cmpl_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"index": idx, "text": text, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                out["usage"] = None
            return out

        await writer.open_sse()
        for idx, text, _ in indexed:
            for piece in _wire.pieces(text, fault.chunks):
                await writer.content(chunk(idx, piece, None))
        await writer.checkpoint()
        for idx, _, truncated in indexed:
            await writer.sse(chunk(idx, "", finish_of(truncated)))
        if include_usage:
            await writer.sse(
                {
                    "id": cmpl_id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        return await writer.finish_sse(done=True)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "openai", self._respond_embeddings)

    async def _respond_embeddings(self, rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
        body: dict[str, Any] = rec.json
        raw = body.get("input")
        if raw is None or raw == [] or raw == "":
            return _wire.error_response("openai", 400, "input must not be empty", rec.fault.retry_after)
        # A list of ints is one tokenised input; any other list is a batch.
        inputs = [raw] if isinstance(raw, str) or (isinstance(raw, list) and isinstance(raw[0], int)) else raw
        dimensions = int(body.get("dimensions") or _wire.DEFAULT_EMBEDDING_DIMENSIONS)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vector = _wire.embedding_for(item if isinstance(item, str) else json.dumps(item), dimensions)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(_wire.words(item) if isinstance(item, str) else len(item) for item in inputs)
        payload: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model", "fake-embed")}
        if not rec.fault.no_usage:
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _wire.json_response(payload, rec.fault.retry_after)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "openai", self._respond_models)

    async def _respond_models(self, rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
        with self._cond:
            ids = self._models.get(rec.name, list(DEFAULT_MODELS))
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "fake"} for i in ids]
        return _wire.json_response({"object": "list", "data": data}, rec.fault.retry_after)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        async def not_found(rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
            return _wire.error_response("openai", 404, f"no route for {request.method} {rec.path}", None)

        return await self._run(request, "openai", not_found)

    # -- Anthropic Messages API ------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, "anthropic", self._respond_messages)

    async def _respond_messages(self, rec: ReceivedRequest, writer: _Writer) -> web.StreamResponse:
        body: dict[str, Any] = rec.json
        fault = rec.fault
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not messages:
            return _wire.error_response(
                "anthropic", 400, "messages: at least one message is required", fault.retry_after
            )
        tool_call = _wire.tool_call_of(fault.tool_call, body)
        reply, truncated = _wire.truncate(
            _wire.reply_text(fault.reply, _wire.last_user_text(messages), False), body.get("max_tokens")
        )
        stop_reason = "tool_use" if tool_call else ("max_tokens" if truncated else "end_turn")
        input_tokens = _wire.words(_wire.anthropic_content_text(body.get("system"))) + sum(
            _wire.words(_wire.anthropic_content_text(m.get("content"))) for m in messages
        )
        output_tokens = _wire.words(tool_call["arguments"]) if tool_call else _wire.words(reply)
        block: dict[str, Any]
        if tool_call:
            block = {
                "type": "tool_use",
                "id": self._new_id("toolu_"),
                "name": tool_call["name"],
                "input": json.loads(tool_call["arguments"]),
            }
        else:
            block = {"type": "text", "text": reply}
        message: dict[str, Any] = {
            "id": self._new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-chat"),
            "content": [block],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        if fault.no_usage:
            del message["usage"]
        if not body.get("stream"):
            return _wire.json_response(message, fault.retry_after)

        start = {**message, "content": [], "stop_reason": None}
        if not fault.no_usage:
            start["usage"] = {"input_tokens": input_tokens, "output_tokens": 1}
        await writer.open_sse()
        await writer.event("message_start", {"type": "message_start", "message": start})
        empty_block = {**block, "input": {}} if tool_call else {"type": "text", "text": ""}
        await writer.event(
            "content_block_start", {"type": "content_block_start", "index": 0, "content_block": empty_block}
        )
        await writer.event("ping", {"type": "ping"})
        if tool_call:
            for piece in _wire.pieces(tool_call["arguments"], fault.chunks):
                delta = {"type": "input_json_delta", "partial_json": piece}
                await writer.content(
                    {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
                )
        else:
            for piece in _wire.pieces(reply, fault.chunks):
                delta = {"type": "text_delta", "text": piece}
                await writer.content(
                    {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
                )
        await writer.checkpoint()
        await writer.event("content_block_stop", {"type": "content_block_stop", "index": 0})
        message_delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        }
        if not fault.no_usage:
            message_delta["usage"] = {"output_tokens": output_tokens}
        await writer.event("message_delta", message_delta)
        await writer.event("message_stop", {"type": "message_stop"})
        return await writer.finish_sse(done=False)


class FakeDeployment:
    """One name on a FakeUpstream: the same operations without repeating the name."""

    def __init__(self, upstream: FakeUpstream, name: str) -> None:
        self.upstream = upstream
        self.name = name

    @property
    def base_url(self) -> str:
        return self.upstream.base_url_for(self.name)

    @property
    def anthropic_base_url(self) -> str:
        return self.upstream.anthropic_base_url_for(self.name)

    def script(self, *faults: Fault) -> None:
        self.upstream.script(self.name, *faults)

    def set_default(self, fault: Fault | None) -> None:
        self.upstream.set_default(self.name, fault)

    def set_models(self, model_ids: list[str]) -> None:
        self.upstream.set_models(self.name, model_ids)

    def reset(self) -> None:
        self.upstream.reset(self.name)

    def requests(self) -> list[ReceivedRequest]:
        return self.upstream.requests(self.name)

    @property
    def last_request(self) -> ReceivedRequest:
        recorded = self.requests()
        if not recorded:
            raise AssertionError(f"no request reached {self.name!r}")
        return recorded[-1]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        self.upstream.wait_for(predicate, timeout)

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        await self.upstream.wait_for_async(predicate, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived; return them."""
        self.wait_for(lambda: len(self.requests()) >= count, timeout)
        return self.requests()


class _Writer:
    """Writes one streamed response and applies the streaming faults between chunks."""

    def __init__(self, upstream: FakeUpstream, request: web.Request, rec: ReceivedRequest) -> None:
        self._upstream = upstream
        self._request = request
        self._rec = rec
        self._fault = rec.fault
        self._resp: web.StreamResponse | None = None
        self._sent_content = 0
        self._stalled = False

    async def open_sse(self) -> None:
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if self._fault.retry_after is not None:
            headers["Retry-After"] = _wire.seconds(self._fault.retry_after)
        self._resp = web.StreamResponse(status=200, headers=headers)
        await self._resp.prepare(self._request)
        self._upstream._update(self._rec, status=200)

    async def sse(self, payload: Mapping[str, Any]) -> None:
        await self._write(f"data: {json.dumps(payload)}\n\n")

    async def event(self, name: str, payload: Mapping[str, Any]) -> None:
        await self._write(f"event: {name}\ndata: {json.dumps(payload)}\n\n")

    async def content(self, payload: Mapping[str, Any], event: str | None = None) -> None:
        """Send one content chunk: the unit that ``chunks``/``cut``/``stall`` count."""
        await self.checkpoint()
        if self._sent_content and self._fault.chunk_delay:
            await asyncio.sleep(self._fault.chunk_delay)
        if event is None:
            await self.sse(payload)
        else:
            await self.event(event, payload)
        self._sent_content += 1

    async def checkpoint(self) -> None:
        """Apply stall/cut once the configured number of content chunks went out."""
        fault = self._fault
        if (
            fault.stall_after_chunks is not None
            and not self._stalled
            and self._sent_content >= fault.stall_after_chunks
        ):
            self._stalled = True
            await asyncio.sleep(fault.stall)
        if fault.cut_after_chunks is not None and self._sent_content >= fault.cut_after_chunks:
            await self.close_connection()

    async def finish_sse(self, *, done: bool) -> web.StreamResponse:
        assert self._resp is not None
        self._upstream._update(self._rec, completed=True)
        if done:
            await self._write("data: [DONE]\n\n")
        await self._resp.write_eof()
        return self._resp

    async def close_connection(self) -> None:
        """Close the TCP connection (flushing what was written) and never answer."""
        self._upstream._update(self._rec, closed_by_server=True)
        transport = self._request.transport
        if transport is not None:
            transport.close()
        # aiohttp cancels this handler when it notices the closed connection.
        await asyncio.sleep(30)
        raise asyncio.CancelledError()

    async def _write(self, text: str) -> None:
        assert self._resp is not None
        await self._resp.write(text.encode())
