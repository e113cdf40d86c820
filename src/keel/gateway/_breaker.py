"""A per-deployment circuit breaker.

closed ──(``failure_threshold`` consecutive failures)──▶ open
open ──(``cooldown`` elapsed)──▶ half-open: exactly one probe call is let through
half-open ──probe succeeds──▶ closed;  ──probe fails──▶ open (cooldown restarts)

Only failures that say something about the deployment's health count (5xx, timeouts,
broken connections); a client's 4xx does not. The event loop is single-threaded, so the
state needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from keel.core import BreakerPolicy

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._policy.cooldown:
            return "half_open"
        return "open"

    def allows(self) -> bool:
        """Whether a call may be sent now (does not reserve the half-open probe)."""
        if self._opened_at is None:
            return True
        state = self.state
        return state == "closed" or (state == "half_open" and not self._probe_in_flight)

    def on_attempt(self) -> None:
        """A call is being sent: in half-open state it becomes the one probe."""
        if self.state == "half_open":
            self._probe_in_flight = True

    def on_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def on_failure(self) -> None:
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        self._failures += 1
        if was_probe or self._failures >= self._policy.failure_threshold:
            self._opened_at = self._clock()

    def on_abandoned(self) -> None:
        """The call ended without a verdict (client went away): free the probe slot."""
        self._probe_in_flight = False
