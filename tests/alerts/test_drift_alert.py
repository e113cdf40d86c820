"""End to end (#9 with #7): a simulated topic shift through a real gateway is detected by
the drift monitor and fires the ``drift`` alert to a webhook, once (evaluating again
while it still drifts sends nothing more)."""

from __future__ import annotations

import asyncio

import keel.drift_alerts  # noqa: F401  (registers the drift kind, as the server does)
from keel.alerts import AlertEngine
from keel.monitor import hashing_embedder, simulate
from tests.alerts.conftest import Receiver, alert_settings
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory


def test_a_simulated_topic_shift_fires_one_drift_alert_to_the_webhook(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, receiver: Receiver
) -> None:
    gateway = gateway_factory({"chat": [upstream]})
    engine = gateway.app.engine
    report = asyncio.run(
        simulate(
            gateway.url,
            shift="topic",
            model="chat",
            requests=80,
            engine=engine,
            embedder=hashing_embedder(),
            settle=0.3,
        )
    )
    assert "input_embedding" in report.drifted
    settings = alert_settings(
        receiver, {"name": "topic-drift", "kind": "drift", "route": "chat", "signals": ["input_embedding"]}
    )
    alerts = AlertEngine(settings, engine)

    async def evaluate_twice() -> None:
        await alerts.evaluate_once()
        await alerts.evaluate_once()  # still drifting: no second message

    asyncio.run(evaluate_twice())
    assert receiver.states("topic-drift") == ["firing"]
    message = receiver.received[0]
    assert message["labels"] == {"route": "chat", "signal": "input_embedding"}
    assert "input_embedding drifted on chat" in message["summary"]
