"""Turning texts into vectors for the embedding signals.

An ``Embedder`` is anything with ``async embed(texts) -> array (n, d)`` and ``aclose``.
``local_embedder`` runs all-minilm-l6-v2 in process through keel.providers' ``local``
provider (the same model the gateway serves as ``all-minilm-l6-v2``); ``hashing_embedder``
is a dependency-free bag-of-words hash, deterministic and fast, for tests and for
servers without the ``local`` extra. Each window compares vectors from one embedder:
switching embedders makes the reference incomparable until it has filled again.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from keel.core import DEMO_EMBEDDING_MODEL, ProviderSettings
from keel.monitor._types import FloatArray
from keel.providers import Deployment, build_provider


class Embedder(Protocol):
    name: str

    async def embed(self, texts: Sequence[str]) -> FloatArray: ...

    async def aclose(self) -> None: ...


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Feature hashing of lower-cased words and word pairs, L2-normalised."""

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions
        self.name = f"hashing-{dimensions}"

    def embed_now(self, texts: Sequence[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float64)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for token in words + [a + " " + b for a, b in itertools.pairwise(words)]:
                digest = zlib.crc32(token.encode())
                out[row, digest % self.dimensions] += 1.0 if digest & 0x80000000 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    async def embed(self, texts: Sequence[str]) -> FloatArray:
        return self.embed_now(texts)

    async def aclose(self) -> None:
        return None


class LocalEmbedder:
    """all-minilm-l6-v2 (384 dimensions) on this machine; loaded on first use."""

    def __init__(self, home: Path, model: str = DEMO_EMBEDDING_MODEL, device: str = "cpu") -> None:
        self.name = model
        self._provider = build_provider(
            "monitor-embeddings", ProviderSettings(type="local", device=device), home
        )
        self._deployment = Deployment(name=f"monitor/{model}", provider="monitor-embeddings", model=model)

    async def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.empty((0, 0))
        answer = await self._provider.embeddings({"input": list(texts)}, self._deployment)
        data = sorted(answer.body["data"], key=lambda item: item["index"])
        return np.asarray([item["embedding"] for item in data], dtype=np.float64)

    async def aclose(self) -> None:
        await self._provider.aclose()


def hashing_embedder(dimensions: int = 256) -> HashingEmbedder:
    return HashingEmbedder(dimensions)


def local_embedder(home: Path, model: str = DEMO_EMBEDDING_MODEL, device: str = "cpu") -> LocalEmbedder:
    return LocalEmbedder(home, model, device)
