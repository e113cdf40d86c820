"""Gateways on real ports (the gateway tests' harness) and an OTLP/HTTP trace receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.conftest import gateway_factory, make_deployment  # noqa: F401 (fixtures)
from tests.telemetry.otlp_receiver import OtlpReceiver


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver
