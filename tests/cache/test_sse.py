"""Cached answers replayed as OpenAI streams, and streams rebuilt into answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from keel.cache import StreamAssembler, sse_from_response

CHAT = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-test",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris is the capital of France.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}

TOOLS = {
    "id": "chatcmpl-tools",
    "object": "chat.completion",
    "created": 1700000001,
    "model": "gpt-test",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": '{"tz":"CET"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        },
        {
            "index": 1,
            "message": {"role": "assistant", "content": "I cannot tell."},
            "logprobs": {"content": [{"token": "I", "logprob": -0.1, "bytes": [73], "top_logprobs": []}]},
            "finish_reason": "stop",
        },
    ],
    "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50},
}

TEXT = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1700000002,
    "model": "gpt-test-instruct",
    "choices": [{"text": " a story", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def parse(events: list[bytes]) -> list[dict[str, Any]]:
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = []
    for event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        chunks.append(orjson.loads(event[6:-2]))
    return chunks


@pytest.mark.parametrize("body", [CHAT, TOOLS], ids=["content", "tool-calls"])
@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream_is_valid_and_rebuilds_the_answer(body: dict[str, Any], include_usage: bool) -> None:
    chunks = parse(sse_from_response(body, include_usage))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)  # the openai SDK's own type
        assert (chunk["id"], chunk["model"], chunk["created"]) == (body["id"], body["model"], body["created"])
        assert chunk["object"] == "chat.completion.chunk"
    first = chunks[0]["choices"][0]
    assert first["delta"]["role"] == "assistant" and first["finish_reason"] is None
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == body["usage"]
        assert all(chunk["usage"] is None for chunk in chunks[:-1])
    else:
        assert all("usage" not in chunk for chunk in chunks)

    # What a client reads: the deltas, concatenated.
    for choice in body["choices"]:
        deltas = [
            c["choices"][0]["delta"]
            for c in chunks
            if c["choices"] and c["choices"][0]["index"] == choice["index"]
        ]
        content = "".join(d.get("content") or "" for d in deltas)
        assert content == (choice["message"]["content"] or "")
        finishes = [
            c["choices"][0]["finish_reason"]
            for c in chunks
            if c["choices"] and c["choices"][0]["index"] == choice["index"]
        ]
        assert finishes[-1] == choice["finish_reason"] and finishes[:-1] == [None] * (len(finishes) - 1)

    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    rebuilt = assembler.response()
    assert rebuilt is not None
    expected = body if include_usage else {k: v for k, v in body.items() if k != "usage"}
    assert rebuilt == expected
    ChatCompletion.model_validate(rebuilt)


def test_text_completion_stream_round_trips() -> None:
    chunks = parse(sse_from_response(TEXT, include_usage=True))
    for chunk in chunks:
        Completion.model_validate(chunk)
        assert chunk["object"] == "text_completion"
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == " a story"
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.response() == TEXT


def test_assembler_merges_split_tool_call_deltas_as_openai_sends_them() -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    deltas: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ],
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]},
    ]
    assembler = StreamAssembler()
    for delta in deltas:
        assembler.add({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    assert assembler.response() is None  # not finished yet: not cacheable
    assembler.add({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    response = assembler.response()
    assert response is not None
    message = response["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    ]


def test_a_failed_stream_is_not_cacheable() -> None:
    assembler = StreamAssembler()
    for chunk in parse(sse_from_response(CHAT, include_usage=False)):
        assembler.add(chunk)
    assembler.add({"error": {"message": "upstream cut the stream"}})
    assert assembler.response() is None
    assert StreamAssembler().response() is None


def test_embeddings_cannot_be_streamed() -> None:
    with pytest.raises(ValueError, match="list"):
        sse_from_response({"object": "list", "data": [{"embedding": [0.1]}]}, include_usage=False)


def test_the_openai_client_reads_the_replayed_stream() -> None:
    import httpx
    import openai

    def handler(request: httpx.Request) -> httpx.Response:
        body = b"".join(sse_from_response(TOOLS, include_usage=True))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(
        api_key="k",
        base_url="http://cache.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == 1)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    assert text == "I cannot tell."
    assert [(tc.id, tc.function.name, tc.function.arguments) for tc in calls if tc.function] == [
        ("call_1", "weather", '{"city":"Paris"}'),
        ("call_2", "time", '{"tz":"CET"}'),
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 50
