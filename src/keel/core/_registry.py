"""Typed decorator registries (``@provider``, later ``@guard``, ``@scorer`` ...).

A registry maps a name to a factory. Third-party packages add entries through the
``keel`` entry-point group (``<registry>.<name> = module:factory``), loaded on first
lookup so that importing Keel stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from keel.core._errors import NotFound

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Named factories of one kind. ``kind`` names the registry in errors and in the
    entry-point names (``provider.openai``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, F] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> F:
        if name not in self._factories:
            self._load_entry_points()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise NotFound(f"unknown {self.kind} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        prefix = f"{self.kind}."
        for ep in entry_points(group="keel"):
            if ep.name.startswith(prefix):
                self._factories.setdefault(ep.name[len(prefix) :], ep.load())
