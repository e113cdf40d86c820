"""Admin API routes: teams, keys, the audit log, and ``/me``.

Routes are plain ``def``: FastAPI runs them in its thread pool, so their store I/O never
blocks the event loop. Who may do what is decided in ``keel.access`` (``AccessAdmin``
holds every call to the caller's role); a key the caller may not see answers 404, the
same as a key that does not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from keel.access import AccessAdmin, Actor, ApiKey, CreatedKey, Principal, Role, Team
from keel.admin._auth import Caller
from keel.admin._common import ERRORS, RequestBody
from keel.store import AuditEntry

router = APIRouter()


_GUARD_POLICY = "A guard policy named in keel.yaml (guards.policies) for the team's keys that name none."


class TeamCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255)
    metadata: dict[str, Any] | None = Field(None, description="Free-form JSON object kept with the team.")
    guard_policy: str | None = Field(None, min_length=1, max_length=64, description=_GUARD_POLICY)


class TeamUpdate(RequestBody):
    name: str | None = Field(None, min_length=1, max_length=255)
    metadata: dict[str, Any] | None = Field(None, description="Replaces the team's metadata.")
    guard_policy: str | None = Field(
        None, min_length=1, max_length=64, description=f"{_GUARD_POLICY} Admin keys only."
    )


class TeamOut(BaseModel):
    object: Literal["team"] = "team"
    id: str
    name: str
    created_at: datetime
    metadata: dict[str, Any]
    guard_policy: str | None

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        return cls(
            id=team.id,
            name=team.name,
            created_at=team.created_at,
            metadata=team.metadata,
            guard_policy=team.guard_policy,
        )


class TeamList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TeamOut]


class KeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255)
    role: Role = Field("service", description="admin, team_admin, member or service (data plane only).")
    team_id: str | None = Field(
        None, description="The key's team; defaults to the caller's. Admin keys have none."
    )
    models: list[str] | None = Field(None, description="Models the key may call; leave out for any.")
    expires_at: datetime | None = Field(None, description="When the key stops working (UTC if naive).")
    ttl_seconds: int | None = Field(None, description="Or: seconds from now until the key expires.")
    guard_policy: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="A guard policy in keel.yaml; overrides the team's and the route's (admin keys only).",
    )


class KeyRotate(RequestBody):
    grace_seconds: int = Field(
        0, ge=0, description="How long the old key keeps working (default: not at all)."
    )


class KeyOut(BaseModel):
    object: Literal["key"] = "key"
    id: str
    name: str
    role: Role
    team_id: str | None
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    models: list[str] | None
    rotated_from: str | None
    guard_policy: str | None

    @classmethod
    def fields_of(cls, key: ApiKey, now: datetime) -> dict[str, Any]:
        return {
            "id": key.id,
            "name": key.name,
            "role": key.role,
            "team_id": key.team_id,
            "prefix": key.prefix,
            "status": key.status(now),
            "created_at": key.created_at,
            "created_by": key.created_by,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
            "models": list(key.allowed_models) if key.allowed_models is not None else None,
            "rotated_from": key.last_rotated_from,
            "guard_policy": key.guard_policy,
        }

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> KeyOut:
        return cls(**cls.fields_of(key, now))


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself. Shown this once: Keel keeps only its hash.")

    @classmethod
    def of_created(cls, created: CreatedKey, now: datetime) -> KeyCreated:
        return cls(**cls.fields_of(created.key, now), key=created.secret)


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    team_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls.model_validate(entry, from_attributes=True)


class AuditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AuditOut]


class Me(BaseModel):
    key_id: str
    name: str
    role: Role
    team_id: str | None
    models: list[str] | None
    expires_at: datetime | None
    guard_policy: str | None = Field(
        description="The guard policy on this key's requests (its own, else its team's)."
    )

    @classmethod
    def of(cls, who: Principal) -> Me:
        models = sorted(who.allowed_models) if who.allowed_models is not None else None
        return cls(
            key_id=who.key_id,
            name=who.name,
            role=who.role,
            team_id=who.team_id,
            models=models,
            expires_at=who.expires_at,
            guard_policy=who.guard_policy,
        )


class _Access:
    """What a route works with: the store's access operations and the caller as actor."""

    def __init__(self, request: Request, who: Caller) -> None:
        self.admin = AccessAdmin(request.app.state.engine)
        self.actor = Actor.of_key(who)
        self._keys = request.app.state.keys

    def changed(self) -> None:
        # This process's key ring sees the change at once; others at their next poll.
        self._keys.reload()

    def now(self) -> datetime:
        return self.admin.now()


Access = Annotated[_Access, Depends(_Access)]


