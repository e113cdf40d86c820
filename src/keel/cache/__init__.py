"""The response cache: exact (a normalised request hash) and semantic (embedding
similarity within requests that differ only in their text), per route opt-in, scoped to
a team unless the route shares it; in process, in the store's database, or in Redis.

The gateway asks ``ResponseCache.lookup`` before calling upstream (unless
``wants_bypass``), serves a hit as JSON or, for a stream, as ``sse_from_response``
events, and after a miss hands the complete answer to ``ResponseCache.store`` (a streamed
one rebuilt with ``StreamAssembler``).
"""

from keel.cache._backend import CacheBackend
from keel.cache._cache import Embed, ResponseCache, build_cache, cache_scope, wants_bypass
from keel.cache._entry import CachedResponse, CacheHit, is_cacheable
from keel.cache._key import IGNORED_FIELDS, cache_key, semantic_partition, semantic_text
from keel.cache._memory import MemoryCacheBackend
from keel.cache._redis import RedisCacheBackend
from keel.cache._sse import StreamAssembler, sse_from_response
from keel.cache._store import StoreCacheBackend
from keel.cache._table import response_cache

__all__ = [
    "IGNORED_FIELDS",
    "CacheBackend",
    "CacheHit",
    "CachedResponse",
    "Embed",
    "MemoryCacheBackend",
    "RedisCacheBackend",
    "ResponseCache",
    "StoreCacheBackend",
    "StreamAssembler",
    "build_cache",
    "cache_key",
    "cache_scope",
    "is_cacheable",
    "response_cache",
    "semantic_partition",
    "semantic_text",
    "sse_from_response",
    "wants_bypass",
]
