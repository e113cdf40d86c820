"""Changing and reading teams and keys: ``AccessAdmin``.

Every change is one transaction that also appends its audit entry and bumps the
``access`` change version, so that it happens completely (visible to every gateway at
their next poll) or not at all. Bumping first takes the write lock on the ``access``
row, which serialises access changes across processes: checks such as "no team of that
name yet" or "this team has no active keys" cannot race with another change.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from keel.access import _policy
from keel.access._principal import ROLES, Role
from keel.access._records import Actor, ApiKey, CreatedKey, Team
from keel.access._secrets import display_prefix, hash_key, new_key
from keel.access._tables import api_keys, teams
from keel.core import InvalidRequest, NotFound, PermissionDenied
from keel.store import AuditEntry, append_audit, bump_change, read_audit

CHANGE_TOPIC = "access"
_MAX_NAME = 255
_MAX_METADATA_BYTES = 16_384
_MAX_MODELS = 1_000
_MAX_POLICY_NAME = 64

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AccessAdmin:
    """Teams and keys in the store, changed on behalf of an ``Actor`` and held to its role
    (see ``_policy``)."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def now(self) -> datetime:
        """The time this admin judges expiry by (its clock)."""
        return self._clock()

    # -- teams ---------------------------------------------------------------------------

    def create_team(
        self,
        actor: Actor,
        name: str,
        metadata: dict[str, Any] | None = None,
        *,
        guard_policy: str | None = None,
    ) -> Team:
        _policy.check_admin(actor.principal, "create teams")
        team = Team(
            id=f"team_{secrets.token_hex(8)}",
            name=_clean_name(name, "team"),
            created_at=self._clock(),
            metadata=_clean_metadata(metadata),
            guard_policy=_clean_guard_policy(guard_policy),
        )
        with self._change() as connection:
            self._require_unique_team_name(connection, team.name)
            connection.execute(
                insert(teams).values(
                    id=team.id,
                    name=team.name,
                    created_at=team.created_at,
                    metadata=team.metadata,
                    guard_policy=team.guard_policy,
                )
            )
            self._audit(connection, actor, "team.create", team_id=team.id, after=team.as_audit())
        return team

    def list_teams(self, actor: Actor) -> list[Team]:
        """Every team for an admin; a team's own keys see only their team."""
        who = actor.principal
        _policy.refuse_service(who)
        query = select(teams).order_by(teams.c.name)
        if not _policy.is_trusted(who):
            assert who is not None
            query = query.where(teams.c.id == who.team_id)
        with self._engine.connect() as connection:
            return [Team.from_row(row) for row in connection.execute(query)]

    def get_team(self, actor: Actor, team_id: str) -> Team:
        if not _policy.can_read_team(actor.principal, team_id):
            raise NotFound(f"No team with id {team_id!r}.", param="team_id")
        with self._engine.connect() as connection:
            return self._team(connection, team_id)

    def find_team(self, actor: Actor, name_or_id: str) -> Team:
        """A team by id or by name (what people type at the command line)."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(teams).where(or_(teams.c.id == name_or_id, teams.c.name == name_or_id))
            ).first()
        if row is None or not _policy.can_read_team(actor.principal, row.id):
            raise NotFound(f"No team named or with id {name_or_id!r}.", param="team")
        return Team.from_row(row)

    def update_team(
        self,
        actor: Actor,
        team_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        guard_policy: str | None = None,
    ) -> Team:
        """Rename a team or replace its metadata (admins, or the team's own team admins),
        or set its guard policy (admins only: the policy is a constraint on the team)."""
        if not _policy.can_read_team(actor.principal, team_id):
            raise NotFound(f"No team with id {team_id!r}.", param="team_id")
        _policy.check_may_manage_team(actor.principal, team_id)
        changes: dict[str, Any] = {}
        if guard_policy is not None:
            _policy.check_admin(actor.principal, "set a team's guard policy")
            changes["guard_policy"] = _clean_guard_policy(guard_policy)
        if name is not None:
            changes["name"] = _clean_name(name, "team")
        if metadata is not None:
            changes["metadata"] = _clean_metadata(metadata)
        with self._change() as connection:
            before = self._team(connection, team_id)
            if changes.get("name", before.name) != before.name:
                self._require_unique_team_name(connection, changes["name"])
            connection.execute(update(teams).where(teams.c.id == team_id).values(**changes))
            after = self._team(connection, team_id)
            self._audit(
                connection,
                actor,
                "team.update",
                team_id=team_id,
                before=before.as_audit(),
                after=after.as_audit(),
            )
        return after

    def delete_team(self, actor: Actor, team_id: str) -> Team:
        """Delete a team that has no active keys (its revoked and expired keys go with it)."""
        _policy.check_admin(actor.principal, "delete teams")
        now = self._clock()
        with self._change() as connection:
            team = self._team(connection, team_id)
            rows = connection.execute(select(api_keys).where(api_keys.c.team_id == team_id)).all()
            keys = [ApiKey.from_row(row) for row in rows]
            active = [key for key in keys if key.status(now) == "active"]
            if active:
                raise InvalidRequest(
                    f"Team {team.name!r} still has {len(active)} active key(s): revoke them first.",
                    param="team_id",
                )
            connection.execute(delete(api_keys).where(api_keys.c.team_id == team_id))
            connection.execute(delete(teams).where(teams.c.id == team_id))
            before = team.as_audit() | {"keys": [key.id for key in keys]}
            self._audit(connection, actor, "team.delete", team_id=team_id, before=before)
        return team

    # -- keys ----------------------------------------------------------------------------

    def create_key(
        self,
        actor: Actor,
        *,
        name: str,
        role: str,
        team_id: str | None = None,
        models: Sequence[str] | None = None,
        expires_at: datetime | None = None,
        ttl: timedelta | None = None,
        guard_policy: str | None = None,
    ) -> CreatedKey:
        """A new key; its plaintext is in the result and nowhere else, ever. Only admins
        name its guard policy; a key made by a key with a policy of its own keeps to it."""
        who = actor.principal
        _policy.refuse_service(who)
        now = self._clock()
        checked_role = _role(role)
        clean_name = _clean_name(name, "key")
        allowed = _clean_models(models)
        expiry = _expiry(now, expires_at, ttl)
        team = _policy.team_for_new_key(who, checked_role, team_id)
        allowed, expiry = _policy.inherited_limits(who, allowed, expiry)
        _policy.check_may_create_key(who, checked_role, team, allowed, expiry)
        policy = _clean_guard_policy(guard_policy)
        if policy is not None and not _policy.is_trusted(who):
            raise PermissionDenied("Only admin keys set a key's guard policy.", param="guard_policy")
        with self._change() as connection:
            team_policy = self._team(connection, team).guard_policy if team is not None else None
            # A key made by a key keeps the creator's policy (unless the team's already
            # applies): no key can make a key that escapes its guards.
            inherits = policy is None and who is not None and not _policy.is_trusted(who)
            if inherits and who is not None and who.guard_policy not in (None, team_policy):
                policy = who.guard_policy
            created = self._insert_key(
                connection,
                actor,
                name=clean_name,
                role=checked_role,
                team_id=team,
                models=allowed,
                expires_at=expiry,
                owner_key_id=who.key_id if who is not None else None,
                rotated_from=None,
                guard_policy=policy,
            )
            self._audit(connection, actor, "key.create", key=created.key, after=created.key.as_audit())
        return created

    def list_keys(
        self, actor: Actor, *, team_id: str | None = None, include_inactive: bool = False
    ) -> list[ApiKey]:
        """The keys the actor may see (admin: all; team admin: its team's; member: its own),
        newest first; revoked and expired ones only with ``include_inactive``."""
        who = actor.principal
        _policy.refuse_service(who)
        conditions: list[ColumnElement[bool]] = []
        if team_id is not None:
            if not _policy.can_read_team(who, team_id):
                raise PermissionDenied("This key cannot read another team's keys.")
            conditions.append(api_keys.c.team_id == team_id)
        if not _policy.is_trusted(who):
            assert who is not None
            conditions.append(api_keys.c.team_id == who.team_id)
            if who.role == "member":
                conditions.append(
                    or_(api_keys.c.id == who.key_id, api_keys.c.created_by_key_id == who.key_id)
                )
        if not include_inactive:
            now = self._clock()
            conditions.append(or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now))
            conditions.append(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        query = select(api_keys).where(and_(True, *conditions))
        query = query.order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        with self._engine.connect() as connection:
            keys = [ApiKey.from_row(row) for row in connection.execute(query)]
        # The SQL already says this; checking again costs nothing and guards the rule.
        return [key for key in keys if _policy.can_see_key(who, key)]

    def get_key(self, actor: Actor, key_id: str) -> ApiKey:
        _policy.refuse_service(actor.principal)
        with self._engine.connect() as connection:
            return self._visible_key(connection, actor, key_id)

    def revoke_key(self, actor: Actor, key_id: str) -> ApiKey:
        """Revoke at once (also ends a rotation's grace period); revoking a revoked key
        changes nothing."""
        _policy.refuse_service(actor.principal)
        now = self._clock()
        with self._change() as connection:
            before = self._visible_key(connection, actor, key_id)
            _policy.check_may_change_key(actor.principal, before)
            if before.status(now) == "revoked":
                return before
            connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
            after = self._key(connection, key_id)
            self._audit(
                connection, actor, "key.revoke", key=after, before=before.as_audit(), after=after.as_audit()
            )
        return after

    def rotate_key(self, actor: Actor, key_id: str, *, grace: timedelta | None = None) -> CreatedKey:
        """A new key with the old one's settings; the old one is revoked at once, or when
        ``grace`` has passed, so that clients can switch over."""
        _policy.refuse_service(actor.principal)
        grace = grace or timedelta(0)
        if grace < timedelta(0):
            raise InvalidRequest("The grace period cannot be negative.", param="grace_seconds")
        now = self._clock()
        with self._change() as connection:
            old = self._visible_key(connection, actor, key_id)
            _policy.check_may_change_key(actor.principal, old)
            if old.revoked_at is not None:
                raise InvalidRequest(f"Key {key_id!r} is already revoked or being rotated.", param="key_id")
            if old.status(now) == "expired":
                raise InvalidRequest(f"Key {key_id!r} has expired: create a new key.", param="key_id")
            created = self._insert_key(
                connection,
                actor,
                name=old.name,
                role=old.role,
                team_id=old.team_id,
                models=old.allowed_models,
                expires_at=old.expires_at,
                owner_key_id=old.created_by_key_id,
                rotated_from=old.id,
                guard_policy=old.guard_policy,
            )
            connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now + grace))
            # The new key is the same identity: what the old one owned, it owns.
            connection.execute(
                update(api_keys)
                .where(api_keys.c.created_by_key_id == key_id)
                .values(created_by_key_id=created.key.id)
            )
            revoked = self._key(connection, key_id)
            self._audit(
                connection,
                actor,
                "key.rotate",
                key=revoked,
                before=old.as_audit(),
                after=revoked.as_audit() | {"rotated_to": created.key.id},
            )
            self._audit(connection, actor, "key.create", key=created.key, after=created.key.as_audit())
        return created

    def ensure_first_admin(self, actor: Actor) -> CreatedKey | None:
        """An organisation admin key named "admin" when no active admin key exists."""
        if self._has_active_admin():
            return None
        with self._change() as connection:
            # Checked again under the lock: replicas starting together create one key.
            if self._has_active_admin(connection):
                return None
            created = self._insert_key(
                connection,
                actor,
                name="admin",
                role="admin",
                team_id=None,
                models=None,
                expires_at=None,
                owner_key_id=None,
                rotated_from=None,
            )
            self._audit(connection, actor, "key.create", key=created.key, after=created.key.as_audit())
        return created

    # -- audit ---------------------------------------------------------------------------

    def read_audit(self, actor: Actor, *, limit: int = 100, team_id: str | None = None) -> list[AuditEntry]:
        """Admins read every entry; a team admin reads its own team's."""
        who = actor.principal
        if limit < 1:
            raise InvalidRequest("limit must be at least 1.", param="limit")
        if not _policy.is_trusted(who):
            assert who is not None
            if who.role != "team_admin" or (team_id is not None and team_id != who.team_id):
                raise PermissionDenied(
                    "Only admin keys, and team admin keys for their team, read the audit log."
                )
            team_id = who.team_id
        return read_audit(self._engine, limit=limit, team_id=team_id)

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _change(self) -> Iterator[Connection]:
        with self._engine.begin() as connection:
            bump_change(connection, CHANGE_TOPIC)
            yield connection

    def _insert_key(
        self,
        connection: Connection,
        actor: Actor,
        *,
        name: str,
        role: Role,
        team_id: str | None,
        models: tuple[str, ...] | None,
        expires_at: datetime | None,
        owner_key_id: str | None,
        rotated_from: str | None,
        guard_policy: str | None = None,
    ) -> CreatedKey:
        secret = new_key()
        key_id = f"key_{secrets.token_hex(8)}"
        try:
            connection.execute(
                insert(api_keys).values(
                    id=key_id,
                    team_id=team_id,
                    name=name,
                    role=role,
                    key_hash=hash_key(secret),
                    key_prefix=display_prefix(secret),
                    created_at=self._clock(),
                    created_by=actor.label[:_MAX_NAME],
                    created_by_key_id=owner_key_id,
                    expires_at=expires_at,
                    allowed_models=list(models) if models is not None else None,
                    last_rotated_from=rotated_from,
                    guard_policy=guard_policy,
                )
            )
        except IntegrityError:
            # The team went away under us (its foreign key), or 256 random bits collided.
            raise InvalidRequest("The key could not be created; try again.") from None
        return CreatedKey(key=self._key(connection, key_id), secret=secret)

    def _has_active_admin(self, connection: Connection | None = None) -> bool:
        now = self._clock()
        query = (
            select(api_keys.c.id)
            .where(api_keys.c.role == "admin")
            .where(or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now))
            .where(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
            .limit(1)
        )
        if connection is not None:
            return connection.execute(query).first() is not None
        with self._engine.connect() as fresh:
            return fresh.execute(query).first() is not None

    def _team(self, connection: Connection, team_id: str) -> Team:
        row = connection.execute(select(teams).where(teams.c.id == team_id)).first()
        if row is None:
            raise NotFound(f"No team with id {team_id!r}.", param="team_id")
        return Team.from_row(row)

    def _require_unique_team_name(self, connection: Connection, name: str) -> None:
        if connection.execute(select(teams.c.id).where(teams.c.name == name)).first() is not None:
            raise InvalidRequest(f"A team named {name!r} already exists.", param="name")

    def _key(self, connection: Connection, key_id: str) -> ApiKey:
        row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"No key with id {key_id!r}.", param="key_id")
        return ApiKey.from_row(row)

    def _visible_key(self, connection: Connection, actor: Actor, key_id: str) -> ApiKey:
        """The key, or NotFound when it does not exist or the actor may not see it (the
        same answer, so that a key cannot probe for another team's keys)."""
        key = self._key(connection, key_id)
        if not _policy.can_see_key(actor.principal, key):
            raise NotFound(f"No key with id {key_id!r}.", param="key_id")
        return key

    def _audit(
        self,
        connection: Connection,
        actor: Actor,
        action: str,
        *,
        team_id: str | None = None,
        key: ApiKey | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        target_type, target_id = ("key", key.id) if key is not None else ("team", team_id)
        if key is not None:
            team_id = key.team_id
        append_audit(
            connection,
            actor=actor.label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            team_id=team_id,
            before=before,
            after=after,
        )


def _clean_name(name: str, what: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidRequest(f"A {what} needs a non-empty name.", param="name")
    if len(cleaned) > _MAX_NAME:
        raise InvalidRequest(f"A {what} name has at most {_MAX_NAME} characters.", param="name")
    if any(not ch.isprintable() for ch in cleaned):
        raise InvalidRequest(f"A {what} name cannot hold control characters.", param="name")
    return cleaned


def _clean_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("Team metadata must be a JSON object.", param="metadata")
    try:
        size = len(json.dumps(metadata))
    except (TypeError, ValueError):
        raise InvalidRequest("Team metadata must be JSON.", param="metadata") from None
    if size > _MAX_METADATA_BYTES:
        raise InvalidRequest(f"Team metadata is limited to {_MAX_METADATA_BYTES} bytes.", param="metadata")
    return metadata


def _clean_guard_policy(name: str | None) -> str | None:
    """A guard policy's name, checked for shape only: whether keel.yaml defines it is the
    gateway's to say (policies live in its configuration, not in the store)."""
    if name is None:
        return None
    cleaned = name.strip()
    if not cleaned:
        raise InvalidRequest("A guard policy needs a non-empty name.", param="guard_policy")
    if len(cleaned) > _MAX_POLICY_NAME:
        raise InvalidRequest(
            f"A guard policy name has at most {_MAX_POLICY_NAME} characters.", param="guard_policy"
        )
    if any(not ch.isprintable() for ch in cleaned):
        raise InvalidRequest("A guard policy name cannot hold control characters.", param="guard_policy")
    return cleaned


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidRequest(f"Unknown role {role!r}: expected one of {', '.join(ROLES)}.", param="role")


def _clean_models(models: Sequence[str] | None) -> tuple[str, ...] | None:
    if models is None:
        return None
    if isinstance(models, str):
        raise InvalidRequest("models must be a list of model names.", param="models")
    cleaned = sorted({model.strip() for model in models})
    if not cleaned or any(not model for model in cleaned):
        raise InvalidRequest(
            "models must list at least one non-empty model name (leave it out for any model).",
            param="models",
        )
    if len(cleaned) > _MAX_MODELS:
        raise InvalidRequest(f"A key lists at most {_MAX_MODELS} models.", param="models")
    return tuple(cleaned)


def _expiry(now: datetime, expires_at: datetime | None, ttl: timedelta | None) -> datetime | None:
    if expires_at is not None and ttl is not None:
        raise InvalidRequest("Give an expiry time or a time to live, not both.", param="expires_at")
    if ttl is not None:
        if ttl <= timedelta(0):
            raise InvalidRequest("A key's time to live must be positive.", param="ttl_seconds")
        try:
            return now + ttl
        except OverflowError:
            raise InvalidRequest("A key's time to live is too long.", param="ttl_seconds") from None
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= now:
        raise InvalidRequest("A key's expiry time must lie in the future.", param="expires_at")
    return expires_at.astimezone(UTC)


def ensure_first_admin(engine: Engine, actor: Actor | None = None) -> str | None:
    """Create an organisation admin key named "admin" when no active admin key exists
    (a fresh install); return its plaintext, to be shown once, else None."""
    created = AccessAdmin(engine).ensure_first_admin(actor or Actor.system("first-start"))
    return created.secret if created is not None else None
