"""``PromptClient``: prompt versions from Keel for applications that render them
themselves, with a local cache that outlives an outage of Keel.

How ``get`` answers, fastest first:

1. a cached version younger than ``ttl``: from memory;
2. an older cached version: from memory at once, while a background thread asks Keel
   for the current one (stale-while-revalidate); a failed refresh keeps the cached
   version and is tried again after ``retry_interval``;
3. nothing cached: Keel is asked now; if it cannot answer, the fallback version given
   for the prompt is served (and held like a cached one, so the next calls do not wait
   on an unreachable Keel again; Keel is asked in the background every
   ``retry_interval`` until it answers);
4. nothing cached and no fallback: the error (``PromptUnavailable`` when Keel could not
   be asked, else Keel's own: an unknown prompt or label, a refused key).

A version asked for by number never changes, so once fetched it is never asked for
again. Everything is thread-safe; the cache is per client, so make one per process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from keel.client._fallback import Fallback, fallback_key, fallback_version, version_from_json
from keel.client._http import PromptUnavailable, get_json
from keel.core import InvalidRequest, KeelError
from keel.prompts import PRODUCTION, PromptRef, PromptVersion, parse_prompt_ref

log = logging.getLogger("keel.client")

# (prompt name, label, version): exactly one of label and version is set.
_Key = tuple[str, str | None, int | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    version: PromptVersion
    fresh_until: float  # time.monotonic(); math.inf: never asked for again


class PromptClient:
    """Prompt versions from a Keel server's admin API, cached.

    ``base_url`` is where Keel listens (``http://keel:8000``; a trailing ``/v1`` or
    ``/admin`` is ignored, so the OpenAI SDK's base URL works too). ``api_key`` is a Keel
    key that may read the prompts (a member key or above: the admin API refuses service
    keys). ``ttl``: seconds a fetched version is served before it is checked again in
    the background. ``fallbacks``: per prompt (``name``, or ``name@label`` /
    ``name#version`` for one reference only), the version to serve when Keel cannot
    be asked and nothing is cached: a ``PromptVersion``, a prompt file path, or a
    mapping like a prompt file (``template``/``messages``, ``variables``,
    ``model_config``). ``timeout``: seconds one request to Keel may take.
    ``retry_interval``: seconds between attempts while Keel does not answer.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ttl: float = 60.0,
        fallbacks: Mapping[str, Fallback] | None = None,
        timeout: float = 5.0,
        retry_interval: float = 5.0,
    ) -> None:
        if not ttl >= 0 or not retry_interval >= 0:
            raise InvalidRequest("'ttl' and 'retry_interval' must be 0 or more seconds.")
        if not timeout > 0:
            raise InvalidRequest("'timeout' must be more than 0 seconds.", param="timeout")
        if not api_key:
            raise InvalidRequest("'api_key' is required: a Keel key that may read prompts.", param="api_key")
        self.base_url = _root(base_url)
        self.ttl = ttl
        self.timeout = timeout
        self.retry_interval = retry_interval
        self._api_key = api_key
        self._fallbacks: dict[PromptRef, PromptVersion] = {}
        for text, given in (fallbacks or {}).items():
            ref = fallback_key(text)
            self._fallbacks[ref] = fallback_version(ref, given)
        self._cache: dict[_Key, _Entry] = {}
        self._refreshing: dict[_Key, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- reading ------------------------------------------------------------------

    def get(self, name: str, *, label: str | None = None, version: int | None = None) -> PromptVersion:
        """A version of prompt ``name`` by ``label`` (default ``production``; ``latest``
        is the newest) or by ``version`` number. ``name`` may also carry the reference
        itself: ``support@staging``, ``support#3``. Render it with ``.render(variables)``."""
        key = self._key(name, label, version)
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None:
            if now >= entry.fresh_until:
                self._refresh_in_background(key)
            return entry.version
        try:
            fetched = self._fetch(key)
        except KeelError as exc:
            fallback = self._fallback(key)
            if fallback is None:
                if isinstance(exc, PromptUnavailable):
                    raise PromptUnavailable(
                        f"Prompt '{_ref(key)}' is unavailable: {exc.message}. Nothing is cached for it "
                        "and the client has no fallback for it."
                    ) from None
                raise
            log.warning("serving the fallback of prompt '%s': %s", _ref(key), exc.message)
            with self._lock:
                self._cache.setdefault(key, _Entry(fallback, time.monotonic() + self.retry_interval))
            return fallback
        self._store(key, fetched)
        return fetched

    def close(self, timeout: float | None = None) -> None:
        """Start no more background refreshes and wait for those under way (each one
        ends within the request ``timeout``)."""
        with self._lock:
            self._closed = True
            threads = list(self._refreshing.values())
        for thread in threads:
            thread.join(timeout if timeout is not None else self.timeout + 1)

    def __enter__(self) -> PromptClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------

    def _key(self, name: str, label: str | None, version: int | None) -> _Key:
        ref = parse_prompt_ref(name, param="name")
        if ref.label is not None or ref.version is not None:
            if label is not None or version is not None:
                raise InvalidRequest(f"'{name}' names its label or version already.", param="name")
            label, version = ref.label, ref.version
        if label is not None and version is not None:
            raise InvalidRequest("Name a prompt label or a version, not both.")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidRequest(f"A version is a number from 1, not {version!r}.", param="version")
            return (ref.name, None, version)
        parse_prompt_ref(f"{ref.name}@{label or PRODUCTION}", param="label")  # checks the label
        return (ref.name, label or PRODUCTION, None)

    def _url(self, key: _Key) -> str:
        name, label, version = key
        ref = str(version) if version is not None else label
        assert ref is not None
        return (
            f"{self.base_url}/admin/prompts/{urllib.parse.quote(name, safe='')}"
            f"/versions/{urllib.parse.quote(ref, safe='')}"
        )

    def _fetch(self, key: _Key) -> PromptVersion:
        data: Any = get_json(self._url(key), self._api_key, self.timeout)
        if not isinstance(data, dict) or data.get("name") != key[0]:
            raise PromptUnavailable(f"Keel answered for prompt '{_ref(key)}' with something else.")
        try:
            version = version_from_json(data)
        except InvalidRequest as exc:
            raise PromptUnavailable(
                f"Keel answered for prompt '{_ref(key)}' with a version this client cannot read: "
                f"{exc.message}"
            ) from None
        if key[2] is not None and version.version != key[2]:
            raise PromptUnavailable(f"Keel answered for prompt '{_ref(key)}' with version {version.version}.")
        return version

    def _store(self, key: _Key, version: PromptVersion) -> None:
        by_number: _Key = (key[0], None, version.version)
        fresh_until = math.inf if key[2] is not None else time.monotonic() + self.ttl
        with self._lock:
            self._cache[key] = _Entry(version, fresh_until)
            # Found through a label: the same version by number never changes.
            self._cache[by_number] = _Entry(version, math.inf)

    def _fallback(self, key: _Key) -> PromptVersion | None:
        name, label, version = key
        exact = PromptRef(name, label, version)
        return self._fallbacks.get(exact) or self._fallbacks.get(PromptRef(name))

    def _refresh_in_background(self, key: _Key) -> None:
        with self._lock:
            if self._closed or key in self._refreshing:
                return
            thread = threading.Thread(
                target=self._refresh, args=(key,), name=f"keel-prompt-refresh {_ref(key)}", daemon=True
            )
            self._refreshing[key] = thread
        thread.start()

    def _refresh(self, key: _Key) -> None:
        try:
            version = self._fetch(key)
        except Exception as exc:  # whatever went wrong, the cached version stays served
            message = exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
            log.warning("refreshing prompt '%s' failed, serving the cached version: %s", _ref(key), message)
            with self._lock:
                entry = self._cache.get(key)
                if entry is not None:
                    self._cache[key] = _Entry(entry.version, time.monotonic() + self.retry_interval)
        else:
            self._store(key, version)
        finally:
            with self._lock:
                self._refreshing.pop(key, None)


def _root(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InvalidRequest(
            f"'base_url' must be an http(s) URL such as http://127.0.0.1:8000, not {base_url!r}.",
            param="base_url",
        )
    for suffix in ("/v1", "/admin"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _ref(key: _Key) -> str:
    return str(PromptRef(*key))
