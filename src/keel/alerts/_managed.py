"""Alert rules managed in the console, stored in ``alert_rules`` beside keel.yaml's.

A managed rule is the same JSON as a keel.yaml ``alerts.rules`` entry and is checked by
the same code (the settings' rule model, then ``build_rules`` with the configured
channels), so a bad one is refused with the message keel.yaml would give, located under
``alert_rules[<name>]`` (``alert_rules[slow].threshold: required for kind ...``). Names
are unique across both sources: keel.yaml's rules cannot be changed here. Every change
is audited and bumps the ``alerts`` change topic in its own transaction, which is how
each process's ``AlertEngine`` learns to reload.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from keel.alerts._rules import build_rules
from keel.alerts._signal import AlertRule
from keel.alerts._tables import alert_rules
from keel.core import AlertSettings, ConfigError, ConfigProblem, KeelSettings, NotFound
from keel.store import append_audit, bump_change

TOPIC = "alerts"

log = logging.getLogger("keel.alerts")


@dataclass(frozen=True, slots=True)
class ManagedRule:
    name: str
    rule: dict[str, Any]  # as a keel.yaml rule entry (durations in seconds)
    enabled: bool
    created_by: str
    created_at: datetime


def _alerts(settings: AlertSettings | KeelSettings) -> AlertSettings:
    return settings.alerts if isinstance(settings, KeelSettings) else settings


def _where(data: Mapping[str, Any]) -> str:
    name = data.get("name")
    return f"alert_rules[{name}]" if isinstance(name, str) and name.strip() else "alert_rules[?]"


def _message(error: Mapping[str, Any]) -> str:
    # As the config loader words pydantic's errors, so both sources read alike.
    if error["type"] == "missing":
        return f"missing required key {error['loc'][-1]!r}" if error["loc"] else "missing required key"
    message: str = error["msg"]
    return message[0].lower() + message[1:] if message else str(error["type"])


def check_rule(data: Mapping[str, Any], settings: AlertSettings | KeelSettings) -> AlertRule:
    """The rule ``data`` describes, validated as keel.yaml's are; a ``ConfigError``
    lists every problem, located under ``alert_rules[<name>]``."""
    alerts = _alerts(settings)
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigProblem("alert_rules[?]", "a rule must be a mapping")])
    where = _where(data)
    try:
        # Through ``AlertSettings``: its rule model is what keel.yaml's entries become.
        rule = AlertSettings.model_validate({"rules": [dict(data)]}).rules[0]
    except ValidationError as exc:
        problems = [
            ConfigProblem(".".join([where, *(str(part) for part in error["loc"][2:])]), _message(error))
            for error in exc.errors()
        ]
        raise ConfigError(problems) from None
    for index, configured in enumerate(alerts.rules):
        if configured.name == rule.name:
            message = f"rule {rule.name!r} is already defined in keel.yaml at alerts.rules[{index}]"
            raise ConfigError([ConfigProblem(f"{where}.name", message)])
    try:
        # The rule alone with the configured channels: what ``build_rules`` checks of it.
        built = build_rules(alerts.model_copy(update={"rules": [rule]}))
    except ConfigError as exc:
        prefix = "alerts.rules[0]"
        raise ConfigError(
            [
                ConfigProblem(where + p.location[len(prefix) :], p.message)
                if p.location.startswith(prefix)
                else p
                for p in exc.problems
            ]
        ) from None
    return built[0]


def add_rule(
    engine: Engine,
    data: Mapping[str, Any],
    *,
    actor: str,
    settings: AlertSettings | KeelSettings,
    enabled: bool = True,
) -> str:
    """Store a new rule (``data`` as a keel.yaml rule entry); returns its name. An invalid
    rule, or a name keel.yaml or another managed rule has, is a ``ConfigError``."""
    check_rule(data, settings)
    rule = AlertSettings.model_validate({"rules": [dict(data)]}).rules[0]
    stored = rule.model_dump(mode="json", exclude_unset=True)
    taken = ConfigError(
        [ConfigProblem(f"{_where(data)}.name", f"a managed rule {rule.name!r} already exists")]
    )
    try:
        with engine.begin() as connection:
            exists = connection.execute(select(alert_rules.c.name).where(alert_rules.c.name == rule.name))
            if exists.first() is not None:
                raise taken
            connection.execute(
                insert(alert_rules).values(
                    name=rule.name,
                    rule=stored,
                    enabled=enabled,
                    created_by=actor[:255],
                    created_at=datetime.now(UTC),
                )
            )
            append_audit(
                connection,
                actor=actor,
                action="alert_rule.create",
                target_type="alert_rule",
                target_id=rule.name,
                after={"rule": stored, "enabled": enabled},
            )
            bump_change(connection, TOPIC)
    except IntegrityError:  # added by someone else since the check
        raise taken from None
    return rule.name


def delete_rule(engine: Engine, name: str, *, actor: str) -> None:
    """Delete a managed rule (``NotFound`` when there is none of that name); what it
    was firing is resolved by the evaluator's next round."""
    with engine.begin() as connection:
        row = connection.execute(select(alert_rules).where(alert_rules.c.name == name)).first()
        if row is None:
            raise NotFound(f"No managed alert rule {name!r}.", param="name")
        connection.execute(delete(alert_rules).where(alert_rules.c.name == name))
        append_audit(
            connection,
            actor=actor,
            action="alert_rule.delete",
            target_type="alert_rule",
            target_id=name,
            before={"rule": row.rule, "enabled": row.enabled},
        )
        bump_change(connection, TOPIC)


def list_managed_rules(engine: Engine) -> list[ManagedRule]:
    """Every managed rule, by name."""
    with engine.connect() as connection:
        rows = connection.execute(select(alert_rules).order_by(alert_rules.c.name)).all()
    return [ManagedRule(r.name, dict(r.rule), bool(r.enabled), r.created_by, r.created_at) for r in rows]


def build_managed_rules(
    managed: Sequence[ManagedRule], settings: AlertSettings | KeelSettings
) -> list[AlertRule]:
    """The enabled rules, built. One that no longer holds (a channel or kind since
    removed from keel.yaml, a name keel.yaml now has) is logged and left out: the
    others still run."""
    out = []
    for rule in managed:
        if not rule.enabled:
            continue
        try:
            out.append(check_rule(rule.rule, settings))
        except ConfigError as exc:
            log.warning("managed alert rule %s is not evaluated: %s", rule.name, exc)
    return out