@router.post("/teams", response_model=TeamOut, status_code=201, tags=["teams"], responses=ERRORS)
def create_team(body: TeamCreate, access: Access) -> TeamOut:
    """Create a team (admin keys only)."""
    team = access.admin.create_team(access.actor, body.name, body.metadata, guard_policy=body.guard_policy)
    access.changed()
    return TeamOut.of(team)


@router.get("/teams", response_model=TeamList, tags=["teams"], responses=ERRORS)
def list_teams(access: Access) -> TeamList:
    """Every team for an admin key; the caller's own team for other keys."""
    return TeamList(data=[TeamOut.of(team) for team in access.admin.list_teams(access.actor)])


@router.get("/teams/{team_id}", response_model=TeamOut, tags=["teams"], responses=ERRORS)
def get_team(team_id: str, access: Access) -> TeamOut:
    return TeamOut.of(access.admin.get_team(access.actor, team_id))


@router.patch("/teams/{team_id}", response_model=TeamOut, tags=["teams"], responses=ERRORS)
def update_team(team_id: str, body: TeamUpdate, access: Access) -> TeamOut:
    """Rename a team or replace its metadata (admin keys, or the team's team admin keys)."""
    team = access.admin.update_team(
        access.actor, team_id, name=body.name, metadata=body.metadata, guard_policy=body.guard_policy
    )
    access.changed()
    return TeamOut.of(team)


@router.delete("/teams/{team_id}", response_model=TeamOut, tags=["teams"], responses=ERRORS)
def delete_team(team_id: str, access: Access) -> TeamOut:
    """Delete a team with no active keys (admin keys only); answers the deleted team."""
    team = access.admin.delete_team(access.actor, team_id)
    access.changed()
    return TeamOut.of(team)


@router.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"], responses=ERRORS)
def create_key(body: KeyCreate, access: Access) -> KeyCreated:
    """Create a key. The answer holds the key itself (``key``), which is never shown again.
    No key can create a key more powerful than itself."""
    created = access.admin.create_key(
        access.actor,
        name=body.name,
        role=body.role,
        team_id=body.team_id,
        models=body.models,
        expires_at=body.expires_at,
        ttl=_seconds(body.ttl_seconds),
        guard_policy=body.guard_policy,
    )
    access.changed()
    return KeyCreated.of_created(created, access.now())


@router.get("/keys", response_model=KeyList, tags=["keys"], responses=ERRORS)
def list_keys(
    access: Access,
    team_id: Annotated[str | None, Query(description="Only this team's keys.")] = None,
    include_inactive: Annotated[bool, Query(description="Also revoked and expired keys.")] = False,
) -> KeyList:
    """The keys the caller may see: all (admin), its team's (team admin), its own (member)."""
    keys = access.admin.list_keys(access.actor, team_id=team_id, include_inactive=include_inactive)
    now = access.now()
    return KeyList(data=[KeyOut.of(key, now) for key in keys])


@router.get("/keys/{key_id}", response_model=KeyOut, tags=["keys"], responses=ERRORS)
def get_key(key_id: str, access: Access) -> KeyOut:
    return KeyOut.of(access.admin.get_key(access.actor, key_id), access.now())


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, tags=["keys"], responses=ERRORS)
def revoke_key(key_id: str, access: Access) -> KeyOut:
    """Revoke a key: it fails from the next request on."""
    key = access.admin.revoke_key(access.actor, key_id)
    access.changed()
    return KeyOut.of(key, access.now())


@router.post("/keys/{key_id}/rotate", response_model=KeyCreated, tags=["keys"], responses=ERRORS)
def rotate_key(key_id: str, access: Access, body: KeyRotate | None = None) -> KeyCreated:
    """Replace a key by a new one with the same settings; the old one is revoked at once,
    or after ``grace_seconds``. The answer holds the new key, shown this once."""
    grace = _seconds((body or KeyRotate()).grace_seconds)
    created = access.admin.rotate_key(access.actor, key_id, grace=grace)
    access.changed()
    return KeyCreated.of_created(created, access.now())


@router.get("/audit", response_model=AuditList, tags=["audit"], responses=ERRORS)
def read_audit(
    access: Access,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    team_id: Annotated[str | None, Query(description="Only changes within this team.")] = None,
) -> AuditList:
    """The audit log, newest first: every entry for admin keys, the team's own for team admin keys."""
    entries = access.admin.read_audit(access.actor, limit=limit, team_id=team_id)
    return AuditList(data=[AuditOut.of(entry) for entry in entries])


@router.get("/me", response_model=Me, tags=["keys"], responses=ERRORS)
def me(who: Caller) -> Me:
    """The calling key: its id, role, team and limits."""
    return Me.of(who)


def _seconds(value: int | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return timedelta(seconds=value)
    except OverflowError:
        # Past timedelta's range; AccessAdmin says the time to live is too long.
        return timedelta.max
