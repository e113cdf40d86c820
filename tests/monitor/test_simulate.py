"""``simulate`` through a real gateway (in front of the fake upstream, which echoes the
question): the shifted phase is detected, by the signal the shift moves."""

from __future__ import annotations

import asyncio

import pytest

from keel.monitor import generate, hashing_embedder, latest_drift, simulate
from keel.monitor._workload import DEGRADED_SYSTEM_PROMPT
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory


@pytest.mark.parametrize(("shift", "expected"), [("topic", "input_embedding"), ("language", "language")])
def test_a_simulated_shift_through_the_gateway_is_detected(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, shift: str, expected: str
) -> None:
    gateway = gateway_factory({"chat": [upstream]})
    report = asyncio.run(
        simulate(
            gateway.url,
            shift=shift,  # type: ignore[arg-type]
            model="chat",
            requests=80,
            engine=gateway.app.engine,
            embedder=hashing_embedder(),
            settle=0.3,
        )
    )
    assert [p.sent for p in report.phases] == [80, 80] and all(p.failed == 0 for p in report.phases)
    assert report.detected and expected in report.drifted, [
        (r.signal, r.score, r.p_value) for r in report.results
    ]
    # Stored like the server's own results: what the drift alert reads.
    stored = {r.signal: r for r in latest_drift(gateway.app.engine, route="chat")}
    assert stored[expected].drifted


def test_the_degraded_model_shift_asks_through_a_system_prompt() -> None:
    requests = generate(5, "model", seed=1)
    assert all(
        r.body["messages"][0] == {"role": "system", "content": DEGRADED_SYSTEM_PROMPT} for r in requests
    )
    assert [r.body for r in generate(5, seed=3)] == [r.body for r in generate(5, seed=3)]
    with pytest.raises(ValueError, match="unknown shift 'weather'"):
        generate(1, "weather")  # type: ignore[arg-type]
