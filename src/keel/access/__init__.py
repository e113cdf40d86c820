"""Access control: teams, virtual keys, roles, the audit log."""

from keel.access._principal import ROLES, Principal, Role

__all__ = ["ROLES", "Principal", "Role"]
