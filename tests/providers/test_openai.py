"""The ``openai`` provider against the fake upstream on a real port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from keel.core import ProviderError, ProviderSettings, Timeouts, UpstreamTimeout
from keel.providers import ChunkStream, Deployment, Provider, StreamChunk, build_provider
from keel.providers._http import retry_after_seconds
from keel.providers._openai import OpenAIProvider
from tests.fakes import FakeDeployment, Fault, embedding_for

API_KEY = "sk-test-very-secret-key"
USER = [{"role": "user", "content": "hello brave new world"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {}}}},
}


@pytest.fixture
async def provider(upstream: FakeDeployment, tmp_path: Path) -> AsyncIterator[OpenAIProvider]:
    settings = ProviderSettings(
        type="openai", base_url=upstream.base_url, api_key=API_KEY, headers={"X-Team": "search"}
    )
    built = build_provider("up", settings, tmp_path)
    assert isinstance(built, OpenAIProvider)
    assert isinstance(built, Provider)
    yield built
    await built.aclose()


def deployment(**timeouts: float) -> Deployment:
    return Deployment(
        name="up/fake-chat",
        provider="up",
        model="fake-chat",
        timeouts=Timeouts(**timeouts),
        params={"seed": 7},
    )


async def collect(stream: ChunkStream) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


def text_of(chunks: list[StreamChunk]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk.data["choices"]
    )


# -- whole answers -------------------------------------------------------------------------------


async def test_chat_sends_the_body_untouched_with_model_params_and_headers(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    body = {"model": "public-name", "messages": USER, "custom_field": {"a": [1, 2]}}

    response = await provider.chat(body, deployment())

    assert response.body["choices"][0]["message"]["content"] == "echo: hello brave new world"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 5)
    sent = upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "fake-chat", "messages": USER, "custom_field": {"a": [1, 2]}, "seed": 7}
    assert sent.api_key == API_KEY
    assert sent.headers["X-Team"] == "search"
    assert body["model"] == "public-name"  # the caller's body is not mutated


async def test_chat_returns_tool_calls(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}))

    response = await provider.chat({"model": "m", "messages": USER, "tools": [WEATHER_TOOL]}, deployment())

    choice = response.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert upstream.last_request.json["tools"] == [WEATHER_TOOL]


async def test_completion_and_embeddings(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    completion = await provider.completion({"model": "m", "prompt": "say hi", "max_tokens": 2}, deployment())
    assert completion.body["choices"][0]["text"] == "echo: say"
    assert completion.body["choices"][0]["finish_reason"] == "length"

    embedded = await provider.embeddings({"model": "m", "input": ["a b", "c"]}, deployment())
    assert [item["embedding"] for item in embedded.body["data"]] == [embedding_for("a b"), embedding_for("c")]
    assert embedded.usage is not None
    assert embedded.usage.input_tokens == 3
    assert [r.path for r in upstream.requests()] == ["/v1/completions", "/v1/embeddings"]


async def test_no_usage_in_body_gives_none(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(no_usage=True))
    response = await provider.chat({"model": "m", "messages": USER}, deployment())
    assert response.usage is None


# -- streams -------------------------------------------------------------------------------------


async def test_stream_forces_usage_upstream_and_meters_it(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    stream = await provider.open_chat_stream({"model": "m", "messages": USER, "stream": True}, deployment())
    chunks = await collect(stream)

    assert upstream.last_request.json["stream_options"] == {"include_usage": True}
    assert stream.client_wants_usage is False
    assert text_of(chunks) == "echo: hello brave new world"
    # The usage-only chunk comes through (the gateway decides whether to forward it).
    assert chunks[-1].data["choices"] == []
    assert stream.usage is not None
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (4, 5)
    # ``raw`` is the upstream JSON exactly as sent.
    assert all(chunk.raw is not None and orjson.loads(chunk.raw) == chunk.data for chunk in chunks)
    assert upstream.last_request.completed


async def test_stream_remembers_that_the_client_asked_for_usage(provider: OpenAIProvider) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    stream = await provider.open_chat_stream(body, deployment())
    await collect(stream)
    assert stream.client_wants_usage is True


async def test_stream_without_usage_leaves_usage_unset(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(no_usage=True))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, deployment())
    chunks = await collect(stream)
    assert text_of(chunks) == "echo: hello brave new world"
    assert stream.usage is None


async def test_stream_tool_call_deltas(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}, chunks=3))
    stream = await provider.open_chat_stream(
        {"model": "m", "messages": USER, "tools": [WEATHER_TOOL]}, deployment()
    )
    chunks = await collect(stream)

    calls = [
        call for c in chunks for choice in c.data["choices"] for call in choice["delta"].get("tool_calls", [])
    ]
    assert calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Paris"}


async def test_completion_stream(provider: OpenAIProvider) -> None:
    stream = await provider.open_completion_stream({"model": "m", "prompt": "one two"}, deployment())
    chunks = await collect(stream)
    assert "".join(choice["text"] for c in chunks for choice in c.data["choices"]) == "echo: one two"
    assert stream.usage is not None
    assert stream.usage.output_tokens == 3


async def test_finished_stream_waits_for_the_body_end_and_keeps_the_connection(tmp_path: Path) -> None:
    # [DONE] and the end of the chunked body arrive apart: the stream must read the end
    # so the connection goes back to the pool instead of being closed.
    async def late_eof(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n')
        await asyncio.sleep(0.2)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", late_eof)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    late = build_provider(
        "late", ProviderSettings(type="openai", base_url=f"http://127.0.0.1:{port}/v1"), tmp_path
    )
    try:
        for _ in range(2):
            chunks = await collect(
                await late.open_chat_stream({"model": "m", "messages": USER}, deployment())
            )
            assert text_of(chunks) == "hi"
        assert isinstance(late, OpenAIProvider)
        connector = late._client.session.connector
        assert connector is not None
        assert sum(len(conns) for conns in connector._conns.values()) == 1
    finally:
        await late.aclose()
        await runner.cleanup()


# -- failures ------------------------------------------------------------------------------------


async def test_429_is_retryable_with_retry_after(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(status=429, retry_after=2), Fault(status=429, retry_after=3))

    with pytest.raises(ProviderError) as caught:
        await provider.chat({"model": "m", "messages": USER}, deployment())
    assert (caught.value.upstream_status, caught.value.retryable) == (429, True)
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 2.0)

    # A stream refused at open time raises from open_chat_stream, before any chunk.
    with pytest.raises(ProviderError) as caught:
        await provider.open_chat_stream({"model": "m", "messages": USER}, deployment())
    assert (caught.value.upstream_status, caught.value.retry_after) == (429, 3.0)


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [(500, True, "server_error"), (503, True, "server_error"), (400, False, "bad_request"),
     (401, False, "auth_error"), (404, False, "not_found")],
)  # fmt: skip
async def test_status_classification(
    provider: OpenAIProvider, upstream: FakeDeployment, status: int, retryable: bool, kind: str
) -> None:
    upstream.script(Fault(status=status, message="upstream says no"))
    with pytest.raises(ProviderError) as caught:
        await provider.chat({"model": "m", "messages": USER}, deployment())
    assert (caught.value.upstream_status, caught.value.retryable, caught.value.kind) == (
        status,
        retryable,
        kind,
    )
    assert "upstream says no" in caught.value.message
    assert caught.value.body is not None
    assert "upstream says no" in caught.value.body


async def test_api_key_never_appears_in_errors(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(status=401, message=f"Incorrect API key provided: {API_KEY}"))
    with pytest.raises(ProviderError) as caught:
        await provider.chat({"model": "m", "messages": USER}, deployment())
    assert API_KEY not in caught.value.message
    assert caught.value.body is not None
    assert API_KEY not in caught.value.body


async def test_dropped_connection_is_a_retryable_connection_error(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(drop=True), Fault(drop=True))
    with pytest.raises(ProviderError) as caught:
        await provider.chat({"model": "m", "messages": USER}, deployment())
    assert (caught.value.kind, caught.value.retryable, caught.value.upstream_status) == (
        "connection_error",
        True,
        None,
    )
    with pytest.raises(ProviderError) as caught:
        await provider.open_chat_stream({"model": "m", "messages": USER}, deployment())
    assert caught.value.kind == "connection_error"


async def test_unreachable_upstream_is_a_retryable_connection_error(tmp_path: Path) -> None:
    closed = build_provider(
        "gone", ProviderSettings(type="openai", base_url="http://127.0.0.1:9/v1"), tmp_path
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await closed.chat({"model": "m", "messages": USER}, deployment())
        assert (caught.value.kind, caught.value.retryable) == ("connection_error", True)
    finally:
        await closed.aclose()


async def test_cut_stream_is_not_retryable(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(cut_after_chunks=2))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, deployment())
    received: list[StreamChunk] = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(ProviderError) as caught:
        await read_all()
    assert (caught.value.kind, caught.value.retryable) == ("stream_cut", False)
    assert text_of(received) == "echo: hello"


async def test_stalled_stream_times_out_after_stream_idle(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(stall_after_chunks=1, stall=3))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, deployment(stream_idle=0.3))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await collect(stream)
    assert time.monotonic() - started < 2


async def test_slow_answer_times_out_after_read(provider: OpenAIProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(delay=3), Fault(delay=3))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await provider.chat({"model": "m", "messages": USER}, deployment(read=0.3))
    assert caught.value.retryable
    with pytest.raises(UpstreamTimeout):
        await provider.open_chat_stream({"model": "m", "messages": USER}, deployment(read=0.3))
    assert time.monotonic() - started < 2.5


async def test_aclose_mid_stream_disconnects_upstream(
    provider: OpenAIProvider, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(chunks=50, chunk_delay=0.05))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, deployment())
    iterator = aiter(stream)
    await anext(iterator)
    await anext(iterator)

    await stream.aclose()

    await upstream.wait_for_async(lambda: upstream.last_request.cancelled, timeout=3)
    assert not upstream.last_request.completed


# -- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "7"}, 7.0), ({"retry-after": "1.5"}, 1.5), ({"retry-after-ms": "250"}, 0.25),
     ({"retry-after-ms": "250", "retry-after": "9"}, 0.25), ({"retry-after": "soon"}, None), ({}, None),
     ({"retry-after": "-3"}, 0.0)],
)  # fmt: skip
def test_retry_after_parsing(headers: dict[str, Any], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date() -> None:
    seconds = retry_after_seconds({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert seconds is not None
    assert 28 <= seconds <= 30
