"""What each role may do with teams and keys.

The rules, in one place so that every entry point (admin API, CLI, tests) obeys them:

- admin: everything.
- team_admin: its own team: the team's keys (any role but admin), the team's record.
- member: its own keys (itself, and keys it created), which are members or service keys
  of its team.
- service: nothing here: service keys are for the data plane.
- No key creates, revokes or rotates a key more powerful than itself, and a key created
  by a restricted key is at most as restricted (models, expiry).

``who`` is None for the operator at the command line, who is trusted like an admin.
"""

from __future__ import annotations

from datetime import datetime

from keel.access._principal import Principal, Role
from keel.access._records import ApiKey
from keel.core import InvalidRequest, PermissionDenied

# Power, for "never more powerful than its creator". Service keys only call the data plane.
RANK: dict[Role, int] = {"service": 0, "member": 1, "team_admin": 2, "admin": 3}


def is_trusted(who: Principal | None) -> bool:
    return who is None or who.is_admin


def refuse_service(who: Principal | None) -> None:
    if who is not None and who.role == "service":
        raise PermissionDenied("Service keys may call the data plane only.")


def can_see_key(who: Principal | None, key: ApiKey) -> bool:
    if is_trusted(who):
        return True
    assert who is not None
    if who.team_id is None or key.team_id != who.team_id:
        return False
    if who.role == "team_admin":
        return True
    if who.role == "member":
        return who.key_id in (key.id, key.created_by_key_id)
    return False


def check_may_change_key(who: Principal | None, key: ApiKey) -> None:
    """For revoke and rotate; the caller has already checked ``can_see_key``."""
    if who is not None and RANK[key.role] > RANK[who.role]:
        raise PermissionDenied(f"A {who.role} key cannot change a {key.role} key.")


def can_read_team(who: Principal | None, team_id: str) -> bool:
    return is_trusted(who) or (who is not None and who.role != "service" and who.team_id == team_id)


def check_may_manage_team(who: Principal | None, team_id: str) -> None:
    if is_trusted(who):
        return
    assert who is not None
    if who.role == "team_admin" and who.team_id == team_id:
        return
    raise PermissionDenied("This needs an admin key or a team admin key of this team.")


def check_admin(who: Principal | None, what: str) -> None:
    if not is_trusted(who):
        raise PermissionDenied(f"Only an admin key can {what}.")


def team_for_new_key(who: Principal | None, role: Role, team_id: str | None) -> str | None:
    """The team a new key goes in: the one asked for, or the creator's own."""
    if role == "admin":
        if team_id is not None:
            raise InvalidRequest("Admin keys belong to the organisation, not to a team: leave the team out.")
        return None
    if team_id is None and who is not None:
        team_id = who.team_id
    if team_id is None:
        raise InvalidRequest(f"A {role} key needs a team.", param="team_id")
    return team_id


def check_may_create_key(
    who: Principal | None,
    role: Role,
    team_id: str | None,
    models: tuple[str, ...] | None,
    expires_at: datetime | None,
) -> None:
    if who is None or who.is_admin:
        return
    if who.role not in ("team_admin", "member"):
        raise PermissionDenied(f"A {who.role} key cannot create keys.")
    if RANK[role] > RANK[who.role]:
        raise PermissionDenied(f"A {who.role} key cannot create a more powerful {role} key.")
    if team_id != who.team_id:
        raise PermissionDenied("A key can only create keys in its own team.")
    if who.allowed_models is not None and (models is None or not set(models) <= who.allowed_models):
        raise PermissionDenied("A key restricted to some models can only create keys restricted to those.")
    if who.expires_at is not None and (expires_at is None or expires_at > who.expires_at):
        raise PermissionDenied("A key that expires cannot create a key that outlives it.")


def inherited_limits(
    who: Principal | None, models: tuple[str, ...] | None, expires_at: datetime | None
) -> tuple[tuple[str, ...] | None, datetime | None]:
    """Unset limits of a key made by a restricted key default to the creator's."""
    if who is None or who.is_admin:
        return models, expires_at
    if models is None and who.allowed_models is not None:
        models = tuple(sorted(who.allowed_models))
    if expires_at is None and who.expires_at is not None:
        expires_at = who.expires_at
    return models, expires_at
