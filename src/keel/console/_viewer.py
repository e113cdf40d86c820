"""Who is looking: the key behind a session, re-read from the store on every request.

A session names a key id; the key's row decides, now, whether it still may look
(revoked or expired keys end their sessions at once, service keys never get one) and
what it may see: an admin key sees the whole organisation, a team's key only its team.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from keel.access import ApiKey, Principal, api_keys, teams
from keel.core import PermissionDenied


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    team_name: str | None

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def team_id(self) -> str | None:
        """The team every query is held to; None for an admin (sees every team)."""
        return None if self.principal.is_admin else self.principal.team_id

    @property
    def label(self) -> str:
        who = self.principal
        return f"{who.name} ({who.role}{', ' + self.team_name if self.team_name else ''})"

    def check_team(self, team_id: str | None) -> str | None:
        """The team filter a request asked for, held to what this viewer may see: a team's
        key asking for another team is refused (not silently widened or narrowed)."""
        if self.is_admin:
            return team_id or None
        if team_id and team_id != self.principal.team_id:
            raise PermissionDenied("This key cannot read another team's data.")
        return self.principal.team_id


def may_use_console(principal: Principal) -> bool:
    # Service keys call the data plane only; a team key without a team sees nothing.
    return principal.is_admin or (
        principal.role in ("team_admin", "member") and principal.team_id is not None
    )


def load_viewer(engine: Engine, key_id: str, now: datetime | None = None) -> Viewer | None:
    """The viewer of a session's key, or None when the key is gone, revoked, expired or
    may not use the console."""
    query = select(api_keys, teams.c.name.label("team_name")).select_from(
        api_keys.outerjoin(teams, api_keys.c.team_id == teams.c.id)
    )
    with engine.connect() as connection:
        row = connection.execute(query.where(api_keys.c.id == key_id)).first()
    if row is None:
        return None
    key = ApiKey.from_row(row)
    if key.status(now or datetime.now(UTC)) != "active":
        return None
    principal = key.principal()
    if not may_use_console(principal):
        return None
    return Viewer(principal, row.team_name)
