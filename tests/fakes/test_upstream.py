"""The fake upstream speaks the providers' wire formats: proven with the official SDKs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.fakes import FakeDeployment, FakeUpstream, Fault, embedding_for
from tests.fakes.upstream import iter_sse_data

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello brave new world"}]
CLAUDE_USER: list[MessageParam] = [{"role": "user", "content": "hello brave new world"}]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {}}}},
}


@pytest.fixture
def oai(upstream: FakeDeployment) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(upstream: FakeDeployment) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=upstream.anthropic_base_url, api_key="ak-test", max_retries=0
    ) as client:
        yield client


def post_raw(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


# -- OpenAI chat ---------------------------------------------------------------------------------


def test_chat_echoes_counts_words_and_records_the_request(
    upstream: FakeDeployment, oai: openai.OpenAI
) -> None:
    completion = oai.chat.completions.create(
        model="gpt-x",
        messages=[{"role": "system", "content": "be nice"}, *USER],
        extra_body={"custom_field": {"a": 1}},
    )

    assert completion.choices[0].message.content == "echo: hello brave new world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-x"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 5)
    assert completion.usage.total_tokens == 11
    (received,) = upstream.requests()
    assert received.path == "/v1/chat/completions"
    assert received.method == "POST"
    assert received.headers["authorization"] == "Bearer sk-test"
    assert received.api_key == "sk-test"
    assert received.json["custom_field"] == {"a": 1}
    assert (received.status, received.completed, received.cancelled) == (200, True, False)


def test_chat_stream_with_usage_has_the_openai_chunk_sequence(
    upstream: FakeDeployment, oai: openai.OpenAI
) -> None:
    stream = oai.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: hello brave new world"
    )
    # One content chunk per word, then the finish chunk, then the usage-only chunk.
    assert len(chunks) == 1 + 5 + 1 + 1
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_chat_stream_raw_bytes_carry_null_usage_and_end_with_done(upstream: FakeDeployment) -> None:
    body = {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, text = post_raw(f"{upstream.base_url}/chat/completions", body)

    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert text.endswith("data: [DONE]\n\n")
    payloads = [json.loads(p) for p in iter_sse_data(text) if p != "[DONE]"]
    assert all("usage" in p for p in payloads)
    assert [p["usage"] is None for p in payloads].count(False) == 1


def test_chat_stream_without_include_usage_sends_no_usage(upstream: FakeDeployment) -> None:
    status, _, text = post_raw(
        f"{upstream.base_url}/chat/completions", {"model": "m", "messages": USER, "stream": True}
    )

    assert status == 200
    payloads = [json.loads(p) for p in iter_sse_data(text) if p != "[DONE]"]
    assert not any("usage" in p for p in payloads)
    assert all(p["choices"] for p in payloads)


def test_chat_n_choices_json_mode_and_max_tokens(upstream: FakeDeployment, oai: openai.OpenAI) -> None:

    several = oai.chat.completions.create(model="m", messages=USER, n=3)
    as_json = oai.chat.completions.create(model="m", messages=USER, response_format={"type": "json_object"})
    limited = oai.chat.completions.create(model="m", messages=USER, max_tokens=2)

    assert [c.index for c in several.choices] == [0, 1, 2]
    assert several.usage is not None
    assert several.usage.completion_tokens == 15
    assert json.loads(as_json.choices[0].message.content or "") == {"echo": "hello brave new world"}
    assert limited.choices[0].message.content == "echo: hello"
    assert limited.choices[0].finish_reason == "length"


def test_chat_tool_call_plain_and_streamed(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}
    upstream.set_default(Fault(tool_call=call))

    plain = oai.chat.completions.create(model="m", messages=USER, tools=[WEATHER_TOOL])
    chunks = list(oai.chat.completions.create(model="m", messages=USER, tools=[WEATHER_TOOL], stream=True))
    no_tools = oai.chat.completions.create(model="m", messages=USER)

    assert plain.choices[0].finish_reason == "tool_calls"
    (tool_call,) = plain.choices[0].message.tool_calls or []
    assert tool_call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(tool_call.function.arguments) == call["arguments"]  # type: ignore[union-attr]
    pieces = [
        c.choices[0].delta.tool_calls[0].function.arguments  # type: ignore[union-attr]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert len(pieces) > 2  # the name chunk plus the arguments in several pieces
    assert json.loads("".join(p or "" for p in pieces)) == call["arguments"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert no_tools.choices[0].message.content == "echo: hello brave new world"


async def test_async_sdk_works_against_the_threaded_server(upstream: FakeDeployment) -> None:
    upstream.script(Fault(reply="scripted answer"))

    async with openai.AsyncOpenAI(base_url=upstream.base_url, api_key="k", max_retries=0) as client:
        first = await client.chat.completions.create(model="m", messages=USER)
        second = await client.chat.completions.create(model="m", messages=USER)

    assert first.choices[0].message.content == "scripted answer"
    assert second.choices[0].message.content == "echo: hello brave new world"


# -- other OpenAI endpoints ----------------------------------------------------------------------


def test_legacy_completions_plain_and_streamed(upstream: FakeDeployment, oai: openai.OpenAI) -> None:

    plain = oai.completions.create(model="m", prompt="say hi")
    chunks = list(
        oai.completions.create(
            model="m", prompt="say hi", stream=True, stream_options={"include_usage": True}
        )
    )

    assert plain.choices[0].text == "echo: say hi"
    assert plain.usage is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (2, 3)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: say hi"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 5


def test_embeddings_are_deterministic_in_both_encodings(upstream: FakeDeployment, oai: openai.OpenAI) -> None:

    # The SDK asks for base64 unless told otherwise.
    batch = oai.embeddings.create(model="e", input=["alpha beta", "gamma"])
    floats = oai.embeddings.create(model="e", input="alpha beta", dimensions=16, encoding_format="float")

    assert upstream.requests()[0].json["encoding_format"] == "base64"
    assert [d.embedding for d in batch.data] == [embedding_for("alpha beta"), embedding_for("gamma")]
    assert batch.usage.prompt_tokens == 3
    assert floats.data[0].embedding == embedding_for("alpha beta", 16)
    assert floats.data[0].embedding[:8] != batch.data[0].embedding


def test_models_lists_defaults_and_overrides(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["fake-chat", "fake-embed"]

    upstream.set_models(["a", "b", "c"])

    assert [m.id for m in oai.models.list()] == ["a", "b", "c"]


def test_unknown_path_is_recorded_and_404s(upstream: FakeDeployment) -> None:
    status, _, text = post_raw(f"{upstream.base_url}/nope", {"x": 1})

    assert status == 404
    assert json.loads(text)["error"]["type"] == "invalid_request_error"
    assert upstream.last_request.path == "/v1/nope"


# -- Anthropic Messages API ----------------------------------------------------------------------


def test_messages_plain_text_and_tool_use(upstream: FakeDeployment, claude: anthropic.Anthropic) -> None:
    upstream.script(Fault(), Fault(tool_call={"name": "get_weather", "arguments": {"city": "Oslo"}}))
    tool: ToolParam = {"name": "get_weather", "input_schema": {"type": "object"}}

    text = claude.messages.create(model="claude-x", max_tokens=64, system="be brief", messages=CLAUDE_USER)
    used = claude.messages.create(model="claude-x", max_tokens=64, messages=CLAUDE_USER, tools=[tool])

    assert text.content[0].type == "text"
    assert text.content[0].text == "echo: hello brave new world"
    assert text.stop_reason == "end_turn"
    assert (text.usage.input_tokens, text.usage.output_tokens) == (6, 5)
    assert used.stop_reason == "tool_use"
    assert used.content[0].type == "tool_use"
    assert (used.content[0].name, used.content[0].input) == ("get_weather", {"city": "Oslo"})
    received = upstream.requests()[0]
    assert received.path == "/v1/messages"
    # This SDK version authenticates with a Bearer token; the HTTP API also takes x-api-key.
    assert received.api_key == "ak-test"
    assert received.headers["anthropic-version"]
    assert received.json["system"] == "be brief"


def test_messages_records_x_api_key_and_version_headers(upstream: FakeDeployment) -> None:
    status, _, text = post_raw(
        f"{upstream.base_url}/messages",
        {"model": "c", "max_tokens": 8, "messages": USER},
        headers={"x-api-key": "raw-key", "anthropic-version": "2023-06-01"},
    )

    assert status == 200
    assert json.loads(text)["content"] == [{"type": "text", "text": "echo: hello brave new world"}]
    received = upstream.last_request
    assert received.headers["X-Api-Key"] == "raw-key"
    assert received.api_key == "raw-key"
    assert received.headers["anthropic-version"] == "2023-06-01"


def test_messages_stream_has_the_anthropic_event_sequence(
    upstream: FakeDeployment, claude: anthropic.Anthropic
) -> None:

    with claude.messages.stream(model="c", max_tokens=64, messages=CLAUDE_USER) as stream:
        events = [event.type for event in stream if event.type != "text"]
        final = stream.get_final_message()
    status, _, raw = post_raw(
        f"{upstream.base_url}/messages", {"model": "c", "max_tokens": 64, "messages": USER, "stream": True}
    )

    assert events == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: hello brave new world"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (4, 5, "end_turn")
    assert status == 200
    names = [line[len("event: ") :] for line in raw.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]


def test_messages_stream_tool_use_streams_input_json(
    upstream: FakeDeployment, claude: anthropic.Anthropic
) -> None:
    upstream.set_default(Fault(tool_call={"name": "lookup", "arguments": {"q": "a b c"}}))
    tool: ToolParam = {"name": "lookup", "input_schema": {"type": "object"}}

    with claude.messages.stream(
        model="c",
        max_tokens=64,
        messages=CLAUDE_USER,
        tools=[tool],
    ) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()

    assert len(deltas) > 1
    assert all(d.delta.type == "input_json_delta" for d in deltas)
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"q": "a b c"}
    assert final.stop_reason == "tool_use"


def test_messages_errors_use_the_anthropic_format(
    upstream: FakeDeployment, claude: anthropic.Anthropic
) -> None:
    upstream.script(Fault(status=429, retry_after=3, message="slow down"))

    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="c", max_tokens=8, messages=CLAUDE_USER)

    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    assert caught.value.response.headers["retry-after"] == "3"


# -- faults --------------------------------------------------------------------------------------


def test_status_faults_follow_the_script_then_the_default(
    upstream: FakeDeployment, oai: openai.OpenAI
) -> None:
    upstream.script(Fault(status=429, retry_after=2), Fault(status=500))
    upstream.set_default(Fault(reply="default reply"))

    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m", messages=USER)
    after = oai.chat.completions.create(model="m", messages=USER)

    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.code == "rate_limit_exceeded"
    assert after.choices[0].message.content == "default reply"
    assert [r.status for r in upstream.requests()] == [429, 500, 200]

    upstream.reset()
    assert upstream.requests() == []
    assert oai.chat.completions.create(model="m", messages=USER).choices[0].message.content == (
        "echo: hello brave new world"
    )


def test_delay_holds_the_headers_back(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    upstream.script(Fault(delay=0.3), Fault(delay=1.0))

    started = time.monotonic()
    oai.chat.completions.create(model="m", messages=USER)
    elapsed = time.monotonic() - started
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.2).chat.completions.create(model="m", messages=USER)

    assert elapsed >= 0.3
    # The timed-out client hung up while the handler was still sleeping.
    upstream.wait_for(lambda: upstream.requests()[1].cancelled, timeout=2)


def test_drop_closes_the_connection_without_a_response(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    upstream.script(Fault(drop=True))

    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=USER)

    received = upstream.last_request
    assert (received.status, received.completed, received.cancelled) == (None, False, False)


def test_cut_stream_makes_the_sdk_raise_after_the_first_chunks(
    upstream: FakeDeployment, oai: openai.OpenAI
) -> None:
    upstream.script(Fault(cut_after_chunks=2))
    stream = oai.chat.completions.create(model="m", messages=USER, stream=True)

    contents: list[str] = []

    def consume() -> None:
        for chunk in stream:
            contents.append(chunk.choices[0].delta.content or "")

    with pytest.raises((openai.APIConnectionError, httpx2.TransportError)):
        consume()

    assert "".join(contents) == "echo: hello"
    received = upstream.last_request
    upstream.wait_for(lambda: not received.completed and received.status == 200)
    assert not received.cancelled


def test_chunks_and_chunk_delay_shape_the_stream(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    upstream.script(Fault(chunks=3, chunk_delay=0.15))

    started = time.monotonic()
    stream = oai.chat.completions.create(model="m", messages=USER, stream=True)
    contents = [c.choices[0].delta.content for c in stream if c.choices[0].delta.content]

    # Client-side gaps between chunks are unreliable on a loaded machine; the total is not.
    assert time.monotonic() - started >= 0.3
    # ``chunks`` slices the reply into equal character runs.
    assert contents == ["echo: hel", "lo brave ", "new world"]


async def test_stall_goes_silent_after_the_first_chunks(upstream: FakeDeployment) -> None:
    upstream.script(Fault(stall_after_chunks=1, stall=1.0))
    body = {"model": "m", "messages": USER, "stream": True}

    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{upstream.base_url}/chat/completions", json=body) as response,
    ):
        await response.content.readline()  # the role chunk
        await response.content.readline()
        first_content = json.loads((await response.content.readline())[len(b"data: ") :])
        first_at = time.monotonic() - started
        rest = (await response.content.read()).decode()

    assert first_content["choices"][0]["delta"]["content"] == "echo:"
    assert first_at < 0.8
    assert time.monotonic() - started >= 1.0
    assert rest.endswith("data: [DONE]\n\n")
    assert upstream.last_request.completed


def test_no_usage_suppresses_usage_even_when_asked(upstream: FakeDeployment, oai: openai.OpenAI) -> None:
    upstream.set_default(Fault(no_usage=True))

    plain = oai.chat.completions.create(model="m", messages=USER)
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    assert plain.usage is None
    assert all(c.usage is None and c.choices for c in chunks)


async def test_client_disconnect_mid_stream_is_recorded_as_cancelled(upstream: FakeDeployment) -> None:
    upstream.script(Fault(chunk_delay=0.2))
    body = {"model": "m", "messages": USER, "stream": True}

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{upstream.base_url}/chat/completions", json=body) as response,
    ):
        first = await response.content.readline()
        assert first.startswith(b"data: ")
        response.close()

    await upstream.wait_for_async(lambda: upstream.last_request.cancelled, timeout=3)
    assert not upstream.last_request.completed


def test_server_restarts_cleanly() -> None:
    fake = FakeUpstream()
    with fake:
        url = fake.url
        status, _, _ = post_raw(f"{fake.base_url_for('x')}/chat/completions", {"messages": USER})
    assert status == 200
    with pytest.raises(RuntimeError):
        _ = fake.url
    assert url.startswith("http://127.0.0.1:")
