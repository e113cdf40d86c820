"""Counters in Redis, shared by every gateway process that uses the same Redis.

Each operation is one Lua script, so its check and its update are one atomic step for
all processes. Budget windows are hashes (``s``: spent, ``r``: reserved) that expire a
week after their window ends; a window missing from Redis (first use, eviction, a
flushed Redis) is loaded from the spend ledger and set only if still missing. Rate-limit
buckets are hashes (``q``: requests, ``t``: tokens, ``at``: Redis time of the last take)
that expire when idle for two minutes (a missing bucket is a full one).

Redis outlives a gateway process, and a process settles a reservation in Redis a moment
before its settle row reaches the ledger (rows are group-committed). A process that dies
in between leaves the reservation open in the ledger but settled in Redis; crash
recovery settles it in the ledger at its reserved amount and must not release it in
Redis a second time. So a settlement is also noted, with its actual cost, in the
instance's ``settling:<instance>`` hash until its row is written; recovery finds it
there and adds only the difference to the reserved amount.

When Redis cannot be reached, ``on_error="closed"`` refuses with ``SpendUnavailable``
(503) and ``"open"`` admits without counting (a warning is logged, at most every 10 s).

Counts are Lua numbers (doubles): exact up to 2**53 nano-USD, about 9 million USD.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from keel.core import RateLimited, SpendSettings
from keel.spend._counters import (
    NO_LIMITS,
    BudgetState,
    BudgetWindow,
    Counters,
    InProcessCounters,
    LimitWindow,
    RateLimitGrant,
    WindowLoader,
    budget_refusal,
    budget_states,
    grant_or_refusal,
)
from keel.spend._errors import SpendUnavailable
from keel.spend._prices import Nanos

logger = logging.getLogger("keel.spend.redis")

# Budget windows live this long after they end (spend reports read the ledger, not Redis).
_WINDOW_GRACE_S = 7 * 86400
_BUCKET_IDLE_S = 120

# KEYS: windows. ARGV: amount, then limit and hard (1/0) per window.
# -> {-1, missing indexes...} | {0, index, spent, reserved} | {1, spent1, reserved1, ...}
_RESERVE = """
local amount = tonumber(ARGV[1])
local missing = {-1}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then missing[#missing + 1] = i end
end
if #missing > 1 then return missing end
local out = {1}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 's', 'r')
  local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if ARGV[2 * i + 1] == '1' and spent + reserved + amount > tonumber(ARGV[2 * i]) then
    return {0, i, spent, reserved}
  end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
