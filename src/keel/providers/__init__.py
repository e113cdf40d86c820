"""Upstream adapters behind one interface (``Provider``), registered with ``@provider``."""

# Importing the adapters registers them; none imports a heavy dependency at import time.
from keel.providers import _anthropic, _local, _openai  # noqa: F401
from keel.providers._base import (
    ChunkStream,
    Deployment,
    Provider,
    ProviderResponse,
    StreamChunk,
    with_model,
)
from keel.providers._demo_model import demo_examples, ensure_demo_model
from keel.providers._registry import build_provider, provider, providers

__all__ = [
    "ChunkStream",
    "Deployment",
    "Provider",
    "ProviderResponse",
    "StreamChunk",
    "build_provider",
    "demo_examples",
    "ensure_demo_model",
    "provider",
    "providers",
    "with_model",
]
