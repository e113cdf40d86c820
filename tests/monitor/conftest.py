"""Fixtures for the monitoring tests; the gateway fixtures come from tests/gateway."""

from __future__ import annotations

from tests.gateway.conftest import gateway_factory  # noqa: F401 (a fixture)
