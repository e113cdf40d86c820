"""Canaries through a real gateway on a real port: the share shows in the request log,
rollback restores the previous deployment, and a failing canary is rolled back on its
own (fake upstreams stand in for the model versions)."""

from __future__ import annotations

import math
import time

from keel.release import (
    ReleaseSettings,
    check_canaries,
    promote,
    rollback,
    rollout,
    route_release,
)
from keel.store import read_audit
from tests.fakes import Fault
from tests.release.conftest import OPERATOR, ReleaseGatewayFactory, passing_gate


def _wait_applied(rg: object, predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("the gateway did not pick up the release change")


def _canary_of(rg: object) -> str | None:
    route = rg.gateway.app.gateway.router.get("chat")  # type: ignore[attr-defined]
    return route.canary[0].deployment.name if route.canary else None


def test_canary_share_shows_in_the_request_log_and_rollback_restores(
    release_gateway: ReleaseGatewayFactory, make_deployment: object
) -> None:
    production, canary = make_deployment(), make_deployment()  # type: ignore[operator]
    rg = release_gateway(production, canaries={"candidate": canary})
    passing_gate(rg.engine, "m", 2)
    promote(
        rg.engine, route="chat", model="m", version=2, path="fake-chat", share=0.3, actor=OPERATOR,
        provider="candidate",
    )  # fmt: skip
    # The watcher polls the change topic: no call into the gateway is needed.
    _wait_applied(rg, lambda: _canary_of(rg) == "m@v2")
    n = 200
    assert len(rg.chat(n)) == n
    served = rg.deployments_served()
    # Binomial(200, 0.3): mean 60, sd 6.5; 4.5 sd either side.
    tolerance = 4.5 * math.sqrt(n * 0.3 * 0.7)
    assert abs(served["m@v2"] - 0.3 * n) < tolerance, served
    assert served["m@v2"] + served[production.name] == n
    assert len(canary.requests()) == served["m@v2"]

    report = check_canaries(rg.engine, ReleaseSettings(min_requests=20))[0].report
    assert report.canary_requests == served["m@v2"] and report.verdict == "healthy"
    assert report.observed_share is not None and abs(report.observed_share - 0.3) < tolerance / n

    rollback(rg.engine, "chat", actor=OPERATOR, reason="enough")
    _wait_applied(rg, lambda: _canary_of(rg) is None)
    before = len(canary.requests())
    assert len(rg.chat(30)) == 30
    assert len(canary.requests()) == before  # production alone again


def test_rollout_then_rollback_brings_the_configuration_back(
    release_gateway: ReleaseGatewayFactory, make_deployment: object
) -> None:
    production, candidate = make_deployment(), make_deployment()  # type: ignore[operator]
    rg = release_gateway(production, canaries={"candidate": candidate})
    router = rg.gateway.app.gateway.router
    passing_gate(rg.engine, "m", 2)
    promote(
        rg.engine, route="chat", model="m", version=2, path="fake-chat", share=0.1, actor=OPERATOR,
        provider="candidate",
    )  # fmt: skip
    rollout(rg.engine, "chat", actor=OPERATOR)
    _wait_applied(rg, lambda: [s.deployment.name for s in router.get("chat").deployments] == ["m@v2"])
    rg.chat(10)
    assert len(candidate.requests()) == 10 and production.requests() == []
    rollback(rg.engine, "chat", actor=OPERATOR)
    _wait_applied(
        rg, lambda: [s.deployment.name for s in router.get("chat").deployments] == [production.name]
    )
    rg.chat(10)
    assert len(candidate.requests()) == 10 and len(production.requests()) == 10


def test_a_failing_canary_is_rolled_back_automatically(
    release_gateway: ReleaseGatewayFactory, make_deployment: object
) -> None:
    production, canary = make_deployment(), make_deployment()  # type: ignore[operator]
    canary.set_default(Fault(status=500))
    # No retries: the canary's failures reach the clients, so they are in the log as its own.
    rg = release_gateway(production, canaries={"candidate": canary}, retries=1)
    passing_gate(rg.engine, "m", 2)
    promote(
        rg.engine, route="chat", model="m", version=2, path="fake-chat", share=0.5, actor=OPERATOR,
        provider="candidate",
    )  # fmt: skip
    _wait_applied(rg, lambda: _canary_of(rg) == "m@v2")
    answered = rg.chat(80)
    rg.gateway.flush_log()
    assert 0 < len(answered) < 80
    # The periodic check (one round of it, as the watcher runs it every interval).
    [check] = rg.loop.run(rg.watcher.check())
    report = check.report
    assert report.verdict == "rollback"
    errors = next(c for c in report.checks if c.name == "error_rate")
    assert errors.crossed and errors.canary == 1.0 and errors.production == 0.0
    assert errors.p_value is not None and errors.p_value < 1e-6
    assert check.rolled_back is not None and check.rolled_back.retired.name == "m@v2"
    # check() reloads at once after a rollback.
    assert _canary_of(rg) is None
    assert len(rg.chat(20)) == 20
    assert route_release(rg.engine, "chat").canary is None
    [entry] = [
        e for e in read_audit(rg.engine, target_type="model_release") if e.action == "model.rollback.auto"
    ]
    assert entry.actor == "system:release-watcher"
    assert entry.after is not None and "error_rate" in entry.after["reason"]
