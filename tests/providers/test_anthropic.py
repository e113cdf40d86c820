"""The ``anthropic`` provider: OpenAI chat in, Messages API upstream, OpenAI chat out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keel.core import InvalidRequest, ProviderError, ProviderSettings, Timeouts, UpstreamTimeout, Usage
from keel.providers import ChunkStream, Deployment, StreamChunk, build_provider
from keel.providers._anthropic import (
    AnthropicChunkStream,
    AnthropicProvider,
    to_chat_completion,
    to_messages_request,
)
from tests.fakes import FakeDeployment, Fault

API_KEY = "ak-test-very-secret-key"
USER = [{"role": "user", "content": "hello brave new world"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
DEPLOYMENT = Deployment(name="an/claude", provider="an", model="claude-test")


@pytest.fixture
async def provider(upstream: FakeDeployment, tmp_path: Path) -> AsyncIterator[AnthropicProvider]:
    settings = ProviderSettings(type="anthropic", base_url=upstream.anthropic_base_url, api_key=API_KEY)
    built = build_provider("an", settings, tmp_path)
    assert isinstance(built, AnthropicProvider)
    yield built
    await built.aclose()


async def collect(stream: ChunkStream) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


def deltas(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    return [choice["delta"] for chunk in chunks for choice in chunk.data["choices"]]


# -- request translation -------------------------------------------------------------------------


PARIS, ROME = '{"city": "Paris"}', '{"city": "Rome"}'


def test_a_full_conversation_translates_to_the_messages_api() -> None:
    body = {
        "model": "public",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": PARIS}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ROME}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stop": "END",
        "temperature": 0.2,
        "max_completion_tokens": 99,
        "frequency_penalty": 0.5,
        "top_k": 5,
        "user": "u-1",
    }  # fmt: skip

    request = to_messages_request(
        body, Deployment(name="d", provider="an", model="claude-x", params={"top_k": 1})
    )

    assert request["model"] == "claude-x"
    assert request["system"] == [{"type": "text", "text": "be brief"}]
    assert request["max_tokens"] == 99
    assert request["stop_sequences"] == ["END"]
    assert request["temperature"] == 0.2
    assert request["top_k"] == 5  # the client's own value beats the deployment's param
    assert request["metadata"] == {"user_id": "u-1"}
    assert "frequency_penalty" not in request
    assert request["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert request["tool_choice"] == {"type": "tool", "name": "get_weather"}
    user, assistant, results = request["messages"]
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    # Both tool results and the next user text share one user turn, results first.
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"},
            {"type": "text", "text": "thanks"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [("auto", None, {"type": "auto"}), ("required", None, {"type": "any"}), ("none", None, {"type": "none"}),
     (None, False, {"type": "auto", "disable_parallel_tool_use": True}), (None, None, None)],
)  # fmt: skip
def test_tool_choice_mapping(choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"model": "m", "messages": USER, "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_messages_request(body, DEPLOYMENT).get("tool_choice") == expected


def test_defaults_and_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = {
        "model": "m",
        "messages": USER,
        "max_tokens": 10,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }
    request = to_messages_request(body, DEPLOYMENT)
    assert request["max_tokens"] == 10
    assert orjson.dumps(schema).decode() in request["system"][-1]["text"]
    assert to_messages_request({"model": "m", "messages": USER}, DEPLOYMENT)["max_tokens"] == 4096


def test_bad_requests_are_refused_before_any_call() -> None:
    with pytest.raises(InvalidRequest):
        to_messages_request({"model": "m", "messages": USER, "n": 2}, DEPLOYMENT)
    with pytest.raises(InvalidRequest):
        to_messages_request({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, DEPLOYMENT)
    bad_arguments = {
        "role": "assistant",
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}],
    }
    with pytest.raises(InvalidRequest):
        to_messages_request({"model": "m", "messages": [*USER, bad_arguments]}, DEPLOYMENT)


def test_answer_with_cache_usage_translates_to_openai() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5,
                  "output_tokens": 7},
    }  # fmt: skip
    usage = Usage(input_tokens=115, cached_input_tokens=100, output_tokens=7)
    completion = to_chat_completion(message, usage)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert completion["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 7,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


# -- against the fake upstream -------------------------------------------------------------------


async def test_chat_round_trip(provider: AnthropicProvider, upstream: FakeDeployment) -> None:
    body = {"model": "public", "messages": [{"role": "system", "content": "be nice"}, *USER], "max_tokens": 3}

    response = await provider.chat(body, DEPLOYMENT)

    choice = response.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: hello brave"}
    assert choice["finish_reason"] == "length"
    assert response.body["object"] == "chat.completion"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (6, 3)
    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["system"] == [{"type": "text", "text": "be nice"}]
    assert sent.json["model"] == "claude-test"


async def test_chat_tool_call(provider: AnthropicProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}))
    response = await provider.chat({"model": "m", "messages": USER, "tools": [WEATHER_TOOL]}, DEPLOYMENT)
    choice = response.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_stream_translates_events_to_openai_chunks(provider: AnthropicProvider) -> None:
    stream = await provider.open_chat_stream({"model": "m", "messages": USER, "stream": True}, DEPLOYMENT)
    chunks = await collect(stream)

    assert chunks[0].data["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c.data["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "echo: hello brave new world"
    assert chunks[-2].data["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1].data["choices"] == []
    assert chunks[-1].data["usage"]["completion_tokens"] == 5
    assert stream.usage is not None
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (4, 5)
    assert stream.client_wants_usage is False


async def test_stream_tool_call(provider: AnthropicProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}, chunks=4))
    body = {
        "model": "m",
        "messages": USER,
        "tools": [WEATHER_TOOL],
        "stream_options": {"include_usage": True},
    }
    stream = await provider.open_chat_stream(body, DEPLOYMENT)
    chunks = await collect(stream)

    calls = [call for d in deltas(chunks) for call in d.get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"].startswith("toolu_")
    assert {call["index"] for call in calls} == {0}
    assert orjson.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Paris"}
    assert chunks[-2].data["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.client_wants_usage is True


async def test_stream_without_usage(provider: AnthropicProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(no_usage=True))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, DEPLOYMENT)
    chunks = await collect(stream)
    assert stream.usage is None
    assert all(c.data["choices"] for c in chunks)


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [(529, True, "overloaded"), (429, True, "rate_limited"), (500, True, "server_error"),
     (400, False, "bad_request"), (401, False, "auth_error")],
)  # fmt: skip
async def test_errors(
    provider: AnthropicProvider, upstream: FakeDeployment, status: int, retryable: bool, kind: str
) -> None:
    upstream.script(Fault(status=status, retry_after=1, message=f"nope {API_KEY}"))
    with pytest.raises(ProviderError) as caught:
        await provider.open_chat_stream({"model": "m", "messages": USER}, DEPLOYMENT)
    error = caught.value
    assert (error.upstream_status, error.retryable, error.kind, error.retry_after) == (
        status,
        retryable,
        kind,
        1.0,
    )
    assert "nope" in error.message
    assert API_KEY not in error.message


async def test_cut_and_stalled_streams(provider: AnthropicProvider, upstream: FakeDeployment) -> None:
    upstream.script(Fault(cut_after_chunks=1), Fault(stall_after_chunks=1, stall=3))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, DEPLOYMENT)
    with pytest.raises(ProviderError) as caught:
        await collect(stream)
    assert (caught.value.kind, caught.value.retryable) == ("stream_cut", False)

    idle = Deployment(name="d", provider="an", model="claude-test", timeouts=Timeouts(stream_idle=0.3))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, idle)
    with pytest.raises(UpstreamTimeout):
        await collect(stream)


async def test_aclose_mid_stream_disconnects_upstream(
    provider: AnthropicProvider, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(chunks=50, chunk_delay=0.05))
    stream = await provider.open_chat_stream({"model": "m", "messages": USER}, DEPLOYMENT)
    iterator = aiter(stream)
    await anext(iterator)
    await anext(iterator)
    await stream.aclose()
    await upstream.wait_for_async(lambda: upstream.last_request.cancelled, timeout=3)


async def test_completion_and_embeddings_are_refused(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequest, match="anthropic does not support"):
        await provider.completion({"model": "m", "prompt": "x"}, DEPLOYMENT)
    with pytest.raises(InvalidRequest, match="anthropic does not support"):
        await provider.embeddings({"model": "m", "input": "x"}, DEPLOYMENT)


# -- a mid-stream error event --------------------------------------------------------------------


class _Body:
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def readany(self) -> bytes:
        return self._pieces.pop(0) if self._pieces else b""


class _Response:
    def __init__(self, pieces: list[bytes]) -> None:
        self.content = _Body(pieces)
        self.closed = False

    def close(self) -> None:
        self.closed = True


async def test_error_event_mid_stream_raises_and_closes(provider: AnthropicProvider) -> None:
    pieces = [
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":3}}}\n\n',
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    ]
    response = _Response(pieces)
    stream = AnthropicChunkStream(response, provider._client, DEPLOYMENT, False)  # type: ignore[arg-type]
    iterator = aiter(stream)
    assert (await anext(iterator)).data["choices"][0]["delta"]["role"] == "assistant"
    with pytest.raises(ProviderError, match="Overloaded") as caught:
        await anext(iterator)
    assert caught.value.kind == "overloaded"
    assert response.closed
