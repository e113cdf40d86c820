"""Alerts (firing now, and the history) and Keys and teams (read-only)."""

from __future__ import annotations

from datetime import UTC, datetime

from keel.access import AccessAdmin, Actor
from keel.console._pages import PageContext, PageResult


def alerts_page(ctx: PageContext) -> PageResult:
    # Imported here, when the page is asked for: the console does not need alerting to start.
    try:
        from keel.alerts import active_alerts, alert_history
    except ImportError:
        return PageResult(
            "alerts.html", {"active": [], "history": [], "unavailable": "Alerting is not installed."}
        )
    team_id = ctx.viewer.team_id
    return PageResult(
        "alerts.html",
        {
            "active": active_alerts(ctx.engine, team_id=team_id),
            "history": alert_history(ctx.engine, limit=200, team_id=team_id),
        },
    )


def access_page(ctx: PageContext) -> PageResult:
    actor = Actor.of_key(ctx.viewer.principal)
    admin = AccessAdmin(ctx.engine)
    teams = admin.list_teams(actor)
    keys = admin.list_keys(actor, include_inactive=bool(ctx.params.get("inactive")))
    now = datetime.now(UTC)
    return PageResult(
        "access.html",
        {
            "teams": teams,
            "team_names": {team.id: team.name for team in teams},
            "keys": [(key, key.status(now)) for key in keys],
            "inactive": bool(ctx.params.get("inactive")),
        },
    )
