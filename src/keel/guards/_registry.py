"""``@guard``: the registry of scanner factories, and building a scanner from settings.

A factory is a function whose keyword arguments are the scanner's settings, typed;
``build_scanner`` validates the settings from keel.yaml against that signature (so a
wrong type or an unknown key is a ``ConfigError`` with its location) and calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keel.core import Registry
from keel.guards._result import Scanner

ScannerFactory = Callable[..., Scanner]

_registry: Registry[ScannerFactory] = Registry("guard")


def guard(name: str) -> Callable[[ScannerFactory], ScannerFactory]:
    """Register a scanner factory under ``name`` (``@guard("pii")``)."""
    return _registry.register(name)


def guards() -> list[str]:
    """Names of every registered scanner."""
    return _registry.names()


def build_scanner(name: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Scanner:
    """The scanner ``name`` built with ``settings``; ``location`` prefixes problems
    (``guards.policies.strict.input[0]``)."""
    scanner: Scanner = _registry.build(name, settings, location=location or f"guard {name}")
    return scanner
