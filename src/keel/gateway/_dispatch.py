"""Send one client call upstream: choose, retry, fail over, fall back.

For each route in the chain (the requested one, then its fallbacks) up to
``retry.max_attempts`` calls are made. Each call goes to a deployment the route's
strategy picks, preferring one that has not failed yet in this request, so a second
deployment is tried at once; a call that goes to a deployment that already failed waits
first (exponential backoff with full jitter). A ``Retry-After`` cools that deployment
down for every request; when all of a route's deployments cool down, the call waits
for the first to come back (if that is within ``retry.max_retry_after``). A
non-retryable error (the client's 4xx) ends the request at once: another deployment
would refuse it too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from keel.core import ProviderError, RetryPolicy, UpstreamUnavailable
from keel.gateway._routing import DeploymentState, Route, Router
from keel.providers import Deployment, Provider
from keel.telemetry import GatewayMetrics

T = TypeVar("T")

UpstreamCall = Callable[[Provider, Deployment], Awaitable[T]]


@dataclass(slots=True)
class Dispatched(Generic[T]):
    """The answer and the deployment that gave it (what was tried is in the trace)."""

    result: T
    state: DeploymentState


@dataclass(slots=True)
class DispatchTrace:
    """What was tried, filled in as attempts happen (read even when dispatch raises)."""

    attempts: int = 0
    route: Route | None = None
    state: DeploymentState | None = None


def backoff_delay(policy: RetryPolicy, retry_number: int) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based) of one deployment."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2 ** (retry_number - 1)))
    return random.uniform(0, ceiling) if policy.jitter else ceiling


class Dispatcher:
    def __init__(self, router: Router, policy: RetryPolicy, metrics: GatewayMetrics) -> None:
        self._router = router
        self._policy = policy
        self._metrics = metrics

    async def call(self, route: Route, call: UpstreamCall[T], trace: DispatchTrace) -> Dispatched[T]:
        last_error: ProviderError | None = None
        for current in self._router.chain(route):
            trace.route = current
            failed: dict[DeploymentState, int] = {}
            for _ in range(self._policy.max_attempts):
                state = current.choose(exclude=failed)
                if state is None:
                    # Every deployment is cooling down after a Retry-After: wait for the
                    # first one if that is not longer than we are willing to wait.
                    wait = current.cooldown_remaining()
                    if wait is None or wait > self._policy.max_retry_after:
                        break
                    await asyncio.sleep(wait)
                    state = current.choose(exclude=failed)
                    if state is None:
                        break
                elif state in failed:
                    await asyncio.sleep(backoff_delay(self._policy, failed[state]))
                retries_here = failed.get(state, 0)
                trace.attempts += 1
                trace.state = state
                try:
                    result = await self._attempt(state, call, trace)
                except ProviderError as exc:
                    last_error = exc
                    if not exc.retryable:
                        raise
                    failed[state] = retries_here + 1
                    continue
                return Dispatched(result, state)
        if last_error is not None:
            raise last_error
        raise UpstreamUnavailable(
            f"No deployment of '{route.name}' is available now (circuit breakers open or cooling down)."
        )

    async def _attempt(self, state: DeploymentState, call: UpstreamCall[T], trace: DispatchTrace) -> T:
        """One upstream call (``trace`` says which attempt: a traced dispatcher uses it).
        Breaker states are read by ``/metrics`` when scraped, not reported from here."""
        breaker = state.breaker
        breaker.on_attempt()
        state.in_flight += 1
        started = time.perf_counter()
        name = state.deployment.name
        try:
            result = await call(state.provider, state.deployment)
        except ProviderError as exc:
            self._metrics.attempt(name, exc.kind).inc()
            if exc.retry_after:
                # The deployment said when to come back: every request respects that.
                state.cooldown_until = time.monotonic() + exc.retry_after
            if exc.upstream_status == 429:
                breaker.on_abandoned()  # rate limited is not unhealthy
            elif exc.retryable:
                breaker.on_failure()
            else:
                # The client's own error says nothing about the deployment's health.
                breaker.on_success()
            raise
        except BaseException:
            breaker.on_abandoned()
            raise
        finally:
            state.in_flight -= 1
        state.record_latency(time.perf_counter() - started)
        breaker.on_success()
        self._metrics.attempt(name, "ok").inc()
        return result
