"""What the admin API's route modules share: the documented error answers, the base of
request bodies, and who may change an object owned by a team or by no team."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from keel.access import Principal
from keel.admin._auth import require_admin, require_team_admin

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (OpenAI error format)"},
    401: {"description": "Missing, malformed, unknown, revoked or expired key"},
    403: {"description": "The key's role does not allow this"},
    404: {"description": "No such object, or the key may not see it"},
}


class RequestBody(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def require_owner_admin(who: Principal, team_id: str | None) -> None:
    """Objects of a team are changed by its team admins (and admins); objects of no team
    (organisation-wide) by admins only."""
    if team_id is None:
        require_admin(who)
    else:
        require_team_admin(who, team_id)
