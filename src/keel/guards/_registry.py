"""``@guard``: the registry of scanner factories, and building a scanner from settings.

A factory is a function whose keyword arguments are the scanner's settings, typed;
``build_scanner`` validates the settings from keel.yaml against that signature (so a
wrong type or an unknown key is a ``ConfigError`` with its location) and calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ConfigDict, ValidationError, validate_call

from keel.core import ConfigError, ConfigProblem, Registry
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
    where = location or f"guard {name}"
    try:
        factory = _registry.get(name)
    except Exception as exc:  # NotFound from the registry, or a broken entry point
        message = getattr(exc, "message", str(exc))
        raise ConfigError([ConfigProblem(where, message)]) from None
    checked = validate_call(config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))(factory)
    try:
        return checked(**dict(settings or {}))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            message = error["msg"]
            if error["type"] == "unexpected_keyword_argument":
                message = f"unknown setting for guard {name!r}"
            problems.append(ConfigProblem(f"{where}.{loc}" if loc else where, message))
        raise ConfigError(problems) from None
    except ValueError as exc:
        # Factories check what a type cannot say (a regex that does not compile).
        raise ConfigError([ConfigProblem(where, str(exc))]) from None
