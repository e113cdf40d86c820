"""Settings of alerting (``alerts:`` in keel.yaml): rules, notification channels and how
often the server evaluates them::

    alerts:
      interval: 30s                   # how often the server evaluates every rule
      console_url: https://keel.example.com/ui/alerts   # the link in notifications
      channels:
        ops:                          # a channel's name; its type defaults to the name
          type: webhook
          url: https://hooks.example.com/keel
        slack:
          url: ${SLACK_WEBHOOK_URL}
        oncall:
          type: email
          host: smtp.example.com
          from: keel@example.com
          to: [oncall@example.com]
          username: keel
          password: ${SMTP_PASSWORD}
      rules:
        - name: team-budget
          kind: budget_used           # see keel.alerts for every kind and its settings
          threshold: 80               # percent of the limit
          filters: {scope: team}
          channels: [slack]
        - name: chat-latency
          kind: latency_p95
          threshold: 2000             # milliseconds
          window: 5m
          for: 2m                     # must hold this long before it fires
          severity: critical
          filters: {route: gpt-4o}
          channels: [ops, oncall]

A rule's keys other than those below are its kind's own settings (``min_requests``,
``method`` ...); they, ``filters`` and every channel's own settings are checked against
the kind's or channel type's factory by ``keel.alerts.build_rules``, with locations such
as ``alerts.rules[1].filters.route``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Seconds from ``90``, ``90s``, ``5m``, ``1.5h``, ``2d``, ``250ms``; anything else is
    left for pydantic to refuse with its own message."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 5m, 1h, 1d)")
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]


class AlertRuleSettings(BaseModel):
    """One rule: what to watch (``kind``, ``filters``, its own settings as further keys),
    when it is bad (``threshold`` over ``window``, held ``for``), and whom to tell."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, serialize_by_alias=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    kind: str = Field(min_length=1)
    # In the kind's unit (percent for shares, milliseconds for latencies ...). Some kinds
    # have their own default (budget_used: each budget's alert_at_fraction).
    threshold: float | None = None
    window: Duration = Field(300.0, gt=0)
    for_: Duration = Field(0.0, ge=0, alias="for")
    severity: Severity = "warning"
    channels: list[str] = Field(default_factory=list)
    filters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The kind's own settings (every key not declared above)."""
        return dict(self.model_extra or {})


class ChannelSettings(BaseModel):
    """One notification channel: ``type`` (a registered notifier; default: the channel's
    name), how hard to try, and the type's own settings as further keys."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str | None = None
    # Tries after the first one fails, waiting ``backoff`` seconds, then twice that ...
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(1.0, ge=0, le=300)
    timeout: float = Field(10.0, gt=0, le=300)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Seconds between two evaluations of every rule by the server.
    interval: Duration = Field(30.0, gt=0)
    rules: list[AlertRuleSettings] = Field(default_factory=list)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    # Where the console's alerts page is: the ``url`` of every notification (None: none).
    console_url: str | None = None
