"""Who may report on what. The operator at the command line (no principal) and admin keys
may report on any team or on all of them; a team admin key only on its own team; other
keys not at all (reports show every key's spend and every guard incident of a team)."""

from __future__ import annotations

from keel.access import Principal
from keel.core import PermissionDenied


def report_team(who: Principal | None, team_id: str | None) -> str | None:
    """The team a report by ``who`` covers: ``team_id`` as asked (None: all teams) for
    the operator and admins; the key's own team for a team admin, who may leave
    ``team_id`` out but not name another team. PermissionDenied otherwise."""
    if who is None or who.is_admin:
        return team_id
    if who.role != "team_admin" or who.team_id is None:
        raise PermissionDenied("Cost reports need an admin key or a team admin key.")
    if team_id is not None and team_id != who.team_id:
        raise PermissionDenied("A team admin key can report on its own team only.")
    return who.team_id
