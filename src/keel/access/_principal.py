"""Who is calling: the identity a virtual key resolves to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# admin: everything. team_admin: its team. member: its own keys, its team's usage.
# service: the data plane only.
Role = Literal["admin", "team_admin", "member", "service"]
ROLES: tuple[Role, ...] = ("admin", "team_admin", "member", "service")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role
    team_id: str | None  # None only for organisation-wide admin keys
    # Models the key may call (None: any).
    allowed_models: frozenset[str] | None = None
    expires_at: datetime | None = None
    # The guard policy the gateway applies to this key's requests: the key's own, else its
    # team's; None: the route's (or the default).
    guard_policy: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def allows_model(self, model: str) -> bool:
        """Whether this key may call ``model`` (a requested model name or route)."""
        return self.allowed_models is None or model in self.allowed_models
