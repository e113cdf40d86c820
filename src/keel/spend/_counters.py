"""The atomic part of spend control: budget counters and rate-limit buckets.

One interface (``Counters``), two backends: ``InProcessCounters`` (this module; one
process, one event loop) and ``RedisCounters`` (shared by every process on one Redis).
Each operation is one atomic step: ``reserve`` checks every hard budget and reserves
against all of them or none; ``take`` checks and takes every rate limit or none.

Budget counters hold, per budget window, what was ``spent`` (settled) and what is
``reserved`` (admitted, not settled yet). A window a backend does not hold yet is loaded
through ``window_loader`` (the spend ledger's totals), so counters start from the ledger
after a restart or when Redis lost them.

Rate limits are token buckets, one per ``LimitWindow`` key, refilled continuously: a
limit of R per minute holds at most R and gains R/60 each second. So a full minute's
allowance can be spent in a burst, and after that calls are admitted at the steady rate,
with no cliff at the minute boundary as a fixed window would have. Token buckets may go
below zero when ``adjust`` charges a call that used more than it took up front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from keel.core import BudgetExceeded, RateLimited
from keel.spend._budgets import Budget
from keel.spend._prices import Nanos, format_usd


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """A budget's current window: the counter that ``reserve`` checks and charges."""

    budget: Budget
    start: datetime
    end: datetime | None  # None: a ``total`` budget
    # The counter's id: the same budget and window give the same key in every process.
    key: str

    @classmethod
    def of(cls, budget: Budget, start: datetime, end: datetime | None) -> BudgetWindow:
        stamp = start.strftime("%Y%m%d")
        return cls(budget, start, end, f"{budget.scope}:{budget.period}:{stamp}:{budget.scope_id}")


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A budget window right after a reservation (``reserved`` includes it)."""

    window: BudgetWindow
    spent: Nanos
    reserved: Nanos
    # This reservation took spent+reserved to the alert fraction of the limit / past the
    # limit (soft budgets only get past it): whoever reserved should log and alert.
    alert_crossed: bool = False
    limit_crossed: bool = False

    @property
    def budget(self) -> Budget:
        return self.window.budget

    @property
    def remaining(self) -> Nanos:
        return self.window.budget.limit_nanos - self.spent - self.reserved


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """A rate limit: ``key`` names what it limits ("key:<id>", "team:<id>", "model:<name>")."""

    key: str
    rpm: int | None = None
    tpm: int | None = None


# (limit, remaining after this call, seconds until the bucket is full again)
_Snapshot = tuple[int, float, float]


@dataclass(slots=True)
class RateLimitGrant:
    """What ``take`` admitted; its ``headers`` go on the response, ``adjust`` settles tokens."""

    limits: tuple[LimitWindow, ...] = ()
    requests: int = 0
    tokens: int = 0
    request_snapshot: _Snapshot | None = None
    token_snapshot: _Snapshot | None = None
    adjusted: bool = field(default=False, compare=False)

    @property
    def headers(self) -> dict[str, str]:
        return rate_limit_headers(self.request_snapshot, self.token_snapshot)


def rate_limit_headers(requests: _Snapshot | None, tokens: _Snapshot | None) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers, for the most constrained limit of each kind."""
    headers: dict[str, str] = {}
    for kind, snapshot in (("requests", requests), ("tokens", tokens)):
        if snapshot is None:
            continue
        limit, remaining, reset = snapshot
        headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(remaining)))
        headers[f"x-ratelimit-reset-{kind}"] = format_duration(reset)
    return headers


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    total_ms = max(0, math.ceil(seconds * 1000))
    if total_ms < 1000:
        return f"{total_ms}ms"
    minutes, rest_ms = divmod(total_ms, 60_000)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


NO_LIMITS = RateLimitGrant()

