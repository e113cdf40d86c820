"""``@alert_signal``: the registry of what a rule can watch, and the types a signal deals in.

A signal factory is a function whose keyword arguments are the kind's settings (a rule's
``filters`` and its other keys), typed; it returns a ``Signal``, whose ``observe`` reads
the store (in a worker thread) and returns one ``Observation`` per series: a label set
(``{"budget": "bud_1"}``, ``{"team": "t1"}``, ``{}`` for a rule with one series) and its
current value. The engine compares the value with the rule's threshold (``value >=
threshold`` is bad) and runs the state machine; a series not observed counts as fine.

Another package adds a kind with::

    from keel.alerts import Observation, SignalContext, alert_signal

    @alert_signal("drift")
    def drift(filters: DriftFilters = DriftFilters(), min_samples: int = 50) -> Signal:
        return DriftSignal(filters, min_samples)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from keel.core import Registry


@dataclass(frozen=True, slots=True)
class Observation:
    """One series of a rule as it is now. ``value`` None: no data (counts as fine)."""

    labels: Mapping[str, str]
    value: float | None
    # One line a person reads in a notification ("p95 latency 2,310 ms over 5m (412 requests)").
    summary: str
    # The team the series belongs to (a team budget, a rule filtered by team): a team's
    # console shows only its own alerts.
    team_id: str | None = None
    # This series' own threshold when the rule sets none (a budget's alert fraction).
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A validated rule (``build_rules``)."""

    name: str
    kind: str
    signal: Signal
    threshold: float | None
    window: timedelta
    for_: timedelta
    severity: str
    channels: tuple[str, ...]
    description: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignalContext:
    """What ``Signal.observe`` gets: the store, the evaluation time, the rule."""

    engine: Engine
    now: datetime
    rule: AlertRule

    @property
    def window(self) -> timedelta:
        return self.rule.window

    @property
    def start(self) -> datetime:
        """The start of the rule's window ending now."""
        return self.now - self.rule.window


class Signal(Protocol):
    def observe(self, context: SignalContext) -> Sequence[Observation]:
        """Every series of the rule now. Runs in a worker thread; may block on the store."""
        ...


# A signal whose series carry their own threshold (``Observation.threshold``) sets this
# False, so a rule of its kind may leave ``threshold`` out.
def needs_threshold(signal: Signal) -> bool:
    return bool(getattr(signal, "needs_threshold", True))


SignalFactory = Callable[..., Signal]

_registry: Registry[SignalFactory] = Registry("alert signal")


def alert_signal(name: str) -> Callable[[SignalFactory], SignalFactory]:
    """Register a signal factory under ``name`` (``@alert_signal("drift")``)."""
    return _registry.register(name)


def alert_signals() -> list[str]:
    """Names of every registered kind."""
    return _registry.names()


def build_signal(kind: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Signal:
    """The signal of ``kind`` built from a rule's settings; ``location`` prefixes problems
    (``alerts.rules[2]``)."""
    signal: Signal = _registry.build(kind, settings, location=location or f"alert signal {kind}")
    return signal


def format_window(window: timedelta) -> str:
    """``5m``, ``1h``, ``90s``: how a window reads in a summary."""
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
