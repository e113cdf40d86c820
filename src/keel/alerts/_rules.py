"""Building rules and channels from ``alerts:`` settings, with every problem located.

``build_rules`` is what ``keel config check`` runs and what ``AlertEngine`` runs at
start: an unknown kind or channel, a kind's setting of the wrong type, a missing
threshold or two rules of one name are a ``ConfigError`` listing each problem at its
place (``alerts.rules[2].filters.route``), which the config loader gives its line.
"""

from __future__ import annotations

from datetime import timedelta

from keel.alerts import _channels, _signals_log, _signals_store  # noqa: F401 (register the built-ins)
from keel.alerts._notify import Channel, build_notifier
from keel.alerts._signal import AlertRule, build_signal, needs_threshold
from keel.core import AlertSettings, ConfigError, ConfigProblem, KeelSettings


def _alert_settings(settings: AlertSettings | KeelSettings) -> AlertSettings:
    return settings.alerts if isinstance(settings, KeelSettings) else settings


def build_channels(settings: AlertSettings | KeelSettings) -> dict[str, Channel]:
    """Every channel of ``alerts.channels``, built; a ``ConfigError`` lists what is wrong."""
    alerts = _alert_settings(settings)
    channels: dict[str, Channel] = {}
    problems: list[ConfigProblem] = []
    for name, channel in alerts.channels.items():
        where = f"alerts.channels.{name}"
        try:
            built = build_notifier(channel.type or name, channel.options, location=where)
        except ConfigError as exc:
            if channel.type is None and exc.problems and exc.problems[0].location == where:
                message = f"{exc.problems[0].message}; set `type` when the name is not a channel type"
                problems.append(ConfigProblem(where, message))
            else:
                problems.extend(exc.problems)
            continue
        channels[name] = Channel(name, built, channel.retries, channel.backoff, channel.timeout)
    if problems:
        raise ConfigError(problems)
    return channels


def build_rules(settings: AlertSettings | KeelSettings) -> list[AlertRule]:
    """Every rule of ``alerts.rules``, validated (channels too: a rule names them)."""
    alerts = _alert_settings(settings)
    problems: list[ConfigProblem] = []
    try:
        build_channels(alerts)
    except ConfigError as exc:
        problems.extend(exc.problems)
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(alerts.rules):
        where = f"alerts.rules[{index}]"
        if rule.name in seen:
            problems.append(
                ConfigProblem(
                    f"{where}.name",
                    f"rule {rule.name!r} is already defined at alerts.rules[{seen[rule.name]}]",
                )
            )
        seen.setdefault(rule.name, index)
        for position, channel in enumerate(rule.channels):
            if channel not in alerts.channels:
                known = ", ".join(sorted(alerts.channels)) or "none are configured"
                problems.append(
                    ConfigProblem(
                        f"{where}.channels[{position}]", f"unknown channel {channel!r} (known: {known})"
                    )
                )
        try:
            # ``filters`` only when given: a kind registered elsewhere may take none.
            options = {**rule.options, "filters": rule.filters} if rule.filters else rule.options
            signal = build_signal(rule.kind, options, location=where)
        except ConfigError as exc:
            # An unknown kind is the ``kind`` key's problem, not the whole rule's.
            problems.extend(
                ConfigProblem(f"{where}.kind", p.message) if p.location == where else p for p in exc.problems
            )
            continue
        if rule.threshold is None and needs_threshold(signal):
            problems.append(ConfigProblem(f"{where}.threshold", f"required for kind {rule.kind!r}"))
            continue
        rules.append(
            AlertRule(
                name=rule.name,
                kind=rule.kind,
                signal=signal,
                threshold=rule.threshold,
                window=timedelta(seconds=rule.window),
                for_=timedelta(seconds=rule.for_),
                severity=rule.severity,
                channels=tuple(rule.channels),
                description=rule.description,
                options=rule.options,
            )
        )
    if problems:
        raise ConfigError(problems)
    return rules