# Loads windows a backend does not hold: key -> (spent, reserved) from the ledger.
WindowLoader = Callable[[Sequence[BudgetWindow]], Awaitable[Mapping[str, tuple[Nanos, Nanos]]]]


class Counters(Protocol):
    window_loader: WindowLoader | None

    async def reserve(self, windows: Sequence[BudgetWindow], amount: Nanos) -> list[BudgetState]:
        """Reserve ``amount`` against every window, or raise ``BudgetExceeded`` (naming the
        budget) when a hard one would go over its limit; nothing is reserved then. Returns
        one state per window, or an empty list when nothing was reserved (no windows, or
        Redis unreachable and ``on_redis_error`` is open): settle nothing then."""
        ...

    async def settle(
        self,
        windows: Sequence[BudgetWindow],
        reserved: Nanos,
        actual: Nanos,
        *,
        instance_id: str | None = None,
        reservation_id: str | None = None,
    ) -> None:
        """Release ``reserved`` and add ``actual`` to spent, in each window still held.

        With ``instance_id`` and ``reservation_id``, a backend whose counters outlive the
        process (Redis) also remembers that this reservation is settled in the counters,
        until ``forget_settled`` says its settle row is in the ledger: if the process dies
        before that, ``recover`` knows the counters already hold it."""
        ...

    async def forget_settled(self, instance_id: str, reservation_ids: Sequence[str]) -> None:
        """The settle rows of these reservations are in the ledger (see ``settle``)."""
        ...

    async def recover(
        self, windows: Sequence[BudgetWindow], amount: Nanos, *, instance_id: str, reservation_id: str
    ) -> None:
        """Crash recovery settled a dead instance's reservation in the ledger at its
        reserved ``amount``: count it as spent at ``amount`` in each window still held,
        whether or not that instance had settled it in the counters before it died."""
        ...

    async def read(self, windows: Sequence[BudgetWindow]) -> dict[str, tuple[Nanos, Nanos]]:
        """(spent, reserved) of the windows held (loading them if need be)."""
        ...

    async def take(self, limits: Sequence[LimitWindow], requests: int = 1, tokens: int = 0) -> RateLimitGrant:
        """Take ``requests`` and ``tokens`` from every limit at once, or raise
        ``RateLimited`` (with ``retry_after`` and headers) taking nothing."""
        ...

    async def adjust(self, grant: RateLimitGrant, actual_tokens: int) -> None:
        """Refund (or charge) the difference between the tokens taken and used."""
        ...

    async def close(self) -> None: ...


# -- shared by both backends ----------------------------------------------------------


def budget_states(
    windows: Sequence[BudgetWindow], before: Sequence[tuple[Nanos, Nanos]], amount: Nanos
) -> list[BudgetState]:
    """The states after reserving ``amount``, given (spent, reserved) before; raises
    ``BudgetExceeded`` for the first hard budget that cannot take it."""
    for window, (spent, reserved) in zip(windows, before, strict=True):
        budget = window.budget
        if budget.hard and spent + reserved + amount > budget.limit_nanos:
            raise budget_refusal(window, spent, reserved, amount)
    states = []
    for window, (spent, reserved) in zip(windows, before, strict=True):
        budget = window.budget
        used_before = spent + reserved
        used_after = used_before + amount
        alert_at = (
            budget.limit_nanos * budget.alert_at_fraction if budget.alert_at_fraction is not None else None
        )
        states.append(
            BudgetState(
                window,
                spent,
                reserved + amount,
                alert_crossed=alert_at is not None and used_before < alert_at <= used_after,
                limit_crossed=used_before <= budget.limit_nanos < used_after,
            )
        )
    return states


