"""``KeyRing``: the data plane's view of the keys, in memory.

``authenticate`` is one sha256 and one dictionary lookup, and reads the clock, so an
expiry takes effect on the very call it passes. Changes reach the ring in three ways:

- ``reload()`` after a change made in this process (the admin API calls it);
- a background task that polls the store's ``access`` change version every
  ``refresh_interval`` seconds and reloads when another process changed something;
- ``authenticate_async`` on a miss: a key created elsewhere since the last poll is
  looked up in the store once (in a thread). Misses are remembered for one refresh
  interval and looked up a few at a time, so that garbage keys cannot hammer the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, select

from keel.access._admin import CHANGE_TOPIC, utc_now
from keel.access._principal import Principal
from keel.access._records import ApiKey
from keel.access._secrets import KEY_PREFIX, hash_key, is_well_formed
from keel.access._tables import api_keys, teams
from keel.core import AuthenticationError
from keel.store import keel_changes, read_changes

logger = logging.getLogger(__name__)

_NEGATIVE_CACHE_SIZE = 10_000
_CONCURRENT_STORE_LOOKUPS = 4


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    prefix: str
    revoked_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, row: Row[Any]) -> _Entry:
        """An entry from a row of ``_KEYS`` (the key and its team's guard policy)."""
        key = ApiKey.from_row(row)
        principal = key.principal(row._mapping[_TEAM_GUARD_POLICY])
        return cls(principal, key.prefix, key.revoked_at, key.expires_at)


# Each key with its team's guard policy: a principal carries the policy that applies to it,
# so the gateway reads it from memory (a team's change bumps the access version too).
_TEAM_GUARD_POLICY = "team_guard_policy"
_KEYS = select(api_keys, teams.c.guard_policy.label(_TEAM_GUARD_POLICY)).select_from(
    api_keys.outerjoin(teams, api_keys.c.team_id == teams.c.id)
)


class KeyRing:
    def __init__(
        self,
        engine: Engine,
        refresh_interval: float = 1.0,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._refresh_interval = refresh_interval
        self._clock = clock
        # Replaced whole on reload (an atomic swap readers never see half-built).
        self._entries: dict[str, _Entry] = {}
        self._version: int | None = None
        self._loaded = False
        self._misses: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[_Entry | None]] = {}
        self._lookups: asyncio.Semaphore | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def __len__(self) -> int:
        return len(self._entries)

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Read every key from the store (blocking: call it from a thread in async code)."""
        with self._engine.connect() as connection:
            # The version first: a change committed between the two reads is seen again
            # at the next poll rather than missed.
            version = connection.execute(
                select(keel_changes.c.version).where(keel_changes.c.topic == CHANGE_TOPIC)
            ).scalar()
            rows = connection.execute(_KEYS).all()
        entries: dict[str, _Entry] = {}
        for row in rows:
            entries[row.key_hash] = _Entry.of(row)
        self._entries = entries
        self._version = version or 0
        self._misses = {}
        self._loaded = True

    def reload(self) -> None:
        """Load again now (after a change made in this process)."""
        self.load()

    def reload_if_changed(self) -> bool:
        """Reload when another process changed keys or teams; True when it did."""
        version = read_changes(self._engine).get(CHANGE_TOPIC, 0)
        if version == self._version:
            return False
        self.load()
        return True

    async def start(self) -> None:
        """Load (unless loaded) and start polling for changes."""
        if not self._loaded:
            await asyncio.to_thread(self.load)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="keel-keyring-poll")

    async def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await asyncio.to_thread(self.reload_if_changed)
            except Exception as exc:  # the store may be down for a while: keep the keys we have
                logger.warning("access: could not check the store for key changes: %s", exc)

    # -- authenticating ------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The principal of a valid key, from memory only; AuthenticationError otherwise."""
        digest = _digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            raise AuthenticationError("Invalid API key: no such key.")
        return self._check(entry)

    async def authenticate_async(self, token: str) -> Principal:
        """``authenticate``, but a key not in memory is looked up in the store once (it may
        have been created by another process since the last poll)."""
        digest = _digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            entry = await self._look_up(digest)
            if entry is None:
                raise AuthenticationError("Invalid API key: no such key.")
        return self._check(entry)

    def _check(self, entry: _Entry) -> Principal:
        now = self._clock()
        if entry.revoked_at is not None and entry.revoked_at <= now:
            raise AuthenticationError(f"API key {entry.prefix}… has been revoked.", code="key_revoked")
        if entry.expires_at is not None and entry.expires_at <= now:
            raise AuthenticationError(f"API key {entry.prefix}… has expired.", code="key_expired")
        return entry.principal

    async def _look_up(self, digest: str) -> _Entry | None:
        remembered = self._misses.get(digest)
        if remembered is not None and remembered > time.monotonic():
            return None
        # Concurrent requests with the same unknown key share one lookup.
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.create_task(self._fetch(digest))
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _fetch(self, digest: str) -> _Entry | None:
        if self._lookups is None:
            self._lookups = asyncio.Semaphore(_CONCURRENT_STORE_LOOKUPS)
        async with self._lookups:
            try:
                entry = await asyncio.to_thread(self._fetch_blocking, digest)
            except Exception as exc:
                logger.warning("access: could not look a key up in the store: %s", exc)
                return None
        if entry is None:
            self._remember_miss(digest)
        else:
            self._entries[digest] = entry
        return entry

    def _fetch_blocking(self, digest: str) -> _Entry | None:
        with self._engine.connect() as connection:
            row = connection.execute(_KEYS.where(api_keys.c.key_hash == digest)).first()
        return _Entry.of(row) if row is not None else None

    def _remember_miss(self, digest: str) -> None:
        now = time.monotonic()
        if len(self._misses) >= _NEGATIVE_CACHE_SIZE:
            self._misses = {d: until for d, until in self._misses.items() if until > now}
            if len(self._misses) >= _NEGATIVE_CACHE_SIZE:
                self._misses = {}
        self._misses[digest] = now + self._refresh_interval


def _digest(token: str) -> str:
    if not is_well_formed(token):
        raise AuthenticationError(
            f"Malformed API key: Keel keys look like '{KEY_PREFIX}' followed by 43 characters."
        )
    return hash_key(token)
