"""``@notifier``: the registry of notification channel types, and delivery with retries.

A notifier factory is a function whose keyword arguments are the channel type's settings
(``url``, ``host`` ...), typed; it returns a ``Notifier``, whose ``send`` delivers one
message or raises. ``Channel.deliver`` tries ``1 + retries`` times with exponential
backoff and never raises: the outcome goes into the alert's history instead, so a dead
webhook cannot stop the evaluator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from keel.core import Registry

log = logging.getLogger("keel.alerts")


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What a channel tells: one firing or resolved transition of one series."""

    alert: str  # the rule's name
    kind: str
    state: str  # "firing" or "resolved"
    severity: str
    summary: str
    value: float | None
    threshold: float | None
    labels: Mapping[str, str] = field(default_factory=dict)
    team_id: str | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    url: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The generic webhook payload."""
        return {
            "alert": self.alert,
            "kind": self.kind,
            "state": self.state,
            "severity": self.severity,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "labels": dict(self.labels),
            "team_id": self.team_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "url": self.url,
        }

    @property
    def title(self) -> str:
        """``[FIRING] chat-latency (critical)``: a subject line."""
        return f"[{self.state.upper()}] {self.alert} ({self.severity})"


def sample_message(channel: str, at: datetime, url: str | None = None) -> AlertMessage:
    """What ``keel alerts test CHANNEL`` sends."""
    return AlertMessage(
        alert="keel-test",
        kind="test",
        state="firing",
        severity="info",
        summary=f"Test notification from Keel to channel {channel}: delivery works.",
        value=None,
        threshold=None,
        labels={"channel": channel},
        started_at=at,
        url=url,
    )


class Notifier(Protocol):
    async def send(self, message: AlertMessage, *, timeout: float) -> None:
        """Deliver ``message`` within ``timeout`` seconds, or raise."""
        ...


NotifierFactory = Callable[..., Notifier]

_registry: Registry[NotifierFactory] = Registry("notifier")


def notifier(name: str) -> Callable[[NotifierFactory], NotifierFactory]:
    """Register a notification channel type under ``name`` (``@notifier("webhook")``)."""
    return _registry.register(name)


def notifiers() -> list[str]:
    return _registry.names()


def build_notifier(kind: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Notifier:
    built: Notifier = _registry.build(kind, settings, location=location or f"notifier {kind}")
    return built


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one message on one channel, as the history records it."""

    ok: bool
    attempts: int
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "attempts": self.attempts, "error": self.error}


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    notifier: Notifier
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 10.0

    async def deliver(self, message: AlertMessage) -> Delivery:
        """Send with retries; the last error is returned, never raised."""
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                await asyncio.wait_for(self.notifier.send(message, timeout=self.timeout), self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of a channel is the channel's, not ours
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning(
                    "alert %s: channel %s attempt %d failed: %s", message.alert, self.name, attempt, error
                )
                if attempt <= self.retries:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            return Delivery(True, attempt)
        log.error("alert %s (%s): channel %s gave up: %s", message.alert, message.state, self.name, error)
        return Delivery(False, self.retries + 1, error)
