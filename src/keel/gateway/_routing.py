"""Model routes: a public model name → its deployments, and how one is chosen.

Strategies (``RouteSettings.strategy``):

- ``weighted``: random by configured weight;
- ``least_inflight``: fewest calls in flight now (ties broken by weight);
- ``lowest_latency``: lowest moving average of recent successful latencies; a
  deployment with no measurement yet is tried first, so every one gets measured.

A deployment is *available* when its circuit breaker allows a call and it is not
cooling down after a 429 with ``Retry-After``.

Runtime deployments (``Router.set_overlays``: model releases, see keel.release) sit on
top of the configuration without a restart. A ``live`` one replaces a route's
configured deployments; a ``canary`` one takes ``share`` of the route's calls (a
uniform draw per call, so exactly ``share`` in expectation) and the route's own
deployments, chosen by its strategy, the rest. A retry after a failed canary goes to
the others, and the canary takes every call when none of them is available.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from keel.core import (
    BreakerPolicy,
    KeelSettings,
    NotFound,
    ProviderSettings,
    RouteSettings,
    effective_timeouts,
)
from keel.gateway._breaker import CircuitBreaker
from keel.providers import Deployment, Provider, build_provider

log = logging.getLogger("keel.gateway")

# The provider entry of the local provider the router builds for runtime deployments
# when the configuration has none of type ``local``.
RELEASE_LOCAL_PROVIDER = "keel-release-local"

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


class RuntimeDeployment(Protocol):
    """A deployment added to a route at run time (keel.release's ``ModelDeployment``
    has these attributes). ``path``: the model id the provider gets (a model directory
    for ``local``); ``provider``: a configured provider entry, None for a local one."""

    @property
    def route(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def share(self) -> float: ...
    @property
    def state(self) -> str: ...


@dataclass(eq=False)
class Route:
    name: str
    settings: RouteSettings
    deployments: list[DeploymentState]
    fallbacks: list[str] = field(default_factory=list)
    # The configured deployments (``deployments`` is these, or a live runtime one).
    configured: list[DeploymentState] = field(default_factory=list)
    # A canary and its share of the calls, set (and read) as one value so that a
    # request never sees one canary with another's share.
    canary: tuple[DeploymentState, float] | None = None

    def __post_init__(self) -> None:
        if not self.configured:
            self.configured = list(self.deployments)

    def cooldown_remaining(self) -> float | None:
        """Seconds until a deployment whose breaker allows calls ends its cooldown, or
        None when none is merely cooling down."""
        now = time.monotonic()
        states = list(self.deployments)
        canary = self.canary
        if canary is not None:
            states.append(canary[0])
        waits = [d.cooldown_until - now for d in states if d.breaker.allows()]
        return max(0.0, min(waits)) if waits else None

    def choose(self, exclude: Iterable[DeploymentState] = ()) -> DeploymentState | None:
        """Pick a deployment by the route's strategy among the available ones, preferring
        those not in ``exclude`` (already failed in this request). None if none is
        available at all. With a canary, it is picked first with its share."""
        canary = self.canary
        if canary is None:
            return self._choose(exclude)
        state, share = canary
        exclude = set(exclude)
        usable = state.available(time.monotonic())
        if usable and state not in exclude and random.random() < share:
            return state
        picked = self._choose(exclude)
        if picked is None or (picked in exclude and usable and state not in exclude):
            # The route's own deployments are all down (or failed already): the canary
            # is better than nothing.
            return state if usable else picked
        return picked

    def _choose(self, exclude: Iterable[DeploymentState] = ()) -> DeploymentState | None:
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
    """All routes of a configuration, with the live state of their deployments.
    ``settings`` and ``providers`` are needed only for runtime deployments."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        settings: KeelSettings | None = None,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self._chains: dict[str, list[Route]] = {}
        self._settings = settings
        self._providers = dict(providers or {})
        self._own_providers: dict[str, Provider] = {}
        # One state per runtime deployment, kept across reloads (its breaker, latency).
        self._runtime: dict[tuple[str, str, str], DeploymentState] = {}
        self._overlay_lock = threading.Lock()

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
            for d in [*route.configured, *route.deployments, *([route.canary[0]] if route.canary else [])]:
                seen.setdefault(id(d), d)
        return list(seen.values())

    # -- runtime deployments -------------------------------------------------------

    def set_overlays(self, overlays: Iterable[RuntimeDeployment]) -> list[str]:
        """Make ``overlays`` (the ``canary`` and ``live`` runtime deployments) the only
        ones: routes without one go back to their configuration. Safe to call from any
        thread; each route switches at once. Returns the problems with overlays that
        were skipped (an unknown route or provider)."""
        problems: list[str] = []
        live: dict[str, DeploymentState] = {}
        canaries: dict[str, tuple[DeploymentState, float]] = {}
        with self._overlay_lock:
            for overlay in overlays:
                if overlay.state not in ("canary", "live"):
                    continue
                if overlay.route not in self.routes:
                    problems.append(f"{overlay.name}: this gateway serves no route {overlay.route!r}")
                    continue
                try:
                    state = self._runtime_state(overlay)
                except (NotFound, ValueError) as exc:
                    problems.append(f"{overlay.name}: {exc}")
                    continue
                if overlay.state == "live":
                    live[overlay.route] = state
                else:
                    canaries[overlay.route] = (state, min(1.0, max(0.0, overlay.share)))
            for name, route in self.routes.items():
                route.deployments = [live[name]] if name in live else list(route.configured)
                route.canary = canaries.get(name)
        for problem in problems:
            log.warning("runtime deployment skipped: %s", problem)
        return problems

    def _runtime_state(self, overlay: RuntimeDeployment) -> DeploymentState:
        if self._settings is None:
            raise ValueError("this router was built without settings: no runtime deployments")
        provider_name = overlay.provider or self._local_provider()
        provider = self._providers.get(provider_name) or self._own_providers.get(provider_name)
        if provider is None:
            raise NotFound(f"unknown provider {provider_name!r}")
        key = (overlay.name, provider_name, overlay.path)
        state = self._runtime.get(key)
        if state is None:
            deployment = Deployment(
                name=overlay.name,
                provider=provider_name,
                model=overlay.path,
                timeouts=self._settings.timeouts,
                tokenizer=self.routes[overlay.route].settings.tokenizer,
            )
            state = DeploymentState(deployment, provider, CircuitBreaker(self._settings.breaker))
            self._runtime[key] = state
        return state

    def _local_provider(self) -> str:
        """The configured ``local`` provider, else one of the router's own."""
        assert self._settings is not None
        for name, provider_settings in self._settings.providers.items():
            if provider_settings.type == "local" and name in self._providers:
                return name
        if RELEASE_LOCAL_PROVIDER not in self._own_providers:
            self._own_providers[RELEASE_LOCAL_PROVIDER] = build_provider(
                RELEASE_LOCAL_PROVIDER, ProviderSettings(type="local"), self._settings.home
            )
        return RELEASE_LOCAL_PROVIDER

    async def aclose(self) -> None:
        """Close the providers the router built for runtime deployments."""
        own, self._own_providers = self._own_providers, {}
        for provider in own.values():
            await provider.aclose()


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
    return Router(routes, settings=settings, providers=providers)
