"""The one interface every upstream adapter implements.

A provider speaks OpenAI's wire format to the gateway whatever it speaks upstream: the
``anthropic`` adapter translates both ways, ``local`` answers from a model in process.

Errors: every method raises ``keel.core.ProviderError`` (or ``UpstreamTimeout``) with
``retryable`` set, so the gateway's retry loop never has to know which provider failed.
A stream is *opened* by ``open_chat_stream``/``open_completion_stream``: that call
returns only once upstream has accepted the request (status 200 and headers read), so a
refusal is raised there and can still be retried; once chunks flow, a failure surfaces
from the iterator and is never retried by the gateway (the client has bytes already).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from keel.core import JSONObject, Timeouts, Usage


@dataclass(frozen=True, slots=True)
class Deployment:
    """A concrete place to send a call: provider instance plus upstream model id."""

    name: str  # unique, e.g. "openai/gpt-4o-mini" or the configured name
    provider: str  # key in ``KeelSettings.providers``
    model: str  # the model id upstream knows
    weight: float = 1.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    params: JSONObject = field(default_factory=dict)
    # The route's tokenizer (a tiktoken encoding name, or a tokenizer.json file or its
    # directory) for counting usage a stream did not report; None picks by model name.
    tokenizer: str | None = None


@dataclass(slots=True)
class ProviderResponse:
    """A whole (non-streamed) answer in OpenAI format, with the usage Keel records."""

    body: JSONObject
    usage: Usage | None


@dataclass(slots=True)
class StreamChunk:
    """One streamed event: ``data`` is the parsed OpenAI chunk; ``raw`` is its JSON text
    when the provider can forward upstream bytes untouched (saves a re-serialisation)."""

    data: JSONObject
    raw: bytes | None = None


class ChunkStream(Protocol):
    """An open upstream stream. Iterate for chunks; ``aclose`` cancels upstream (called
    when the client goes away). ``usage`` is the provider-reported usage once seen."""

    usage: Usage | None

    def __aiter__(self) -> AsyncIterator[StreamChunk]: ...

    def buffered(self) -> bool:
        """Whether the next chunk (or the end) can be had without waiting on upstream.
        The gateway sends chunks that arrived together in one write."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Provider(Protocol):
    """An upstream adapter. One instance per configured provider; it owns its
    connection pool and is closed when the gateway stops."""

    name: str

    async def chat(self, body: JSONObject, deployment: Deployment) -> ProviderResponse: ...

    async def open_chat_stream(self, body: JSONObject, deployment: Deployment) -> ChunkStream: ...

    async def completion(self, body: JSONObject, deployment: Deployment) -> ProviderResponse: ...

    async def open_completion_stream(self, body: JSONObject, deployment: Deployment) -> ChunkStream: ...

    async def embeddings(self, body: JSONObject, deployment: Deployment) -> ProviderResponse: ...

    def count_tokens(self, deployment: Deployment, text: str) -> int | None:
        """Tokens in ``text`` by the deployment's tokenizer, or None when unknown."""
        ...

    async def aclose(self) -> None: ...


def with_model(body: JSONObject, deployment: Deployment) -> JSONObject:
    """The client's body as sent upstream: the deployment's model id and params set,
    every other field untouched."""
    out: dict[str, Any] = dict(body)
    out["model"] = deployment.model
    if deployment.params:
        for key, value in deployment.params.items():
            out.setdefault(key, value)
    return out
