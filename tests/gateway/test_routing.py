"""Deployment choice, circuit breaker states and backoff, without a network."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from keel.core import BreakerPolicy, RetryPolicy, RouteSettings
from keel.gateway import CircuitBreaker, Route, backoff_delay
from keel.gateway._routing import DeploymentState
from keel.providers import Deployment


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _route(strategy: str, weights: list[float], policy: BreakerPolicy | None = None) -> Route:
    states = [
        DeploymentState(
            Deployment(name=f"d{i}", provider="p", model="m", weight=w),
            provider=None,  # type: ignore[arg-type]
            breaker=CircuitBreaker(policy or BreakerPolicy()),
        )
        for i, w in enumerate(weights)
    ]
    settings = RouteSettings(strategy=strategy, deployments=[{"provider": "p", "model": "m"}])  # type: ignore[arg-type, list-item]
    return Route("r", settings, states)


def _names(route: Route, n: int, **kwargs: Any) -> Counter[str]:
    picks: Counter[str] = Counter()
    for _ in range(n):
        state = route.choose(**kwargs)
        assert state is not None
        picks[state.deployment.name] += 1
    return picks


def test_weighted_follows_weights() -> None:
    random.seed(1)
    picks = _names(_route("weighted", [3, 1]), 4000)
    assert 0.70 < picks["d0"] / 4000 < 0.80


def test_least_inflight_prefers_the_idle_deployment() -> None:
    route = _route("least_inflight", [1, 1, 1])
    route.deployments[0].in_flight = 5
    route.deployments[1].in_flight = 1
    route.deployments[2].in_flight = 3
    assert _names(route, 50) == Counter({"d1": 50})


def test_lowest_latency_measures_everyone_then_picks_the_fastest() -> None:
    route = _route("lowest_latency", [1, 1])
    route.deployments[0].record_latency(0.5)
    assert _names(route, 20) == Counter({"d1": 20}), "an unmeasured deployment is tried first"
    route.deployments[1].record_latency(0.9)
    assert _names(route, 20) == Counter({"d0": 20})
    for _ in range(10):  # d0 slows down: the moving average follows
        route.deployments[0].record_latency(2.0)
    assert _names(route, 20) == Counter({"d1": 20})


def test_choice_avoids_failed_then_unavailable_deployments() -> None:
    route = _route("weighted", [1, 1])
    first, second = route.deployments
    assert _names(route, 30, exclude=[first]) == Counter({"d1": 30})
    # Everything failed already: still retry rather than give up.
    assert route.choose(exclude=[first, second]) is not None
    second.cooldown_until = 10**12
    assert _names(route, 30, exclude=[first]) == Counter({"d0": 30})
    first.cooldown_until = 10**12
    assert route.choose() is None
    assert route.cooldown_remaining() is not None


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, cooldown=10), clock=clock)
    for _ in range(2):
        breaker.on_attempt()
        breaker.on_failure()
    assert breaker.state == "closed"
    breaker.on_attempt()
    breaker.on_failure()
    assert breaker.state == "open"
    assert not breaker.allows()
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.allows()
    breaker.on_attempt()  # the one probe
    assert not breaker.allows(), "only one probe at a time in half-open"
    breaker.on_failure()
    assert breaker.state == "open", "a failed probe re-opens at once"
    clock.now += 10
    breaker.on_attempt()
    breaker.on_success()
    assert breaker.state == "closed"
    assert breaker.allows()


def test_breaker_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=2, cooldown=10), clock=FakeClock())
    breaker.on_failure()
    breaker.on_success()
    breaker.on_failure()
    assert breaker.state == "closed"


def test_abandoned_probe_frees_the_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, cooldown=1), clock=clock)
    breaker.on_failure()
    clock.now += 1
    breaker.on_attempt()
    breaker.on_abandoned()
    assert breaker.allows()


@pytest.mark.parametrize("retry", [1, 2, 3, 6])
def test_backoff_is_exponential_capped_and_jittered(retry: int) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4, jitter=False)
    assert backoff_delay(policy, retry) == min(4, 0.5 * 2 ** (retry - 1))
    jittered = RetryPolicy(backoff_base=0.5, backoff_max=4, jitter=True)
    delays = {backoff_delay(jittered, retry) for _ in range(50)}
    assert len(delays) > 40
    assert max(delays) <= min(4, 0.5 * 2 ** (retry - 1))
