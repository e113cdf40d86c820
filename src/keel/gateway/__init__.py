"""The gateway: the OpenAI-compatible data plane that routes and records every call."""

from keel.gateway._app import Gateway, GatewayApp, create_app
from keel.gateway._breaker import CircuitBreaker
from keel.gateway._dispatch import Dispatcher, backoff_delay
from keel.gateway._guarding import GuardPolicies
from keel.gateway._routing import Route, Router, build_router
from keel.gateway._services import GatewayServices
from keel.gateway._spend_gate import SpendGate

__all__ = [
    "CircuitBreaker",
    "Dispatcher",
    "Gateway",
    "GatewayApp",
    "GatewayServices",
    "GuardPolicies",
    "Route",
    "Router",
    "SpendGate",
    "backoff_delay",
    "build_router",
    "create_app",
]
