"""Keys and teams (read-only)."""

from __future__ import annotations

from datetime import UTC, datetime

from keel.access import AccessAdmin, Actor
from keel.console._pages import PageContext, PageResult


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
