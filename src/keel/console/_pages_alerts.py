"""Alerts: what is firing now, the history, and the rules, with a form that adds rules
managed in the console (stored in the database) and a button that deletes them.

keel.yaml's rules are listed read-only: they change with the file. Every key sees the
rules (a team's key its team's alerts only); only admin keys change them, and a team
key's POST is refused (403) whatever its form holds. A rule posted here goes through
the same validation as keel.yaml's (``keel.alerts.add_rule``); its problems are shown
beside the fields they are about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import RedirectResponse, Response

from keel.console._pages import PageContext, PageResult
from keel.core import AlertSettings, ConfigError, ConfigProblem, KeelError, PermissionDenied

SEVERITIES = ("info", "warning", "critical")
# The form's fields, in the order its problems are listed; "" gathers the others.
FIELDS = ("name", "kind", "threshold", "window", "for", "severity", "channels", "filters", "description")


@dataclass(frozen=True)
class RuleRow:
    name: str
    kind: str
    threshold: float | None
    window: str
    for_: str
    severity: str
    channels: str
    filters: str
    managed: bool  # False: from keel.yaml (read-only here)
    enabled: bool = True
    created_by: str | None = None
    created_at: datetime | None = None


def alerts_page(ctx: PageContext) -> PageResult | Response:
    # Imported here, when the page is asked for: the console does not need alerting to start.
    try:
        import keel.alerts as alerts
    except ImportError:
        return PageResult(
            "alerts.html",
            {"active": [], "history": [], "rules": [], "unavailable": "Alerting is not installed."},
        )
    problems: list[ConfigProblem] = []
    if ctx.method == "POST":
        if not ctx.viewer.is_admin:
            raise PermissionDenied("Only admin keys change alert rules.")
        actor = f"key:{ctx.viewer.principal.key_id} ({ctx.viewer.principal.name})"
        action = ctx.form.get("action", "")
        try:
            if action == "add":
                data = rule_from_form(ctx.form)
                name = alerts.add_rule(ctx.engine, data, actor=actor, settings=ctx.settings)
                # Post, redirect, get: a reload does not post the rule again.
                return RedirectResponse(ctx.url("/alerts", added=name), status_code=303)
            if action == "delete":
                name = ctx.form.get("name", "")
                alerts.delete_rule(ctx.engine, name, actor=actor)
                return RedirectResponse(ctx.url("/alerts", deleted=name), status_code=303)
            problems = [ConfigProblem("", f"Unknown action {action!r}.")]
        except ConfigError as exc:
            problems = exc.problems
        except KeelError as exc:
            problems = [ConfigProblem("", str(exc))]
    team_id = ctx.viewer.team_id
    channels = sorted(ctx.settings.alerts.channels)
    return PageResult(
        "alerts.html",
        {
            "active": alerts.active_alerts(ctx.engine, team_id=team_id),
            "history": alerts.alert_history(ctx.engine, limit=200, team_id=team_id),
            "rules": _rules(ctx, alerts.list_managed_rules(ctx.engine), alerts.format_window),
            "kinds": alerts.alert_signals(),
            "severities": SEVERITIES,
            "channels": channels,
            "can_edit": ctx.viewer.is_admin,
            "problems": problems,
            "field_errors": field_errors(problems),
            # A refused rule's fields come back as they were typed.
            "form": ctx.form if problems and ctx.form.get("action") == "add" else {},
            "added": ctx.params.get("added"),
            "deleted": ctx.params.get("deleted"),
        },
    )


def rule_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """A keel.yaml-shaped rule from the form's fields; what the values mean (a number,
    a duration) is left to the rule's validation, so its messages are keel.yaml's."""
    name = form.get("name", "").strip()
    data: dict[str, Any] = {"name": name, "kind": form.get("kind", "").strip()}
    for key in ("threshold", "window", "for", "severity", "description"):
        value = form.get(key, "").strip()
        if value:
            data[key] = value
    # One checkbox per channel (``channel.<name>``): the form arrives as a flat mapping.
    data["channels"] = sorted(key.removeprefix("channel.") for key in form if key.startswith("channel."))
    filters: dict[str, str] = {}
    for number, line in enumerate(form.get("filters", "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            where = f"alert_rules[{name or '?'}].filters"
            raise ConfigError([ConfigProblem(where, f"line {number}: write key=value, e.g. route=gpt-4o")])
        filters[key.strip()] = value.strip()
    if filters:
        data["filters"] = filters
    return data


def field_errors(problems: list[ConfigProblem]) -> dict[str, list[str]]:
    """Each problem under the form field it is about (``alert_rules[x].filters.route``:
    ``filters``); "" for those about no field."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        field = ""
        if problem.location.startswith("alert_rules["):
            rest = problem.location.split("]", 1)[1].lstrip(".")
            head = rest.split(".", 1)[0].split("[", 1)[0]
            field = head if head in FIELDS else ""
        message = problem.message if field else str(problem)
        out.setdefault(field, []).append(message)
    return out


def _rules(ctx: PageContext, managed: list[Any], window: Any) -> list[RuleRow]:
    def seconds(value: float) -> str:
        return str(window(timedelta(seconds=value))) if value else "—"

    def row(rule: Any, item: Any = None) -> RuleRow:
        return RuleRow(
            rule.name,
            rule.kind,
            rule.threshold,
            seconds(rule.window),
            seconds(rule.for_),
            rule.severity,
            ", ".join(rule.channels),
            ", ".join(f"{k}={v}" for k, v in rule.filters.items()),
            managed=item is not None,
            enabled=item.enabled if item is not None else True,
            created_by=item.created_by if item is not None else None,
            created_at=item.created_at if item is not None else None,
        )

    rows = [row(rule) for rule in ctx.settings.alerts.rules]
    for item in managed:
        # Read back through the settings model: its defaults fill what the form left out.
        rows.append(row(AlertSettings.model_validate({"rules": [item.rule]}).rules[0], item))
    return rows
