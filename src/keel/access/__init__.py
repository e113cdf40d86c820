"""Access control: teams, virtual keys, roles, and the audit trail of their changes.

``AccessAdmin`` changes and reads teams and keys on behalf of an ``Actor`` (held to its
role); ``KeyRing`` is the data plane's in-memory view that authenticates keys.
"""

from keel.access._admin import CHANGE_TOPIC, AccessAdmin, ensure_first_admin
from keel.access._keyring import KeyRing
from keel.access._principal import ROLES, Principal, Role
from keel.access._records import Actor, ApiKey, CreatedKey, KeyStatus, Team
from keel.access._secrets import KEY_PREFIX, hash_key
from keel.access._tables import api_keys, teams

__all__ = [
    "CHANGE_TOPIC",
    "KEY_PREFIX",
    "ROLES",
    "AccessAdmin",
    "Actor",
    "ApiKey",
    "CreatedKey",
    "KeyRing",
    "KeyStatus",
    "Principal",
    "Role",
    "Team",
    "api_keys",
    "ensure_first_admin",
    "hash_key",
    "teams",
]