for _, key in ipairs(KEYS) do redis.call('HINCRBY', key, 'r', amount) end
return out
"""

# KEYS: windows, then the settling hash of the instance when ARGV[3] (a reservation id)
# is not empty. ARGV: reserved, actual, reservation id, expiry (s) of the settling hash.
# Windows no longer held are left alone.
_SETTLE = """
local windows = #KEYS
if ARGV[3] ~= '' then windows = windows - 1 end
for i = 1, windows do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'r', -tonumber(ARGV[1]))
    redis.call('HINCRBY', key, 's', tonumber(ARGV[2]))
  end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[#KEYS], ARGV[3], ARGV[2])
  redis.call('EXPIRE', KEYS[#KEYS], ARGV[4])
end
return 1
"""

# KEYS: windows, then the settling hash of the dead instance. ARGV: amount, reservation id.
# Settled in the counters already (with what the settling hash says): only the difference
# to ``amount`` is added. Else the reservation is still counted as reserved: move it.
_RECOVER = """
local settling = KEYS[#KEYS]
local counted = redis.call('HGET', settling, ARGV[2])
local amount = tonumber(ARGV[1])
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    if counted then
      redis.call('HINCRBY', key, 's', amount - tonumber(counted))
    else
      redis.call('HINCRBY', key, 'r', -amount)
      redis.call('HINCRBY', key, 's', amount)
    end
  end
end
if counted then redis.call('HDEL', settling, ARGV[2]) end
return 1
"""

# KEYS: windows. ARGV: spent, reserved, expire-at (unix s, 0: never) per window.
_LOAD = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 's', ARGV[3 * i - 2], 'r', ARGV[3 * i - 1])
    local at = tonumber(ARGV[3 * i])
    if at > 0 then redis.call('EXPIREAT', key, at) end
  end
end
return 1
"""

# KEYS: buckets. ARGV: requests, tokens, then rpm and tpm (0: none) per bucket.
# Returns {taken (0/1), level_requests1, level_tokens1, ...}: the levels before the take.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local need_q, need_t = tonumber(ARGV[1]), tonumber(ARGV[2])
local levels = {}
local ok = 1
for i, key in ipairs(KEYS) do
  local rpm, tpm = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  local v = redis.call('HMGET', key, 'q', 't', 'at')
  local elapsed = math.max(0, now - (tonumber(v[3]) or now))
  local q, k = 0, 0
  if rpm > 0 then
    q = math.min(rpm, (tonumber(v[1]) or rpm) + elapsed * rpm / 60)
    if q < need_q then ok = 0 end
  end
  if tpm > 0 then
    k = math.min(tpm, (tonumber(v[2]) or tpm) + elapsed * tpm / 60)
    if k < need_t or need_t > tpm then ok = 0 end
  end
  levels[i] = {q, k, rpm, tpm}
end
local out = {ok}
for i, key in ipairs(KEYS) do
  local q, k, rpm, tpm = levels[i][1], levels[i][2], levels[i][3], levels[i][4]
  out[#out + 1] = string.format('%.17g', q)
  out[#out + 1] = string.format('%.17g', k)
  if ok == 1 then
    redis.call('HSET', key, 'q', string.format('%.17g', rpm > 0 and q - need_q or 0),
      't', string.format('%.17g', tpm > 0 and k - need_t or 0), 'at', string.format('%.17g', now))
    redis.call('EXPIRE', key, ARGV[#ARGV])
  end
end
return out
"""

# KEYS: buckets. ARGV: refund (may be negative), then tpm per bucket.
_ADJUST = """
for i, key in ipairs(KEYS) do
  local level = redis.call('HGET', key, 't')
  if level then
    local tpm = tonumber(ARGV[i + 1])
    redis.call('HSET', key, 't', string.format('%.17g', math.min(tpm, tonumber(level) + tonumber(ARGV[1]))))
  end
end
return 1
"""


def create_counters(redis_url: str | None, settings: SpendSettings) -> Counters:
    """The counters a gateway uses: in Redis when ``redis_url`` is set, else in-process."""
    if redis_url is None:
        return InProcessCounters()
    return RedisCounters.from_url(
        redis_url, prefix=settings.redis_key_prefix, on_error=settings.on_redis_error
    )


class RedisCounters:
    """``Counters`` in Redis (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "keel:",
        on_error: Literal["closed", "open"] = "closed",
        window_loader: WindowLoader | None = None,
        display_url: str = "Redis",
    ) -> None:
        self.window_loader = window_loader
        self._redis = redis
        self._budget_prefix = f"{prefix}budget:"
        self._settling_prefix = f"{prefix}settling:"
        self._limit_prefix = f"{prefix}limit:"
        self._on_error = on_error
        self._display_url = display_url
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._recover = redis.register_script(_RECOVER)
        self._load_script = redis.register_script(_LOAD)
        self._take = redis.register_script(_TAKE)
        self._adjust = redis.register_script(_ADJUST)
        self._last_warning = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "keel:",
        on_error: Literal["closed", "open"] = "closed",
        timeout_s: float = 2.0,
        max_connections: int = 64,
    ) -> RedisCounters:
        # A blocking pool: a burst of requests waits (up to ``timeout_s``) for a connection
        # instead of failing with "Too many connections", as redis-py's default pool does
        # past its limit.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        redis = Redis(connection_pool=pool)
        shown = url.split("@")[-1] if "@" in url else url  # never show a password
        return cls(redis, prefix=prefix, on_error=on_error, display_url=shown)

    # -- budgets --------------------------------------------------------------------------

    async def reserve(self, windows: Sequence[BudgetWindow], amount: Nanos) -> list[BudgetState]:
        if not windows:
            return []
        keys = [self._budget_prefix + w.key for w in windows]
        args: list[Any] = [amount]
        for window in windows:
            args += [window.budget.limit_nanos, 1 if window.budget.hard else 0]
        try:
            for _ in range(3):
                result = await self._reserve(keys=keys, args=args)
                if result[0] != -1:
                    break
                await self._load([windows[int(i) - 1] for i in result[1:]])
            else:
                raise SpendUnavailable("Redis lost the budget counters while loading them; try again.")
        except RedisError as exc:
            self._unreachable(exc)
            return []
        if result[0] == 0:
            index = int(result[1]) - 1
            raise budget_refusal(windows[index], int(result[2]), int(result[3]), amount)
        before = [(int(result[1 + 2 * i]), int(result[2 + 2 * i])) for i in range(len(windows))]
        return budget_states(windows, before, amount)

    async def settle(
        self,
        windows: Sequence[BudgetWindow],
        reserved: Nanos,
        actual: Nanos,
        *,
        instance_id: str | None = None,
        reservation_id: str | None = None,
    ) -> None:
        if not windows:
            return
        keys = [self._budget_prefix + w.key for w in windows]
        args: list[Any] = [reserved, actual, "", 0]
        if instance_id is not None and reservation_id is not None:
            # Remembered until the settle row is written: these counters outlive this
            # process, and if it dies first, recovery must not release the reservation twice.
            keys.append(self._settling_prefix + instance_id)
            args[2:] = [reservation_id, _WINDOW_GRACE_S]
        try:
            await self._settle(keys=keys, args=args)
        except RedisError as exc:
            # The reservation stays counted in Redis (over-counting, never under); the
            # ledger has the truth and a reload from it corrects the window.
            self._warn(f"could not settle in Redis ({exc}); the reservation stays counted there")

    async def forget_settled(self, instance_id: str, reservation_ids: Sequence[str]) -> None:
        if not reservation_ids:
            return
        try:
            await self._redis.hdel(self._settling_prefix + instance_id, *reservation_ids)
        except RedisError as exc:
            # Only a few stale marks, of reservations recovery never sees (their settle rows
            # are written); the hash expires.
            self._warn(f"could not clear settled reservations in Redis ({exc})")

    async def recover(
        self, windows: Sequence[BudgetWindow], amount: Nanos, *, instance_id: str, reservation_id: str
    ) -> None:
        if not windows:
            return
        keys = [self._budget_prefix + w.key for w in windows] + [self._settling_prefix + instance_id]
        try:
            await self._recover(keys=keys, args=[amount, reservation_id])
        except RedisError as exc:
            # The reservation stays counted as reserved in Redis: over-counting, never under.
            self._warn(f"could not move a recovered reservation to spent in Redis ({exc})")

    async def read(self, windows: Sequence[BudgetWindow]) -> dict[str, tuple[Nanos, Nanos]]:
        if not windows:
            return {}
        try:
            values = await self._read(windows)
            missing = [w for w, v in zip(windows, values, strict=True) if v[0] is None]
            if missing:
                await self._load(missing)
                values = await self._read(windows)
        except RedisError as exc:
            self._unreachable(exc)
            return {}
        return {w.key: (int(v[0] or 0), int(v[1] or 0)) for w, v in zip(windows, values, strict=True)}

    async def _read(self, windows: Sequence[BudgetWindow]) -> list[list[bytes | None]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for window in windows:
                pipe.hmget(self._budget_prefix + window.key, "s", "r")
            values: list[list[bytes | None]] = await pipe.execute()
        return values

    async def _load(self, windows: Sequence[BudgetWindow]) -> None:
        loaded = await self.window_loader(windows) if self.window_loader is not None else {}
        args: list[Any] = []
        for window in windows:
            spent, reserved = loaded.get(window.key, (0, 0))
            expire_at = int(window.end.timestamp()) + _WINDOW_GRACE_S if window.end is not None else 0
            args += [spent, reserved, expire_at]
        await self._load_script(keys=[self._budget_prefix + w.key for w in windows], args=args)

    async def forget(self, windows: Sequence[BudgetWindow]) -> None:
        """Drop windows from Redis (the next use reloads them from the ledger)."""
        if windows:
            await self._redis.delete(*[self._budget_prefix + w.key for w in windows])

    # -- rate limits ----------------------------------------------------------------------

    async def take(self, limits: Sequence[LimitWindow], requests: int = 1, tokens: int = 0) -> RateLimitGrant:
        if not limits:
            return NO_LIMITS
        args: list[Any] = [requests, tokens]
        for limit in limits:
            args += [limit.rpm or 0, limit.tpm or 0]
        args.append(_BUCKET_IDLE_S)
        try:
            result = await self._take(keys=[self._limit_prefix + limit.key for limit in limits], args=args)
        except RedisError as exc:
            self._unreachable(exc)
            return NO_LIMITS
        levels = [(float(result[1 + 2 * i]), float(result[2 + 2 * i])) for i in range(len(limits))]
        # The script took only if every limit allowed it; this says which refused, and how
        # (the levels come back exactly, so both decide alike).
        grant = grant_or_refusal(limits, levels, requests, tokens)
        if int(result[0]) != 1:
            raise RateLimited(f"Rate limit reached for {limits[0].key}.", retry_after=0.1)
        return grant

    async def adjust(self, grant: RateLimitGrant, actual_tokens: int) -> None:
        if grant.adjusted or not grant.limits:
            return
        grant.adjusted = True
        limits = [limit for limit in grant.limits if limit.tpm]
        refund = grant.tokens - actual_tokens
        if not limits or refund == 0:
            return
        try:
            await self._adjust(
                keys=[self._limit_prefix + limit.key for limit in limits],
                args=[refund, *[limit.tpm or 0 for limit in limits]],
            )
        except RedisError as exc:
            self._warn(f"could not adjust a rate limit in Redis ({exc})")

    async def close(self) -> None:
        await self._redis.aclose()

    # -- Redis unreachable ----------------------------------------------------------------

    def _unreachable(self, exc: RedisError) -> None:
        if self._on_error == "closed":
            raise SpendUnavailable(
                f"Redis at {self._display_url} is unreachable ({exc}): budgets and rate limits cannot be "
                "enforced, so the request is refused (spend.on_redis_error is 'closed')."
            ) from exc
        self._warn(
            f"Redis at {self._display_url} is unreachable ({exc}): admitting without budgets or limits"
        )

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 10:
            self._last_warning = now
            logger.warning(message)
