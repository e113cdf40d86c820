"""A cached answer, and its bytes in the store and Redis backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import orjson

from keel.core import JSONObject, Usage


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A complete, non-streamed response (chat, completions or embeddings), with the
    usage and cost of the call that produced it: a hit saves ``cost_nanos``."""

    body: JSONObject
    usage: Usage
    cost_nanos: int | None = None
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class CacheHit:
    response: CachedResponse
    kind: Literal["exact", "semantic"]
    # Cosine similarity of the request to the cached one (semantic hits only).
    similarity: float | None = None


def is_cacheable(body: JSONObject) -> bool:
    """Only complete answers are cached: no error, every choice finished (or, for
    embeddings, data present)."""
    if "error" in body:
        return False
    choices = body.get("choices")
    if isinstance(choices, list):
        return bool(choices) and all(
            isinstance(choice, dict) and choice.get("finish_reason") for choice in choices
        )
    data = body.get("data")
    return isinstance(data, list) and bool(data)


def encode_entry(entry: CachedResponse) -> bytes:
    usage = entry.usage
    return orjson.dumps(
        {
            "body": entry.body,
            "usage": [usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.source],
            "cost_nanos": entry.cost_nanos,
            "created_at": entry.created_at.timestamp(),
        }
    )


def decode_entry(data: bytes | str) -> CachedResponse:
    raw = orjson.loads(data)
    input_tokens, cached_input_tokens, output_tokens, source = raw["usage"]
    return CachedResponse(
        body=raw["body"],
        usage=Usage(input_tokens, cached_input_tokens, output_tokens, source),
        cost_nanos=raw["cost_nanos"],
        created_at=datetime.fromtimestamp(raw["created_at"], UTC),
    )
