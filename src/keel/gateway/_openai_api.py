"""The OpenAI-compatible endpoints: chat completions, completions, embeddings.

One handler serves all three (``Operation`` says what differs). For every request:
authenticate the key → read and validate the body → expand a named prompt → resolve
the route → take the rate limits → ask the cache → reserve the most the call can cost →
dispatch upstream (retries, fallback) → answer (JSON or SSE) → settle the actual cost →
fill the cache → record. Each service is optional (``GatewayServices``); one that is not
configured costs nothing. The record is queued for the request log after the response
is sent but before the ASGI call returns, so a graceful shutdown, which waits for
in-flight calls and then drains the queue, loses nothing a client was answered.
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

from keel.access import Principal
from keel.cache import (
    CachedResponse,
    CacheHit,
    StreamAssembler,
    is_cacheable,
    sse_from_response,
    wants_bypass,
)
from keel.core import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    GuardViolation,
    InvalidRequest,
    JSONObject,
    KeelError,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    RouteCacheSettings,
    Usage,
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
from keel.gateway._credentials import client_key
from keel.gateway._dispatch import Dispatcher, DispatchTrace
from keel.gateway._guarding import (
    GuardedCall,
    StreamFilter,
    guard_answer,
    guard_input,
    logged_answer,
    logged_stream_summary,
    plant_request_canary,
)
from keel.gateway._recorder import Recorder, count_usage
from keel.gateway._routing import Route, Router
from keel.gateway._services import GatewayServices
from keel.gateway._spend_gate import Admission
from keel.gateway._stream_text import StreamTranscript, response_text
from keel.gateway._tags import request_tags
from keel.guards import Policy, PolicyOutcome
from keel.prompts import PromptSource, PromptVersion, expand_prompt_request, names_prompt
from keel.providers import ChunkStream, Deployment, Provider, ProviderResponse
from keel.store import RequestRecord
from keel.telemetry import GatewayMetrics

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


@dataclass(frozen=True, slots=True)
class _TeamPrompts:
    """The prompts one key may call: its team's and the organisation-wide ones (all for
    an admin key). Another team's prompt is unknown, as in the admin API."""

    catalog: PromptSource
    principal: Principal

    def resolve(self, name: str, label: str | None = None, version: int | None = None) -> PromptVersion:
        found = self.catalog.resolve(name, label, version)
        owner = found.team_id
        if owner is not None and owner != self.principal.team_id and not self.principal.is_admin:
            raise NotFound(f"Unknown prompt '{name}'.", param="prompt")
        return found


@dataclass(slots=True)
class _Call:
    """One request's state between the steps of the pipeline."""

    record: RequestRecord
    trace: DispatchTrace
    headers: list[tuple[bytes, bytes]]
    admission: Admission | None = None
    usage: Usage | None = None
    # The complete answer to put in the cache once the client has it (None: don't), the
    # request it answers, and the route the request was looked up under (a fallback
    # route may have answered it: the entry still belongs to the route asked).
    cache_body: JSONObject | None = None
    cache_request: JSONObject | None = None
    cache_route: Route | None = None
    # The guard policy's state for this call (None: no policy applies), and the request
    # body to log in place of the one received when the policy redacted it.
    guard: GuardedCall | None = None
    logged_request: bytes | None = None
    # Whether ``record.cost_nanos`` is final (an unstreamed answer is priced before it is
    # sent, so that its cost can go back in a header).
    priced: bool = False


