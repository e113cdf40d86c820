"""Model routes: a public model name → its deployments, and how one is chosen.

Strategies (``RouteSettings.strategy``):

- ``weighted``: random by configured weight;
- ``least_inflight``: fewest calls in flight now (ties broken by weight);
- ``lowest_latency``: lowest moving average of recent successful latencies; a
  deployment with no measurement yet is tried first, so every one gets measured.

A deployment is *available* when its circuit breaker allows a call and it is not
cooling down after a 429 with ``Retry-After``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from keel.core import (
    BreakerPolicy,
    KeelSettings,
    NotFound,
    RouteSettings,
    effective_timeouts,
)
from keel.gateway._breaker import CircuitBreaker
from keel.providers import Deployment, Provider

# Weight of the newest sample in the latency moving average.
_EWMA_ALPHA = 0.3


@dataclass(eq=False)
class DeploymentState:
    deployment: Deployment
    provider: Provider
    breaker: CircuitBreaker
    in_flight: int = 0
    latency_ewma: float | None = None
    cooldown_until: float = 0.0

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until and self.breaker.allows()

    def record_latency(self, seconds: float) -> None:
        prev = self.latency_ewma
        self.latency_ewma = seconds if prev is None else prev + _EWMA_ALPHA * (seconds - prev)


@dataclass(eq=False)
class Route:
    name: str
    settings: RouteSettings
    deployments: list[DeploymentState]
    fallbacks: list[str] = field(default_factory=list)

    def cooldown_remaining(self) -> float | None:
        """Seconds until a deployment whose breaker allows calls ends its cooldown, or
        None when none is merely cooling down."""
        now = time.monotonic()
        waits = [d.cooldown_until - now for d in self.deployments if d.breaker.allows()]
        return max(0.0, min(waits)) if waits else None

    def choose(self, exclude: Iterable[DeploymentState] = ()) -> DeploymentState | None:
        """Pick a deployment by the route's strategy among the available ones, preferring
        those not in ``exclude`` (already failed in this request). None if none is
        available at all."""
        if len(self.deployments) == 1 and not exclude:
            only = self.deployments[0]
            return only if only.available(time.monotonic()) else None
        now = time.monotonic()
        available = [d for d in self.deployments if d.available(now)]
        if not available:
            return None
        excluded = set(exclude)
        fresh = [d for d in available if d not in excluded]
        candidates = fresh or available
        if len(candidates) == 1:
            return candidates[0]
        strategy = self.settings.strategy
        if strategy == "least_inflight":
            low = min(d.in_flight for d in candidates)
            candidates = [d for d in candidates if d.in_flight == low]
        elif strategy == "lowest_latency":
            unmeasured = [d for d in candidates if d.latency_ewma is None]
            if unmeasured:
                candidates = unmeasured
            else:
                return min(candidates, key=lambda d: d.latency_ewma or 0.0)
        if len(candidates) == 1:
            return candidates[0]
        return random.choices(candidates, weights=[d.deployment.weight for d in candidates])[0]


class Router:
    """All routes of a configuration, with the live state of their deployments."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        self._chains: dict[str, list[Route]] = {}

    def get(self, model: str) -> Route:
        try:
            return self.routes[model]
        except KeyError:
            raise NotFound(
                f"The model '{model}' does not exist or is not served by this gateway.",
                param="model",
                code="model_not_found",
            ) from None

    def chain(self, route: Route) -> list[Route]:
        """The route followed by its fallback routes, depth-first, each at most once."""
        chain = self._chains.get(route.name)
        if chain is None:
            chain = self._chains[route.name] = self._build_chain(route)
        return chain

    def _build_chain(self, route: Route) -> list[Route]:
        seen: set[str] = set()
        out: list[Route] = []

        def visit(r: Route) -> None:
            if r.name in seen:
                return
            seen.add(r.name)
            out.append(r)
            for fb in r.fallbacks:
                if fb in self.routes:
                    visit(self.routes[fb])

        visit(route)
        return out

    def deployment_states(self) -> list[DeploymentState]:
        seen: dict[int, DeploymentState] = {}
        for route in self.routes.values():
            for d in route.deployments:
                seen.setdefault(id(d), d)
        return list(seen.values())


def build_router(settings: KeelSettings, providers: Mapping[str, Provider]) -> Router:
    """Routes from configuration. A deployment named the same in several routes shares
    one state (one breaker, one in-flight count): it is the same upstream."""
    states: dict[str, DeploymentState] = {}
    routes: dict[str, Route] = {}
    policy: BreakerPolicy = settings.breaker
    for route_name, route_settings in settings.models.items():
        deps: list[DeploymentState] = []
        for ds in route_settings.deployments:
            name = ds.effective_name
            state = states.get(name)
            if state is None:
                deployment = Deployment(
                    name=name,
                    provider=ds.provider,
                    model=ds.model,
                    weight=ds.weight,
                    timeouts=effective_timeouts(settings, ds),
                    params=dict(ds.params),
                    tokenizer=route_settings.tokenizer,
                )
                state = DeploymentState(deployment, providers[ds.provider], CircuitBreaker(policy))
                states[name] = state
            deps.append(state)
        routes[route_name] = Route(route_name, route_settings, deps, list(route_settings.fallbacks))
    return Router(routes)
