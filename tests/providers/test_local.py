"""The local provider against real models: the trained demo model, an untrained one
that never stops talking, and all-minilm-l6-v2 for embeddings."""

from __future__ import annotations

import array
import asyncio
import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.core import InvalidRequest, MissingPrerequisite, ProviderSettings
from keel.providers import Deployment, Provider, StreamChunk, build_provider
from keel.providers._demo_model import demo_examples
from keel.providers._local import LocalChunkStream, LocalProvider
from keel.providers._local_engines import TextWatcher

# Building the full demo model (session fixture) can take minutes on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEMO = Deployment(name="local/keel-demo", provider="local", model="keel-demo")
MINILM = Deployment(name="local/minilm", provider="local", model="all-minilm-l6-v2")


@pytest.fixture(scope="module")
def local(demo_home: Path) -> Iterator[LocalProvider]:
    # Module-wide: models load once. The provider is not tied to an event loop, so
    # each test's own loop can use it.
    built = build_provider("local", ProviderSettings(type="local", device="cpu"), demo_home)
    assert isinstance(built, LocalProvider)
    yield built
    asyncio.run(built.aclose())


@pytest.fixture(scope="module")
def demo_tokenizer(demo_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir, local_files_only=True)


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


async def _collect(stream: LocalChunkStream) -> list[dict[str, Any]]:
    chunks: list[StreamChunk] = [chunk async for chunk in stream]
    return [c.data for c in chunks]


def test_registered_and_implements_the_protocol(local: LocalProvider) -> None:
    assert isinstance(local, Provider)
    assert local.name == "local"


async def test_chat_answers_with_openai_shape_and_exact_usage(
    local: LocalProvider, demo_tokenizer: Any
) -> None:
    example = demo_examples()[5]  # "How do I start Keel?"
    messages = [{"role": "user", "content": example.question}]
    response = await local.chat({"model": "keel-demo", "messages": messages}, DEMO)
    body = response.body
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "keel-demo"
    [choice] = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": example.answer}
    assert choice["finish_reason"] == "stop"
    answer_tokens = len(demo_tokenizer(example.answer, add_special_tokens=False)["input_ids"])
    assert body["usage"] == {
        "prompt_tokens": _prompt_tokens(demo_tokenizer, messages),
        "completion_tokens": answer_tokens + 1,  # and the end-of-turn token
        "total_tokens": _prompt_tokens(demo_tokenizer, messages) + answer_tokens + 1,
    }
    assert response.usage is not None
    assert response.usage.source == "reported"
    assert response.usage.output_tokens == answer_tokens + 1