def budget_refusal(window: BudgetWindow, spent: Nanos, reserved: Nanos, amount: Nanos) -> BudgetExceeded:
    budget = window.budget
    left = max(0, budget.limit_nanos - spent - reserved)
    what = {"key": "key", "team": "team", "end_user": "end user", "model": "model"}[budget.scope]
    period = "total" if budget.period == "total" else f"{budget.period}ly".replace("dayly", "daily")
    until = f"; it resets at {window.end.isoformat()}" if window.end is not None else ""
    return BudgetExceeded(
        f"Budget exceeded: the {period} budget of {what} {budget.scope_id!r} is "
        f"${format_usd(budget.limit_nanos)} with ${format_usd(left)} left, and this request "
        f"may cost up to ${format_usd(amount)}{until}."
    )


def rate_refusal(
    limit: LimitWindow, kind: str, wait: float | None, snapshot: _Snapshot | None
) -> RateLimited:
    headers = rate_limit_headers(snapshot, None) if kind == "requests" else rate_limit_headers(None, snapshot)
    per_minute = limit.rpm if kind == "requests" else limit.tpm
    if wait is None:
        return RateLimited(
            f"Request too large for {limit.key}: it needs more {kind} than the limit of "
            f"{per_minute} {kind} per minute allows.",
            headers=headers,
        )
    return RateLimited(
        f"Rate limit reached for {limit.key}: {per_minute} {kind} per minute. "
        f"Try again in {format_duration(wait)}.",
        retry_after=wait,
        headers=headers,
    )


def grant_or_refusal(
    limits: Sequence[LimitWindow], levels: Sequence[tuple[float, float]], requests: int, tokens: int
) -> RateLimitGrant:
    """Decide a take from the bucket levels before it (refilled to now): the grant, with
    the headers of the most constrained limit of each kind, or raise ``RateLimited``
    with the longest wait (none when a call can never fit)."""
    request_snapshot: _Snapshot | None = None
    token_snapshot: _Snapshot | None = None
    refusal: tuple[float | None, LimitWindow, str, _Snapshot] | None = None
    for limit, (req_level, tok_level) in zip(limits, levels, strict=True):
        for kind, per_minute, level, need in (
            ("requests", limit.rpm, req_level, requests),
            ("tokens", limit.tpm, tok_level, tokens),
        ):
            if not per_minute:
                continue
            after = level - need
            if need > per_minute:
                refusal = (
                    None,
                    limit,
                    kind,
                    (per_minute, max(level, 0.0), (per_minute - level) * 60 / per_minute),
                )
            elif after < 0:
                wait = -after * 60 / per_minute
                if refusal is None or (refusal[0] is not None and wait > refusal[0]):
                    refusal = (wait, limit, kind, (per_minute, 0.0, (per_minute - level) * 60 / per_minute))
            else:
                snapshot = (per_minute, after, (per_minute - after) * 60 / per_minute)
                if kind == "requests" and (request_snapshot is None or after < request_snapshot[1]):
                    request_snapshot = snapshot
                elif kind == "tokens" and (token_snapshot is None or after < token_snapshot[1]):
                    token_snapshot = snapshot
    if refusal is not None:
        raise rate_refusal(refusal[1], refusal[2], refusal[0], refusal[3])
    return RateLimitGrant(tuple(limits), requests, tokens, request_snapshot, token_snapshot)


# -- in-process -----------------------------------------------------------------------


class _Bucket:
    __slots__ = ("at", "requests", "tokens")

    def __init__(self, requests: float, tokens: float, at: float) -> None:
        self.requests = requests
        self.tokens = tokens
        self.at = at


