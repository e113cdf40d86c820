"""What the access operations return: teams, keys (never their secret), and who acts."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row

from keel.access._principal import Principal, Role

KeyStatus = Literal["active", "revoked", "expired"]


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    created_at: datetime
    metadata: dict[str, Any]
    guard_policy: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Team:
        values = row._mapping
        return cls(
            id=values["id"],
            name=values["name"],
            created_at=values["created_at"],
            metadata=values["metadata"] or {},
            guard_policy=values["guard_policy"],
        )

    def as_audit(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "metadata": self.metadata} | _guard_policy(
            self.guard_policy
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as lists show it: no hash, no plaintext; ``prefix`` is its first characters."""

    id: str
    name: str
    role: Role
    team_id: str | None
    prefix: str
    created_at: datetime
    created_by: str
    created_by_key_id: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    allowed_models: tuple[str, ...] | None
    last_rotated_from: str | None
    guard_policy: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ApiKey:
        values = row._mapping
        models = values["allowed_models"]
        return cls(
            id=values["id"],
            name=values["name"],
            role=values["role"],
            team_id=values["team_id"],
            prefix=values["key_prefix"],
            created_at=values["created_at"],
            created_by=values["created_by"],
            created_by_key_id=values["created_by_key_id"],
            expires_at=values["expires_at"],
            revoked_at=values["revoked_at"],
            allowed_models=tuple(models) if models is not None else None,
            last_rotated_from=values["last_rotated_from"],
            guard_policy=values["guard_policy"],
        )

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def principal(self, team_guard_policy: str | None = None) -> Principal:
        """The key as the data plane sees it; ``team_guard_policy`` is its team's guard
        policy, which applies when the key names none."""
        return Principal(
            key_id=self.id,
            name=self.name,
            role=self.role,
            team_id=self.team_id,
            allowed_models=frozenset(self.allowed_models) if self.allowed_models is not None else None,
            expires_at=self.expires_at,
            guard_policy=self.guard_policy or team_guard_policy,
        )

    def as_audit(self) -> dict[str, Any]:
        """The key as the audit log records it: public fields only."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "team_id": self.team_id,
            "prefix": self.prefix,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "allowed_models": list(self.allowed_models) if self.allowed_models is not None else None,
            "last_rotated_from": self.last_rotated_from,
        } | _guard_policy(self.guard_policy)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its plaintext, which nothing can show again."""

    key: ApiKey
    secret: str

    def __repr__(self) -> str:
        # Keep the plaintext out of logs and tracebacks that print this object.
        return f"CreatedKey(key={self.key!r}, secret='{self.key.prefix}…')"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: a key (held to its role) or the operator at the command line
    (``principal`` None: trusted like an admin, since they hold the database)."""

    label: str
    principal: Principal | None = None

    @classmethod
    def of_key(cls, who: Principal) -> Actor:
        return cls(f"key:{who.key_id} ({who.name})", who)

    @classmethod
    def cli(cls) -> Actor:
        return cls(f"cli:{_os_user()}")

    @classmethod
    def system(cls, what: str) -> Actor:
        return cls(f"system:{what}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return "unknown"


def _guard_policy(name: str | None) -> dict[str, Any]:
    # Only when set: entries written before keys and teams had guard policies look the same.
    return {"guard_policy": name} if name is not None else {}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
