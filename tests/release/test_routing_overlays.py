"""The router's runtime deployments (canary and live overlays), without a server."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.core import (
    DeploymentSettings,
    KeelSettings,
    ProviderSettings,
    RouteSettings,
)
from keel.gateway import Router, build_router
from keel.gateway._routing import RELEASE_LOCAL_PROVIDER


@dataclass(frozen=True)
class Overlay:
    route: str
    name: str
    path: str
    share: float
    state: str
    provider: str | None = "up"


def _router(tmp_path: Path, strategy: str = "weighted") -> Router:
    settings = KeelSettings(
        home=tmp_path,
        providers={"up": ProviderSettings(type="openai", base_url="http://127.0.0.1:9/v1")},
        models={
            "chat": RouteSettings(
                strategy=strategy,
                deployments=[
                    DeploymentSettings(provider="up", model="a", name="prod-a"),
                    DeploymentSettings(provider="up", model="b", name="prod-b"),
                ],
            ),
            "other": RouteSettings(deployments=[DeploymentSettings(provider="up", model="c", name="other")]),
        },
    )
    # The providers are never called here: choosing is all these tests do.
    return build_router(settings, {"up": object()})  # type: ignore[dict-item]


def _draws(router: Router, n: int, route: str = "chat") -> dict[str, int]:
    counts: dict[str, int] = {}
    chosen = router.get(route)
    for _ in range(n):
        state = chosen.choose()
        assert state is not None
        counts[state.deployment.name] = counts.get(state.deployment.name, 0) + 1
    return counts


@pytest.mark.parametrize("strategy", ["weighted", "least_inflight", "lowest_latency"])
def test_a_canary_takes_its_share_exactly_in_expectation(tmp_path: Path, strategy: str) -> None:
    random.seed(7)
    router = _router(tmp_path, strategy)
    assert router.set_overlays([Overlay("chat", "m@v2", "m-v2", 0.3, "canary")]) == []
    n = 20_000
    counts = _draws(router, n)
    sigma = math.sqrt(n * 0.3 * 0.7)
    assert abs(counts["m@v2"] - 0.3 * n) < 4 * sigma, counts
    # Production keeps the rest, split by its own strategy.
    assert counts["prod-a"] + counts["prod-b"] == n - counts["m@v2"]
    assert counts["prod-a"] > 0 and counts["prod-b"] > 0
    # Other routes are untouched.
    assert _draws(router, 50, "other") == {"other": 50}


def test_live_replaces_the_configuration_and_clearing_restores_it(tmp_path: Path) -> None:
    router = _router(tmp_path)
    router.set_overlays([Overlay("chat", "m@v2", "m-v2", 1.0, "live")])
    assert _draws(router, 100) == {"m@v2": 100}
    # A canary on top of a live deployment shares the route with it.
    router.set_overlays(
        [Overlay("chat", "m@v2", "m-v2", 1.0, "live"), Overlay("chat", "m@v3", "m-v3", 0.5, "canary")]
    )
    assert set(_draws(router, 200)) == {"m@v2", "m@v3"}
    router.set_overlays([])
    assert set(_draws(router, 200)) == {"prod-a", "prod-b"}
    assert router.get("chat").canary is None


def test_state_survives_reloads_and_retries_avoid_a_failed_canary(tmp_path: Path) -> None:
    router = _router(tmp_path)
    overlay = Overlay("chat", "m@v2", "m-v2", 1.0, "canary")
    router.set_overlays([overlay])
    route = router.get("chat")
    assert route.canary is not None
    canary = route.canary[0]
    router.set_overlays([overlay])
    assert route.canary[0] is canary  # same breaker and latency across polls
    # share 1.0: every first attempt goes to the canary; a retry goes to production.
    assert route.choose() is canary
    retry = route.choose(exclude=[canary])
    assert retry is not None and retry.deployment.name in {"prod-a", "prod-b"}
    # Production down (breakers open): the canary takes the call even beyond its share.
    router.set_overlays([Overlay("chat", "m@v2", "m-v2", 0.01, "canary")])
    for state in route.deployments:
        for _ in range(10):
            state.breaker.on_failure()
    assert {route.choose() for _ in range(20)} == {canary}


def test_overlays_for_unknown_routes_or_providers_are_skipped(tmp_path: Path) -> None:
    router = _router(tmp_path)
    problems = router.set_overlays(
        [
            Overlay("nope", "m@v2", "m-v2", 0.5, "canary"),
            Overlay("chat", "m@v3", "m-v3", 0.5, "canary", provider="missing"),
            Overlay("chat", "m@v1", "m-v1", 0.5, "retired"),
        ]
    )
    assert len(problems) == 2
    assert "no route 'nope'" in problems[0] and "missing" in problems[1]
    assert router.get("chat").canary is None


def test_a_local_overlay_gets_a_local_provider_of_the_routers_own(tmp_path: Path) -> None:
    router = _router(tmp_path)
    router.set_overlays([Overlay("chat", "m@v2", str(tmp_path / "model"), 0.2, "canary", provider=None)])
    canary = router.get("chat").canary
    assert canary is not None
    state = canary[0]
    assert state.deployment.provider == RELEASE_LOCAL_PROVIDER
    assert state.deployment.model == str(tmp_path / "model")
    assert type(state.provider).__name__ == "LocalProvider"
    asyncio.run(router.aclose())