async def test_stream_matches_the_whole_answer(local: LocalProvider) -> None:
    body = {"model": "keel-demo", "messages": [{"role": "user", "content": "What is a virtual key?"}]}
    whole = await local.chat(body, DEMO)
    stream = await local.open_chat_stream({**body, "stream": True}, DEMO)
    chunks = await _collect(stream)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole.body["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole.body["usage"]
    assert stream.usage == whole.usage


async def test_system_message_and_turns_are_formatted(local: LocalProvider, demo_tokenizer: Any) -> None:
    messages = [
        {"role": "developer", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is Keel?"},
        {"role": "assistant", "content": demo_examples()[0].answer},
        {"role": "user", "content": [{"type": "text", "text": "What port does Keel use?"}]},
    ]
    response = await local.chat({"model": "keel-demo", "messages": messages}, DEMO)
    plain = [{**m, "role": "system"} if m["role"] == "developer" else m for m in messages]
    plain[-1] = {"role": "user", "content": "What port does Keel use?"}
    assert response.body["usage"]["prompt_tokens"] == _prompt_tokens(demo_tokenizer, plain)
    assert "4000" in response.body["choices"][0]["message"]["content"]


async def test_max_tokens_and_stop_strings(local: LocalProvider) -> None:
    question = {"model": "keel-demo", "messages": [{"role": "user", "content": "What is Keel?"}]}
    short = await local.chat({**question, "max_tokens": 3}, DEMO)
    assert short.body["choices"][0]["finish_reason"] == "length"
    assert short.body["usage"]["completion_tokens"] == 3

    stopped = await local.chat({**question, "stop": ["Python"]}, DEMO)
    assert stopped.body["choices"][0]["message"]["content"] == "Keel is a self-hosted LLMOps platform in one "
    assert stopped.body["choices"][0]["finish_reason"] == "stop"
    stream = await local.open_chat_stream({**question, "stop": "Python"}, DEMO)
    chunks = await _collect(stream)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Keel is a self-hosted LLMOps platform in one "


async def test_sampling_with_a_seed_repeats_and_n_gives_choices(local: LocalProvider) -> None:
    body = {"model": "keel-demo", "prompt": "Keel", "max_tokens": 12, "temperature": 1.5, "n": 3, "seed": 11}
    first = await local.completion(body, DEMO)
    again = await local.completion(body, DEMO)
    assert first.body["object"] == "text_completion"
    assert [c["index"] for c in first.body["choices"]] == [0, 1, 2]
    assert [c["text"] for c in first.body["choices"]] == [c["text"] for c in again.body["choices"]]
    assert len({c["text"] for c in first.body["choices"]}) > 1
    assert first.body["usage"]["prompt_tokens"] == local.count_tokens(DEMO, "Keel")
    generated = first.body["usage"]["completion_tokens"]
    assert 3 <= generated <= 36


async def test_completion_stream(local: LocalProvider) -> None:
    # No chat template for completions: this prompt spells the demo model's own format.
    prompt = "<|bos|><|user|>What is Keel?<|end|><|assistant|>"
    stream = await local.open_completion_stream(
        {"model": "keel-demo", "prompt": prompt, "max_tokens": 5}, DEMO
    )
    chunks = await _collect(stream)
    assert all(c["object"] == "text_completion" for c in chunks)
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert len(text) > 5
    assert demo_examples()[0].answer.startswith(text)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 5


async def test_requests_queue_behind_each_other(local: LocalProvider) -> None:
    questions = [e.question for e in demo_examples()[:4]]
    results = await asyncio.gather(
        *(
            local.chat({"model": "keel-demo", "messages": [{"role": "user", "content": q}]}, DEMO)
            for q in questions
        )
    )
    answers = [r.body["choices"][0]["message"]["content"] for r in results]
    assert answers == [e.answer for e in demo_examples()[:4]]


async def test_closing_a_stream_stops_generation(local: LocalProvider, untrained_model_dir: Path) -> None:
    babbler = Deployment(name="babbler", provider="local", model=str(untrained_model_dir))
    body = {"model": "babbler", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400}
    stream = await local.open_chat_stream(body, babbler)
    received = 0
    async for chunk in stream:
        if chunk.data["choices"] and chunk.data["choices"][0]["delta"].get("content"):
            received += 1
            if received == 2:
                break
    await stream.aclose()
    assert stream.finished
    # The generation thread reports what it did before stopping: far from 400 tokens.
    rest = await _collect(stream)
    assert rest[-1]["usage"]["completion_tokens"] < 100
    assert "length" not in [c["choices"][0]["finish_reason"] for c in rest if c["choices"]]


async def test_incremental_decoding_never_splits_a_character(demo_tokenizer: Any) -> None:
    import threading

    import torch

    text = "Café, naïve 日本語 ✓ — done"
    ids = demo_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text) // 2  # multi-byte characters span several byte tokens
    pieces: list[str] = []
    watcher = TextWatcher(demo_tokenizer, 0, (), threading.Event(), pieces.append)
    for end in range(1, len(ids) + 1):
        assert not watcher.should_stop(torch.tensor([ids[:end]]))
    watcher.finish()
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


async def test_bad_requests(local: LocalProvider, tmp_path: Path) -> None:
    image = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    with pytest.raises(InvalidRequest):
        await local.chat({"model": "keel-demo", "messages": [{"role": "user", "content": image}]}, DEMO)
    with pytest.raises(InvalidRequest) as too_long:
        await local.chat(
            {"model": "keel-demo", "messages": [{"role": "user", "content": "Keel " * 2000}]}, DEMO
        )
    assert too_long.value.code == "context_length_exceeded"
    missing = Deployment(name="m", provider="local", model=str(tmp_path / "nothing-here"))
    with pytest.raises(MissingPrerequisite):
        await local.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, missing)
    assert local.count_tokens(missing, "hello") is None


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_embeddings_are_normalised_384_and_meaningful(local: LocalProvider) -> None:
    sentences = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    response = await local.embeddings({"model": "m", "input": sentences}, MINILM)
    body = response.body
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    vectors = [d["embedding"] for d in body["data"]]
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(math.sqrt(_cosine(v, v)), 1.0, rel_tol=1e-5) for v in vectors)
    food_bread, food_girl = _cosine(vectors[0], vectors[1]), _cosine(vectors[0], vectors[2])
    # sentence-transformers' documented scores for this model: 0.7553 and -0.1050.
    assert food_bread == pytest.approx(0.7553, abs=2e-3)
    assert food_girl == pytest.approx(-0.1050, abs=2e-3)
    # [CLS] + words + [SEP], counted by the model's tokenizer.
    assert response.usage is not None
    assert body["usage"]["prompt_tokens"] == response.usage.input_tokens
    assert local.count_tokens(MINILM, sentences[0]) == 6
    assert body["usage"]["prompt_tokens"] > 3 * 6


async def test_embeddings_base64_and_dimensions(local: LocalProvider) -> None:
    floats = await local.embeddings({"model": "m", "input": "hello"}, MINILM)
    encoded = await local.embeddings({"model": "m", "input": "hello", "encoding_format": "base64"}, MINILM)
    decoded = array.array("f", base64.b64decode(encoded.body["data"][0]["embedding"]))
    assert list(decoded) == pytest.approx(floats.body["data"][0]["embedding"], abs=1e-7)
    same = await local.embeddings({"model": "m", "input": "hello", "dimensions": 384}, MINILM)
    assert len(same.body["data"][0]["embedding"]) == 384
    with pytest.raises(InvalidRequest) as wrong:
        await local.embeddings({"model": "m", "input": "hello", "dimensions": 128}, MINILM)
    assert wrong.value.param == "dimensions"
    with pytest.raises(InvalidRequest):
        await local.embeddings({"model": "m", "input": [[1, 2, 3]]}, MINILM)
