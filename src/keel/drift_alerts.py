"""The ``drift`` alert kind: where keel.monitor (drift results) meets keel.alerts (rules
and notifications). The two packages are siblings and do not import each other; this
module, imported by the composition root and by ``keel config check``, registers the
kind.

    alerts:
      rules:
        - {name: input drift, kind: drift, route: support, signals: [input_embedding]}

A series is one (route, signal) whose latest drift test flagged drift (value 1); it
resolves when a later window no longer drifts.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.alerts import Observation, Signal, SignalContext, alert_signal
from keel.monitor import latest_drift


class DriftSignal:
    # Fires on the drift test's own verdict (value 1): a rule needs no threshold.
    needs_threshold = False

    def __init__(self, route: str | None, signals: Sequence[str]) -> None:
        self.route = route
        self.signals = frozenset(signals)

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        observations = []
        for result in latest_drift(context.engine, route=self.route):
            if self.signals and result.signal not in self.signals:
                continue
            if result.score is None:
                continue
            where = result.route or "all routes"
            summary = (
                f"{result.signal} drifted on {where}: {result.detector} {result.score:.3g}"
                if result.drifted
                else f"{result.signal} on {where}: no drift ({result.detector} {result.score:.3g})"
            )
            observations.append(
                Observation(
                    {"route": result.route, "signal": result.signal},
                    1.0 if result.drifted else 0.0,
                    summary,
                    threshold=1.0,
                )
            )
        return observations


@alert_signal("drift")
def drift(route: str | None = None, signals: list[str] | None = None) -> Signal:
    """Drift found by the monitor (``keel monitor``) on ``route`` (default: any), for
    ``signals`` (default: every signal)."""
    return DriftSignal(route, signals or [])
