"""ResponseCache: exact then semantic lookups, team scoping, what is (not) stored, and
failures that must never fail a request."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine

from keel.cache import (
    CachedResponse,
    MemoryCacheBackend,
    RedisCacheBackend,
    ResponseCache,
    StoreCacheBackend,
    build_cache,
    cache_key,
)
from keel.core import ConfigError, KeelSettings, RouteCacheSettings, Usage

EXACT = RouteCacheSettings()
SEMANTIC = RouteCacheSettings(semantic=True, similarity_threshold=0.9, embedding_model="emb")
SEMANTIC_ONLY = RouteCacheSettings(
    exact=False, semantic=True, similarity_threshold=0.9, embedding_model="emb"
)


def chat(question: str, **fields: object) -> dict[str, object]:
    return {"model": "alias", "messages": [{"role": "user", "content": question}], **fields}


def answer(text: str) -> CachedResponse:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return CachedResponse(body, Usage(10, 0, 5), 4200)


class FakeEmbeddings:
    """Hand-made vectors: questions about weather point one way, about cats another."""

    VECTORS = {
        "What is the weather?": [1.0, 0.0, 0.0],
        "How is the weather?": [0.95, 0.1, 0.0],  # cosine 0.994 with the first
        "Tell me about cats": [0.0, 1.0, 0.0],
        "Weather or cats?": [0.7, 0.7, 0.0],  # 0.707 with each: below 0.9
    }

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, text: str) -> Sequence[float]:
        self.calls.append(text)
        return self.VECTORS[text]


@pytest.fixture
def cache() -> ResponseCache:
    return ResponseCache(MemoryCacheBackend(100))


async def test_exact_hit_after_store_and_miss_before(cache: ResponseCache) -> None:
    body = chat("hi", temperature=0)
    assert await cache.lookup("r", EXACT, "team-a", body) is None
    assert await cache.store("r", EXACT, "team-a", body, answer("hello")) is True
    hit = await cache.lookup("r", EXACT, "team-a", {**chat("hi", temperature=0), "stream": True})
    assert hit is not None and hit.kind == "exact" and hit.similarity is None
    assert hit.response.body["choices"][0]["message"]["content"] == "hello"
    assert hit.response.cost_nanos == 4200
    assert await cache.lookup("r", EXACT, "team-a", chat("hi", temperature=1)) is None


async def test_teams_do_not_share_entries_unless_the_route_says_so(cache: ResponseCache) -> None:
    body = chat("hi")
    await cache.store("r", EXACT, "team-a", body, answer("for a"))
    assert await cache.lookup("r", EXACT, "team-b", body) is None
    assert await cache.lookup("r", EXACT, None, body) is None
    shared = RouteCacheSettings(shared=True)
    await cache.store("r", shared, "team-a", body, answer("for all"))
    hit = await cache.lookup("r", shared, "team-b", body)
    assert hit is not None and hit.response.body["choices"][0]["message"]["content"] == "for all"
    # A team named "shared" is still its own team.
    assert await cache.lookup("r", EXACT, "shared", body) is None


async def test_semantic_hit_above_threshold_and_miss_below(cache: ResponseCache) -> None:
    embed = FakeEmbeddings()
    await cache.store("r", SEMANTIC, "t", chat("What is the weather?"), answer("sunny"), embed)
    hit = await cache.lookup("r", SEMANTIC, "t", chat("How is the weather?"), embed)
    assert hit is not None and hit.kind == "semantic"
    assert hit.similarity == pytest.approx(0.994, abs=1e-3)
    assert hit.response.body["choices"][0]["message"]["content"] == "sunny"
    assert await cache.lookup("r", SEMANTIC, "t", chat("Weather or cats?"), embed) is None
    assert await cache.lookup("r", SEMANTIC, "t", chat("Tell me about cats"), embed) is None
    # Same text, other parameters or another team: another partition.
    assert await cache.lookup("r", SEMANTIC, "t", chat("How is the weather?", temperature=1), embed) is None
    assert await cache.lookup("r", SEMANTIC, "u", chat("How is the weather?"), embed) is None
    # Without an embedder (or on an exact-only route) only exact hits are possible.
    assert await cache.lookup("r", SEMANTIC, "t", chat("How is the weather?")) is None
    assert await cache.lookup("r", EXACT, "t", chat("How is the weather?"), embed) is None


async def test_exact_comes_first_and_a_stored_miss_is_embedded_once(cache: ResponseCache) -> None:
    embed = FakeEmbeddings()
    body = chat("What is the weather?")
    assert await cache.lookup("r", SEMANTIC, "t", body, embed) is None
    await cache.store("r", SEMANTIC, "t", body, answer("sunny"), embed)
    assert embed.calls == ["What is the weather?"]  # the lookup's embedding was reused
    hit = await cache.lookup("r", SEMANTIC, "t", body, embed)
    assert hit is not None and hit.kind == "exact"
    assert embed.calls == ["What is the weather?"]


async def test_semantic_only_route(cache: ResponseCache) -> None:
    embed = FakeEmbeddings()
    body = chat("What is the weather?")
    await cache.store("r", SEMANTIC_ONLY, "t", body, answer("sunny"), embed)
    hit = await cache.lookup("r", SEMANTIC_ONLY, "t", body, embed)
    assert hit is not None and hit.kind == "semantic" and hit.similarity == pytest.approx(1.0)


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "boom"}},
        {"object": "chat.completion", "choices": []},
        {"object": "chat.completion", "choices": [{"index": 0, "message": {}, "finish_reason": None}]},
        {"object": "list", "data": []},
    ],
)
async def test_errors_and_unfinished_answers_are_not_stored(
    cache: ResponseCache, body: dict[str, object]
) -> None:
    assert await cache.store("r", EXACT, "t", chat("x"), CachedResponse(body, Usage())) is False
    assert await cache.lookup("r", EXACT, "t", chat("x")) is None


async def test_embeddings_responses_are_cached_exactly(cache: ResponseCache) -> None:
    request = {"model": "emb", "input": "hello"}
    response = CachedResponse({"object": "list", "data": [{"embedding": [0.1], "index": 0}]}, Usage(1, 0, 0))
    assert await cache.store("emb", SEMANTIC, "t", request, response, FakeEmbeddings()) is True
    hit = await cache.lookup("emb", SEMANTIC, "t", request, FakeEmbeddings())
    assert hit is not None and hit.kind == "exact"


class BrokenBackend(MemoryCacheBackend):
    async def get(self, key: str) -> CachedResponse | None:
        raise ConnectionError("redis is down")

    async def put(self, *args: object, **kwargs: object) -> None:
        raise ConnectionError("redis is down")


async def test_failures_are_misses_never_errors(caplog: pytest.LogCaptureFixture) -> None:
    cache = ResponseCache(BrokenBackend())
    assert await cache.lookup("r", EXACT, "t", chat("x")) is None
    assert await cache.store("r", EXACT, "t", chat("x"), answer("y")) is False

    async def failing_embed(text: str) -> Sequence[float]:
        raise RuntimeError("embedding deployment down")

    healthy = ResponseCache(MemoryCacheBackend())
    assert await healthy.lookup("r", SEMANTIC_ONLY, "t", chat("x"), failing_embed) is None
    assert cache.errors == 2 and healthy.errors == 1
    assert "treated as a miss" in caplog.text


def test_route_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="embedding_model"):
        RouteCacheSettings(semantic=True)
    with pytest.raises(ValueError, match="exact or semantic"):
        RouteCacheSettings(exact=False)


def test_build_cache_picks_the_configured_backend(engine: Engine) -> None:
    from redis.asyncio import Redis

    def settings(backend: str) -> KeelSettings:
        return KeelSettings.model_validate(
            {"home": "/nonexistent", "cache": {"backend": backend, "max_entries": 7}}
        )

    memory = build_cache(settings("memory"))
    assert isinstance(memory.backend, MemoryCacheBackend) and memory.backend.max_entries == 7
    store = build_cache(settings("store"), engine=engine)
    assert isinstance(store.backend, StoreCacheBackend) and store.backend.engine is engine
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never connects here
    on_redis = build_cache(settings("redis"), redis=redis)
    assert isinstance(on_redis.backend, RedisCacheBackend) and on_redis.backend.prefix == "keel:cache:"
    with pytest.raises(ConfigError, match="engine"):
        build_cache(settings("store"))
    with pytest.raises(ConfigError, match="redis_url"):
        build_cache(settings("redis"))


async def test_a_miss_on_the_memory_backend_is_cheap(cache: ResponseCache) -> None:
    body = chat("What is the capital of France?", temperature=0, max_tokens=64)
    for i in range(100):
        await cache.store("r", EXACT, "t", chat(f"q{i}"), answer("a"))
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        await cache.lookup("r", EXACT, "t", body)
    per_lookup = (time.perf_counter() - started) / rounds
    assert per_lookup < 100e-6, f"{per_lookup * 1e6:.1f} µs per miss"  # ~10 µs here; slack for CI
    assert cache_key(body, "r", "team:t")  # the key the lookups computed
