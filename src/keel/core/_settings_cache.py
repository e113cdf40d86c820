"""Settings of the response cache (``cache:`` in keel.yaml; routes opt in)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheSettings(_Strict):
    # "memory" (per process), "store" (the store's database, shared by its processes),
    # "redis" (needs redis_url; shared by every replica).
    backend: Literal["memory", "store", "redis"] = "memory"
    # Entries per process (memory), rows (store), vectors per semantic partition (redis).
    max_entries: int = Field(10_000, ge=1)
    # Store and Redis: seconds a semantic partition read into memory is used before it is
    # read again (entries other processes added show up after at most this long).
    index_refresh: float = Field(5.0, gt=0)
    # Redis: the prefix of every key the cache writes.
    redis_prefix: str = Field("keel:cache:", min_length=1)


class RouteCacheSettings(_Strict):
    """A route's opt-in to the response cache."""

    exact: bool = True
    ttl: float = Field(3600.0, gt=0)
    # Semantic cache: serve a cached answer to a request whose embedding is this similar.
    semantic: bool = False
    similarity_threshold: float = Field(0.95, gt=0, le=1)
    # The embedding route (e.g. the built-in all-minilm-l6-v2) that embeds requests' text.
    embedding_model: str | None = None
    # Share entries across teams (default: each team has its own cache).
    shared: bool = False

    @model_validator(mode="after")
    def _semantic_needs_embeddings(self) -> RouteCacheSettings:
        if self.semantic and not self.embedding_model:
            raise ValueError("semantic: true needs embedding_model (the route that embeds the requests)")
        if not (self.exact or self.semantic):
            raise ValueError("enable exact or semantic (or remove cache:)")
        return self
