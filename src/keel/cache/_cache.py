"""The response cache the gateway asks: exact first, then semantic, per route settings.

A cache must never make a request fail: a backend or embedding error counts as a miss
(logged, counted in ``errors``), and a store that fails is dropped the same way.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from redis.asyncio import Redis
from sqlalchemy import Engine

from keel.cache._backend import CacheBackend
from keel.cache._entry import CachedResponse, CacheHit, is_cacheable
from keel.cache._key import cache_key, semantic_partition, semantic_text
from keel.cache._memory import MemoryCacheBackend
from keel.cache._redis import RedisCacheBackend
from keel.cache._store import StoreCacheBackend
from keel.cache._vectors import Vector, unit_vector
from keel.core import ConfigError, ConfigProblem, JSONObject, KeelSettings, RouteCacheSettings

logger = logging.getLogger("keel.cache")

Embed = Callable[[str], Awaitable[Sequence[float]]]

# Embeddings of recent lookups, so that storing the answer after a miss does not embed
# the same text a second time.
_EMBEDDING_MEMO = 1024


def cache_scope(settings: RouteCacheSettings, team: str | None) -> str:
    """Where a team's entries live: its own space, or the route's shared one."""
    return "shared" if settings.shared else f"team:{team or ''}"


class ResponseCache:
    """One per process. ``scope`` arguments are the caller's team id; entries of one team
    are never served to another unless the route's cache is ``shared``."""

    def __init__(self, backend: CacheBackend) -> None:
        self.backend = backend
        self.errors = 0  # lookups and stores that failed (and were treated as misses)
        self._embeddings: OrderedDict[tuple[str, bytes], Vector] = OrderedDict()

    async def lookup(
        self,
        route: str,
        settings: RouteCacheSettings,
        scope: str | None,
        body: JSONObject,
        embed: Embed | None = None,
    ) -> CacheHit | None:
        """A cached answer to ``body`` on ``route``, or None. The semantic cache is asked
        only when the route enables it and ``embed`` is given."""
        space = cache_scope(settings, scope)
        try:
            if settings.exact:
                entry = await self.backend.get(cache_key(body, route, space))
                if entry is not None:
                    return CacheHit(entry, "exact")
            if settings.semantic and embed is not None:
                text = semantic_text(body)
                if text is None:
                    return None
                vector = await self._embedding(route, settings, text, embed)
                if vector is None:
                    return None
                partition = semantic_partition(body, route, space)
                found = await self.backend.nearest(partition, vector, settings.similarity_threshold)
                if found is not None:
                    return CacheHit(found[0], "semantic", found[1])
        except Exception:
            self.errors += 1
            logger.warning(
                "response cache lookup failed on route %s; treated as a miss", route, exc_info=True
            )
        return None

    async def store(
        self,
        route: str,
        settings: RouteCacheSettings,
        scope: str | None,
        body: JSONObject,
        response: CachedResponse,
        embed: Embed | None = None,
    ) -> bool:
        """Keep ``response`` as the answer to ``body``; False when it is not cacheable
        (an error, an unfinished choice) or storing failed."""
        if not (settings.exact or settings.semantic) or not is_cacheable(response.body):
            return False
        space = cache_scope(settings, scope)
        try:
            key = cache_key(body, route, space)
            partition: str | None = None
            vector: Vector | None = None
            if settings.semantic:
                text = semantic_text(body)
                if text is not None:
                    vector = self._remembered(route, settings, text)
                    if vector is None and embed is not None:
                        vector = await self._embedding(route, settings, text, embed)
                    if vector is not None:
                        partition = semantic_partition(body, route, space)
            await self.backend.put(key, response, settings.ttl, partition, vector)
        except Exception:
            self.errors += 1
            logger.warning("response cache store failed on route %s", route, exc_info=True)
            return False
        return True

    async def aclose(self) -> None:
        await self.backend.aclose()

    def _memo_key(self, route: str, settings: RouteCacheSettings, text: str) -> tuple[str, bytes]:
        return (settings.embedding_model or route, hashlib.sha256(text.encode()).digest())

    def _remembered(self, route: str, settings: RouteCacheSettings, text: str) -> Vector | None:
        return self._embeddings.get(self._memo_key(route, settings, text))

    async def _embedding(
        self, route: str, settings: RouteCacheSettings, text: str, embed: Embed
    ) -> Vector | None:
        memo_key = self._memo_key(route, settings, text)
        vector = self._embeddings.get(memo_key)
        if vector is not None:
            self._embeddings.move_to_end(memo_key)
            return vector
        vector = unit_vector(await embed(text))
        if vector is not None:
            self._embeddings[memo_key] = vector
            if len(self._embeddings) > _EMBEDDING_MEMO:
                self._embeddings.popitem(last=False)
        return vector


_BYPASS_VALUES = frozenset({"bypass", "no-cache", "no-store", "off"})


def wants_bypass(headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the client asked not to be served from the cache: ``x-keel-cache: bypass``
    (or ``no-cache``), or ``Cache-Control: no-cache`` / ``no-store``. Takes a mapping of
    header names to values (any case) or an ASGI scope's raw ``headers`` list."""
    pairs: Iterable[tuple[str | bytes, str | bytes]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    for raw_name, raw_value in pairs:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        name = name.lower()
        if name not in ("x-keel-cache", "cache-control"):
            continue
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        directives = {part.strip().lower() for part in value.split(",")}
        if name == "x-keel-cache" and directives & _BYPASS_VALUES:
            return True
        if name == "cache-control" and directives & {"no-cache", "no-store"}:
            return True
    return False


def build_cache(
    settings: KeelSettings, engine: Engine | None = None, redis: Redis | None = None
) -> ResponseCache:
    """The process's cache, on the backend ``settings.cache.backend`` names."""
    config = settings.cache
    backend: CacheBackend
    if config.backend == "memory":
        backend = MemoryCacheBackend(config.max_entries)
    elif config.backend == "store":
        if engine is None:
            raise ConfigError([ConfigProblem("cache.backend", "'store' needs the store's engine")])
        backend = StoreCacheBackend(engine, config.max_entries, index_refresh=config.index_refresh)
    else:
        if redis is None:
            raise ConfigError(
                [ConfigProblem("cache.backend", "'redis' needs redis_url (KEEL_REDIS_URL) to be set")]
            )
        backend = RedisCacheBackend(
            redis, config.max_entries, prefix=config.redis_prefix, index_refresh=config.index_refresh
        )
    return ResponseCache(backend)
