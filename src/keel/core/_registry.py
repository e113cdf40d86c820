"""Typed decorator registries (``@provider``, later ``@guard``, ``@scorer`` ...).

A registry maps a name to a factory. Third-party packages add entries through the
``keel`` entry-point group (``<registry>.<name> = module:factory``), loaded on first
lookup so that importing Keel stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import ConfigDict, ValidationError, validate_call

from keel.core._errors import ConfigError, ConfigProblem, NotFound

F = TypeVar("F", bound=Callable[..., object])


class SettingError(ValueError):
    """A factory's check of one setting that its type cannot express (a regex that does
    not compile): ``Registry.build`` reports it at ``<location>.<setting>``."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.message = message


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

    def build(self, name: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Any:
        """``name``'s factory called with ``settings``, checked against its signature: an
        unknown name, an unknown or missing setting, a wrong type or a factory's own
        refusal (``SettingError``, ``ValueError``) is a ``ConfigError`` located under
        ``location`` (``guards.policies.strict.input[0].regex.pattern``)."""
        where = location or f"{self.kind} {name}"
        try:
            factory = self.get(name)
        except Exception as exc:  # NotFound from the registry, or a broken entry point
            raise ConfigError([ConfigProblem(where, getattr(exc, "message", str(exc)))]) from None
        if settings is not None and not isinstance(settings, Mapping):
            raise ConfigError(
                [ConfigProblem(where, f"settings must be a mapping, not {type(settings).__name__}")]
            )
        checked = validate_call(config=ConfigDict(extra="forbid", arbitrary_types_allowed=True))(factory)
        try:
            return checked(**dict(settings or {}))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                loc = ".".join(str(part) for part in error["loc"])
                message = error["msg"]
                if error["type"] == "unexpected_keyword_argument":
                    message = f"unknown setting for {self.kind} {name!r}"
                elif error["type"] == "missing_argument":
                    message = f"required setting for {self.kind} {name!r}"
                problems.append(ConfigProblem(f"{where}.{loc}" if loc else where, message))
            raise ConfigError(problems) from None
        except SettingError as exc:
            raise ConfigError([ConfigProblem(f"{where}.{exc.setting}", exc.message)]) from None
        except ValueError as exc:
            raise ConfigError([ConfigProblem(where, str(exc))]) from None

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