class OpenAIEndpoint:
    """An ASGI app serving one ``Operation``."""

    def __init__(
        self,
        op: Operation,
        router: Router,
        dispatcher: Dispatcher,
        recorder: Recorder,
        max_body_bytes: int,
        services: GatewayServices | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.op = op
        self._metrics = metrics
        self._router = router
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._max_body = max_body_bytes
        services = services or GatewayServices()
        self._services = services
        self._keys = services.keys
        self._prompts = services.prompts if op.mode != "embedding" else None
        self._cache = services.cache
        self._spend = services.spend
        # None unless some route has a guard policy or keys may name one (access control on):
        # then the hot path checks nothing else.
        guards = services.guards
        keyed = self._keys is not None
        self._guards = guards if guards is not None and (guards.guards_routes or keyed) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # Time-ordered (nanoseconds, then 48 random bits): inserts land at the end of the
        # primary-key index instead of all over it, and it is cheaper than uuid4().
        record = self._recorder.new_record(
            f"{time.time_ns():x}{os.urandom(6).hex()}", datetime.now(UTC), self.op.endpoint
        )
        call = _Call(record, DispatchTrace(), [(b"x-request-id", record.id.encode())])
        watcher: DisconnectWatcher | None = None
        raw = b""
        try:
            tags = request_tags(scope)
            if tags is not None:
                record.extra["tags"] = tags
            principal: Principal | None = None
            if self._keys is not None:
                principal = await self._keys.authenticate_async(client_key(scope))
                record.key_id = principal.key_id
                record.team_id = principal.team_id
            raw = await read_body(scope, receive, self._max_body)
            body = parse_json_object(raw)
            record.requested_model = str(body.get("model") or "")
            if self._prompts is not None and names_prompt(body):
                source = self._prompts if principal is None else _TeamPrompts(self._prompts, principal)
                expansion = expand_prompt_request(source, body, mode=self.op.mode)  # type: ignore[arg-type]
                if expansion is not None:
                    body = expansion.body
                    record.prompt_name = expansion.prompt_name
                    record.prompt_version = expansion.prompt_version
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
            if principal is not None and not principal.allows_model(route.name):
                raise PermissionDenied(f"This key may not call the model '{route.name}'.", param="model")
            user = body.get("user")
            if isinstance(user, str) and user:
                record.end_user = user
            record.stream = bool(body.get("stream"))
            if self._spend is not None:
                call.admission = await self._spend.admit(
                    principal,
                    route,
                    body,
                    len(raw),
                    record.end_user,
                    record.created_at,
                    generates=self.op.mode != "embedding",
                )
                call.headers.extend(call.admission.headers)
            if self._guards is not None:
                policy = self._guards.for_call(route.name, principal)
                if policy is not None:
                    body = await self._guard_request(policy, body, call)
            cache_settings = route.settings.cache
            if self._cache is not None and cache_settings is not None and not wants_bypass(scope["headers"]):
                hit = await self._lookup(route, cache_settings, record, body)
                if hit is not None:
                    await self._answer_from_cache(hit, body, call, send)
                    return
                record.cache_status = "miss"
                call.cache_request = body
                call.cache_route = route
            if call.admission is not None and self._spend is not None:
                await self._spend.reserve(call.admission, record.id, route, record.created_at)
            if call.guard is not None:
                body = plant_request_canary(call.guard, body)
            watcher = DisconnectWatcher(receive, send)
            send = watcher.send
            if record.stream and self.op.open_stream is not None:
                await self._stream(route, body, call, started, send)
            else:
                await self._unary(route, body, call, send)
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
            record.error_type = getattr(exc, "kind", None) or (
                exc.code if isinstance(exc, GuardViolation) else exc.type
            )
            record.error_message = exc.message
            headers = call.headers
            if isinstance(exc, RateLimited) and exc.headers:
                headers = [*headers, *((k.encode(), v.encode()) for k, v in exc.headers.items())]
            await send_error(send, exc, headers)
        except Exception as exc:
            # A bug, not a client or upstream problem: log it, answer 500 if the
            # response has not started, and still record the request.
            log.exception("request %s failed", record.id)
            record.status = 500
            record.error_type = "internal_error"
            record.error_message = f"{type(exc).__name__}: {exc}"[:500]
            with contextlib.suppress(Exception):
                await send_error(send, KeelError("Internal error in the gateway."), call.headers)
        finally:
            if watcher is not None:
                watcher.stop()
            record.latency_ms = (time.perf_counter() - started) * 1000
            await self._settle(call)
            if (record.cost_nanos or record.cache_status is not None) and self._metrics is not None:
                self._metrics.observe_spend(record)
            await self._recorder.finish(record, raw if call.logged_request is None else call.logged_request)

    async def _guard_request(self, policy: Policy, body: JSONObject, call: _Call) -> JSONObject:
        """The input policy: the body to go on with (redacted when it redacts); a blocked
        request is refused here, before it is cached, reserved or sent."""
        assert self._guards is not None
        sent, guarded = await guard_input(self._guards, policy, body)
        call.guard = guarded
        call.record.guards = guarded.verdicts
        outcome = guarded.input
        if outcome.decision in ("redact", "block") and self._recorder.keeps_bodies:
            # The log never holds what the policy redacted (nor what a block found).
            call.logged_request = orjson.dumps(outcome.body)
        if outcome.blocked:
            raise outcome.error()
        return sent

    async def _lookup(
        self, route: Route, settings: RouteCacheSettings, record: RequestRecord, body: JSONObject
    ) -> CacheHit | None:
        assert self._cache is not None
        return await self._cache.lookup(
            route.name, settings, record.team_id, body, self._services.embedder(settings)
        )

    async def _guard_answer(
        self, guarded: GuardedCall, answer: JSONObject
    ) -> tuple[JSONObject, JSONObject, PolicyOutcome]:
        """A whole answer through the output policy (a method: the traced endpoint spans it)."""
        assert self._guards is not None
        return await guard_answer(self._guards, guarded, answer)

    def _price(self, call: _Call) -> None:
        """Set the call's cost from its usage (held to what the request allowed upstream
        when the usage was counted or estimated)."""
        call.priced = True
        record = call.record
        state = call.trace.state
        usage = call.usage
        if usage is None or self._spend is None:
            return
        if call.admission is not None:
            bounded = self._spend.bounded_usage(call.admission, usage)
            if bounded is not usage:
                usage = call.usage = bounded
                self._recorder.note_usage(record, usage)
        if state is not None:
            record.cost_nanos = self._spend.cost(state.deployment.model, usage, record.created_at)

    async def _settle(self, call: _Call) -> None:
        """Charge what the call used (nothing for a hit or a failure before upstream
        answered), release the rest of the reservation, and fill the cache."""
        record = call.record
        if not call.priced:
            self._price(call)
        usage = call.usage
        if call.admission is not None and self._spend is not None:
            tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
            try:
                await self._spend.settle(call.admission, record.cost_nanos, tokens)
            except Exception:
                log.exception("request %s: settling its spend failed", record.id)
        request, route = call.cache_request, call.cache_route
        if (
            call.cache_body is not None
            and request is not None
            and route is not None
            and self._cache is not None
        ):
            cache_settings = route.settings.cache
            if cache_settings is not None and usage is not None:
                entry = CachedResponse(call.cache_body, usage, record.cost_nanos)
                await self._cache.store(
                    route.name,
                    cache_settings,
                    record.team_id,
                    request,
                    entry,
                    self._services.embedder(cache_settings),
                )

    async def _answer_from_cache(self, hit: CacheHit, body: JSONObject, call: _Call, send: Send) -> None:
        record = call.record
        record.cache_status = "hit" if hit.kind == "exact" else "semantic_hit"
        record.cost_saved_nanos = hit.response.cost_nanos
        record.cost_nanos = 0
        record.status = 200
        headers = [*call.headers, (b"x-keel-cache", record.cache_status.encode())]
        answer = logged = hit.response.body
        if call.guard is not None and call.guard.scans_output:
            # Cached answers hold placeholders, never this request's values: put them back.
            answer, logged, outcome = await self._guard_answer(call.guard, answer)
            if outcome.blocked:
                record.error_type = "guard_violation"
                record.error_message = outcome.error().message
        if record.stream and self.op.open_stream is not None:
            options = body.get("stream_options")
            wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            events = sse_from_response(answer, wants_usage)
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
            await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})
            if self._recorder.keeps_bodies:
                self._recorder.note_response(record, orjson.dumps(logged))
            return
        payload = orjson.dumps(answer)
        self._recorder.note_response(record, payload if logged is answer else orjson.dumps(logged))
        await send_json(send, 200, payload, headers)

    async def _unary(self, route: Route, body: JSONObject, call: _Call, send: Send) -> None:
        method = self.op.call
        record = call.record

        async def upstream(provider: Provider, deployment: Deployment) -> ProviderResponse:
            fn = getattr(provider, method)
            result: ProviderResponse = await fn(body, deployment)
            return result

        try:
            done = await self._dispatcher.call(route, upstream, call.trace)
        finally:
            self._recorder.note_trace(record, call.trace)
        answer = done.result.body
        payload = orjson.dumps(answer)
        record.status = 200
        usage = done.result.usage
        if usage is None and self.op.mode != "embedding":
            # Counted exactly as a stream of the same answer would be.
            usage = count_usage(
                done.state.deployment, done.state.provider, _input_text(body), response_text(answer)
            )
        call.usage = usage
        self._recorder.note_usage(record, usage)
        cacheable = call.cache_request is not None and is_cacheable(answer)
        # Embeddings have no text to scan or restore.
        if call.guard is not None and call.guard.scans_output and self.op.mode != "embedding":
            client, logged, outcome = await self._guard_answer(call.guard, answer)
            payload = orjson.dumps(client)
            if outcome.blocked:
                record.error_type = "guard_violation"
                record.error_message = outcome.error().message
                cacheable = False
            if self._recorder.keeps_bodies:
                self._recorder.note_response(record, orjson.dumps(logged))
            # Cached as logged: redacted, with placeholders that a hit puts back.
            answer = logged
        else:
            self._recorder.note_response(record, payload)
        self._price(call)
        headers = call.headers
        if record.cost_nanos is not None:
            # What this answer cost at the price in force: batch clients (evals) add it up.
            headers = [*headers, (b"x-keel-cost-usd", f"{record.cost_nanos / 1e9:.9f}".encode())]
        await send_json(send, 200, payload, headers)
        if cacheable:
            call.cache_body = answer

    async def _stream(self, route: Route, body: JSONObject, call: _Call, started: float, send: Send) -> None:
        method = self.op.open_stream
        assert method is not None
        record = call.record
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        async def open_stream(provider: Provider, deployment: Deployment) -> ChunkStream:
            fn = getattr(provider, method)
            stream: ChunkStream = await fn(body, deployment)
            return stream

        try:
            done = await self._dispatcher.call(route, open_stream, call.trace)
        finally:
            self._recorder.note_trace(record, call.trace)
        stream = done.result
        guarded = call.guard if call.guard is not None and call.guard.scans_output else None
        screen = None
        if guarded is not None:
            assert self._guards is not None
            screen = StreamFilter(self._guards, guarded, chat=self.op.mode == "chat")
        transcript = StreamTranscript()
        assembler = StreamAssembler() if call.cache_request is not None else None
        # From here the client has a 200: a failure becomes an error event, never a retry.
        record.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *call.headers]})
        pending: list[bytes] = []
        try:
            async for chunk in stream:
                data = chunk.data
                if assembler is not None:
                    assembler.add(data)
                if not data.get("choices") and data.get("usage") is not None and not client_wants_usage:
                    continue  # the usage-only chunk Keel asked for on its own behalf
                if record.ttft_ms is None:
                    record.ttft_ms = (time.perf_counter() - started) * 1000
                transcript.add(data)
                if screen is None:
                    pending.append(
                        b"data: " + (chunk.raw if chunk.raw is not None else orjson.dumps(data)) + b"\n\n"
                    )
                else:
                    screened = await screen.filter(data)
                    if screened is not None:
                        pending.append(b"data: " + orjson.dumps(screened) + b"\n\n")
                    if screen.blocked is not None:
                        break
                if pending and not stream.buffered():
                    # Chunks that arrived together leave together: one write, not many.
                    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
                    pending.clear()
            if screen is not None and screen.blocked is None:
                tail = await screen.close()
                if tail is not None:
                    pending.append(b"data: " + orjson.dumps(tail) + b"\n\n")
            pending.append(b"data: [DONE]\n\n")
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
            if screen is not None and screen.blocked is not None:
                record.error_type = "guard_violation"
                record.error_message = screen.blocked.error().message
            elif assembler is not None:
                answer = assembler.response()
                # Cached as logged: redacted, with placeholders that a hit puts back.
                if answer is not None and screen is not None:
                    answer = logged_answer(answer, screen.logged_texts())
                call.cache_body = answer
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
            call.usage = usage
            self._recorder.note_usage(record, usage)
            if screen is not None and guarded is not None:
                screen.count()
                guarded.verdicts["output"] = screen.verdicts()
            if self._recorder.keeps_bodies:
                summary = transcript.summary()
                if screen is not None:
                    summary = logged_stream_summary(summary, screen.logged_texts())
                self._recorder.note_response(record, orjson.dumps(summary))
