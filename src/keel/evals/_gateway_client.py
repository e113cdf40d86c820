"""The harness's way to the models: an OpenAI-compatible gateway (Keel in this process,
or a remote Keel) over one pooled aiohttp session, so every eval call is metered, logged
and tagged with its run.

Concurrency adapts: a 429 halves the number of calls in flight (and everything waits
out the ``Retry-After``), each success adds back a little (additive increase,
multiplicative decrease), so a run settles just under the limit it meets instead of
hammering it. 5xx, timeouts and connection errors are retried with exponential backoff
and jitter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from keel.core import JSONObject, KeelError
from keel.evals._types import Output, ToolCall

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that no retry or other case can change: the run stops and says why.
_FATAL_STATUSES = frozenset({401, 403, 404})


class ModelUnreachable(KeelError):
    """A model cannot be called at all (unknown, not allowed, or the gateway is down)."""

    status = 502
    type = "model_unreachable"


class AdaptiveLimit:
    """At most ``limit`` calls in flight; ``limit`` moves between 1 and ``maximum``."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self._changed = asyncio.Condition()
        self._paused_until = 0.0

    async def acquire(self) -> None:
        async with self._changed:
            while self.in_flight >= int(self.limit):
                await self._changed.wait()
            self.in_flight += 1
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)

    async def release(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def succeeded(self) -> None:
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def throttled(self, retry_after: float) -> None:
        self.limit = max(1.0, self.limit / 2)
        self._paused_until = max(self._paused_until, time.monotonic() + retry_after)


class GatewayClient:
    """Calls ``base_url`` (``http://127.0.0.1:4000``; ``/v1`` is added) with ``api_key``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        concurrency: int = 8,
        retries: int = 3,
        timeout_s: float = 120.0,
        tags: Mapping[str, str] | None = None,
        backoff_s: float = 0.5,
    ) -> None:
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        self.limit = AdaptiveLimit(concurrency)
        self.retries = retries
        self.backoff_s = backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._tags = dict(tags or {})
        self._session: aiohttp.ClientSession | None = None
        self.throttled = 0
        self.retried = 0

    async def __aenter__(self) -> GatewayClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.limit.maximum + 4, force_close=False),
            timeout=self._timeout,
            json_serialize=lambda v: orjson.dumps(v).decode(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def chat(self, model: str, messages: list[JSONObject], **params: Any) -> Output:
        """One chat completion (the LLM judge's way in)."""
        return await self.complete({**params, "model": model, "messages": messages})

    async def complete(self, body: JSONObject, tags: Mapping[str, str] | None = None) -> Output:
        """POST ``body`` to /chat/completions; a failure that retries cannot fix comes
        back as an ``Output`` with ``error`` (or raises ``ModelUnreachable``)."""
        started = time.perf_counter()
        status, headers, data = await self._post("/chat/completions", body, tags)
        latency = (time.perf_counter() - started) * 1000
        if status != 200:
            return Output(
                "",
                latency_ms=latency,
                request_id=headers.get("x-request-id"),
                error=_error_text(status, data),
            )
        return _output(data, headers, latency)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        status, _, data = await self._post("/embeddings", {"model": model, "input": texts}, None)
        if status != 200:
            raise ModelUnreachable(f"embedding model {model!r}: {_error_text(status, data)}")
        items = sorted(data.get("data", []), key=lambda item: item.get("index", 0))
        return [list(map(float, item["embedding"])) for item in items]

    async def _post(
        self, path: str, body: JSONObject, tags: Mapping[str, str] | None
    ) -> tuple[int, Mapping[str, str], Any]:
        assert self._session is not None, "use 'async with GatewayClient(...)'"
        headers = self._headers
        merged = {**self._tags, **(tags or {})}
        if merged:
            headers = {**headers, "x-keel-tags": ";".join(f"{k}={v}" for k, v in merged.items())}
        payload = orjson.dumps(body)
        url = self.base_url + path
        attempt = 0
        while True:
            await self.limit.acquire()
            try:
                async with self._session.post(url, data=payload, headers=headers) as response:
                    raw = await response.read()
                    status = response.status
                    response_headers = {k.lower(): v for k, v in response.headers.items()}
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                status, response_headers, raw = 0, {}, str(exc).encode() or type(exc).__name__.encode()
            finally:
                await self.limit.release()
            data = _json(raw) if status else {"error": {"message": raw.decode(errors="replace")}}
            if status == 200:
                self.limit.succeeded()
                return status, response_headers, data
            if status in _FATAL_STATUSES:
                raise ModelUnreachable(_error_text(status, data), param=str(body.get("model")))
            retryable = status == 0 or status in _RETRY_STATUSES
            if not retryable or attempt >= self.retries:
                if status == 0:
                    raise ModelUnreachable(
                        f"cannot reach the gateway at {self.base_url}: {data['error']['message']}"
                    )
                return status, response_headers, data
            attempt += 1
            self.retried += 1
            delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
            retry_after = _retry_after(response_headers)
            if status == 429:
                self.throttled += 1
                self.limit.throttled(retry_after if retry_after is not None else delay)
            elif retry_after is not None:
                delay = retry_after
            if status != 429:
                await asyncio.sleep(delay)


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"error": {"message": raw[:200].decode(errors="replace")}}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return None


def _error_text(status: int, data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f"HTTP {status}: {message or data}"


def _output(data: Any, headers: Mapping[str, str], latency_ms: float) -> Output:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices:
        return Output("", latency_ms=latency_ms, error="the answer has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    calls: list[ToolCall] = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        raw = function.get("arguments") or ""
        try:
            arguments = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            arguments = None
        calls.append(ToolCall(str(function.get("name", "")), arguments, raw))
    usage = data.get("usage") or {}
    cost = headers.get("x-keel-cost-usd")
    return Output(
        text=content or "",
        tool_calls=tuple(calls),
        latency_ms=latency_ms,
        cost_usd=float(cost) if cost else 0.0,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        request_id=headers.get("x-request-id"),
        finish_reason=choice.get("finish_reason"),
    )