class InProcessCounters:
    """Counters in this process's memory. Atomic because every operation runs on one
    event loop without awaiting between its check and its update; correct for one
    gateway process (use ``RedisCounters`` to share limits between processes)."""

    def __init__(
        self, *, window_loader: WindowLoader | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_loader = window_loader
        self._clock = clock
        # key -> [spent, reserved]
        self._windows: dict[str, list[int]] = {}
        self._window_ends: dict[str, datetime | None] = {}
        self._buckets: dict[str, _Bucket] = {}

    async def reserve(self, windows: Sequence[BudgetWindow], amount: Nanos) -> list[BudgetState]:
        if not windows:
            return []
        if any(w.key not in self._windows for w in windows):
            await self._load(windows)
        # From here to the end there is no await: the check and the update are one step.
        cells = [self._windows[w.key] for w in windows]
        states = budget_states(windows, [(c[0], c[1]) for c in cells], amount)
        for cell in cells:
            cell[1] += amount
        return states

    async def settle(
        self,
        windows: Sequence[BudgetWindow],
        reserved: Nanos,
        actual: Nanos,
        *,
        instance_id: str | None = None,
        reservation_id: str | None = None,
    ) -> None:
        # No marks: these counters die with the process, and the next one loads them from
        # the ledger, where a settlement that was never written is still open.
        for window in windows:
            cell = self._windows.get(window.key)
            if cell is not None:
                cell[1] -= reserved
                cell[0] += actual

    async def forget_settled(self, instance_id: str, reservation_ids: Sequence[str]) -> None:
        return None

    async def recover(
        self, windows: Sequence[BudgetWindow], amount: Nanos, *, instance_id: str, reservation_id: str
    ) -> None:
        # A dead instance's reservation is known here only from the ledger, as open.
        await self.settle(windows, amount, amount)

    async def read(self, windows: Sequence[BudgetWindow]) -> dict[str, tuple[Nanos, Nanos]]:
        if any(w.key not in self._windows for w in windows):
            await self._load(windows)
        return {w.key: (self._windows[w.key][0], self._windows[w.key][1]) for w in windows}

    async def _load(self, windows: Sequence[BudgetWindow]) -> None:
        missing = [w for w in windows if w.key not in self._windows]
        loaded = await self.window_loader(missing) if self.window_loader is not None else {}
        # Another task may have loaded a window while this one waited: the first load wins.
        for window in missing:
            spent, reserved = loaded.get(window.key, (0, 0))
            if window.key not in self._windows:
                self._windows[window.key] = [spent, reserved]
                self._window_ends[window.key] = window.end
        self._forget_old_windows()

    def _forget_old_windows(self) -> None:
        horizon = datetime.now(UTC) - timedelta(days=2)
        for key in [k for k, end in self._window_ends.items() if end is not None and end < horizon]:
            del self._windows[key], self._window_ends[key]

    async def take(self, limits: Sequence[LimitWindow], requests: int = 1, tokens: int = 0) -> RateLimitGrant:
        if not limits:
            return NO_LIMITS
        now = self._clock()
        buckets = []
        levels = []
        for limit in limits:
            bucket = self._buckets.get(limit.key)
            if bucket is None:
                bucket = self._buckets[limit.key] = _Bucket(float(limit.rpm or 0), float(limit.tpm or 0), now)
            elapsed = now - bucket.at
            levels.append(
                (
                    min(float(limit.rpm), bucket.requests + elapsed * limit.rpm / 60) if limit.rpm else 0.0,
                    min(float(limit.tpm), bucket.tokens + elapsed * limit.tpm / 60) if limit.tpm else 0.0,
                )
            )
            buckets.append(bucket)
        grant = grant_or_refusal(limits, levels, requests, tokens)
        for bucket, (req_level, tok_level), limit in zip(buckets, levels, limits, strict=True):
            bucket.requests = req_level - requests if limit.rpm else 0.0
            bucket.tokens = tok_level - tokens if limit.tpm else 0.0
            bucket.at = now
        return grant

    async def adjust(self, grant: RateLimitGrant, actual_tokens: int) -> None:
        if grant.adjusted or not grant.limits:
            return
        grant.adjusted = True
        refund = grant.tokens - actual_tokens
        for limit in grant.limits:
            bucket = self._buckets.get(limit.key)
            if bucket is not None and limit.tpm:
                bucket.tokens = min(float(limit.tpm), bucket.tokens + refund)

    async def close(self) -> None:
        return None
