"""Settings of the response cache (``cache:`` in keel.yaml; routes opt in)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheSettings(_Strict):
    # "memory" (per process), "sqlite"/"store" (the store's database), "redis" (needs redis_url).
    backend: Literal["memory", "store", "redis"] = "memory"
    max_entries: int = Field(10_000, ge=1)


class RouteCacheSettings(_Strict):
    """A route's opt-in to the response cache."""

    exact: bool = True
    ttl: float = Field(3600.0, gt=0)
    # Semantic cache: serve a cached answer to a request whose embedding is this similar.
    semantic: bool = False
    similarity_threshold: float = Field(0.95, gt=0, le=1)
    embedding_model: str | None = None
    # Share entries across teams (default: each team has its own cache).
    shared: bool = False
