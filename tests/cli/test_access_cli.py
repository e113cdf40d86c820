"""``keel admin init``, ``keel teams``, ``keel keys`` and ``keel audit`` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.helpers import keel, keel_json, sqlite_engine

from keel.access import KeyRing
from keel.core import AuthenticationError


def ring(database: Path) -> KeyRing:
    """The keys as a gateway would see them now (loaded, then the engine let go)."""
    with sqlite_engine(database) as engine:
        keys = KeyRing(engine)
        keys.load()
    return keys


def test_admin_init_prints_the_first_admin_key_once(database: Path) -> None:
    code, out, err = keel("admin", "init")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("sk-keel-") and "cannot show it again" in err
    assert ring(database).authenticate(secret).is_admin

    code, out, err = keel("admin", "init")
    assert (code, out) == (1, "")
    assert err.strip() == "error: an active admin key exists already: use --force to add another"

    created = keel_json("admin", "init", "--force")
    assert created["key"] != secret and created["role"] == "admin"
    assert ring(database).authenticate(created["key"]).is_admin


def test_teams_and_keys_from_creation_to_revocation(database: Path) -> None:
    team = keel_json("teams", "create", "search")
    assert team["name"] == "search"
    assert keel_json("teams", "list") == [team]
    code, out, _ = keel("teams", "list")
    assert code == 0 and "search" in out and team["id"] in out

    code, out, err = keel("keys", "create", "bot", "--team", "search", "-m", "gpt-x", "--ttl", "30d")
    assert code == 0, err
    secret = out.strip()
    who = ring(database).authenticate(secret)
    assert (who.role, who.team_id, who.allowed_models) == ("service", team["id"], frozenset({"gpt-x"}))

    keys = keel_json("keys", "list", "--team", "search")
    assert [k["id"] for k in keys] == [who.key_id]
    assert keys[0]["models"] == ["gpt-x"] and keys[0]["status"] == "active" and "key" not in keys[0]
    code, out, _ = keel("keys", "list")
    assert code == 0 and who.key_id in out and secret not in out and secret[:12] in out

    rotated = keel_json("keys", "rotate", who.key_id, "--grace", "1h")
    assert rotated["rotated_from"] == who.key_id
    keys_now = ring(database)
    assert keys_now.authenticate(secret).key_id == who.key_id  # still in its grace period
    assert keys_now.authenticate(rotated["key"]).key_id == rotated["id"]

    code, out, err = keel("keys", "revoke", who.key_id)
    assert code == 0, err
    code, _, err = keel("keys", "revoke", rotated["id"])
    assert code == 0, err
    with pytest.raises(AuthenticationError, match="revoked"):
        ring(database).authenticate(secret)
    assert keel_json("keys", "list") == []
    assert len(keel_json("keys", "list", "--all")) == 2

    code, out, err = keel("teams", "delete", "search")
    assert code == 0 and "deleted team search" in out, err
    assert keel_json("teams", "list") == []


def test_audit_lists_every_change_newest_first_without_secrets(database: Path) -> None:
    code, admin_secret, _ = keel("admin", "init")
    keel("teams", "create", "search")
    code, key_secret, _ = keel("keys", "create", "bot", "--team", "search")
    entries = keel_json("audit", "--limit", "10")
    assert [e["action"] for e in entries] == ["key.create", "team.create", "key.create"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    dumped = json.dumps(entries)
    assert admin_secret.strip() not in dumped and key_secret.strip() not in dumped
    assert len(keel_json("audit", "--limit", "1")) == 1
    assert [e["action"] for e in keel_json("audit", "--team", "search")] == ["key.create", "team.create"]
    code, out, _ = keel("audit")
    assert code == 0 and "team.create" in out and "cli:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("teams", "delete", "nope"), "No team named or with id 'nope'"),
        (("keys", "create", "bot", "--team", "nope"), "No team named or with id 'nope'"),
        (("keys", "create", "bot"), "A service key needs a team"),
        (("keys", "create", "bot", "--role", "god", "--team", "t"), "Unknown role 'god'"),
        (("keys", "create", "bot", "--team", "t", "--ttl", "soon"), "--ttl takes a duration"),
        (("keys", "create", "bot", "--team", "t", "--expires", "2001-01-01"), "must lie in the future"),
        (("keys", "revoke", "key_nope"), "No key with id 'key_nope'"),
        (("keys", "rotate", "key_nope"), "No key with id 'key_nope'"),
        (("teams", "create", "t"), "A team named 't' already exists"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(database: Path, args: tuple[str, ...], message: str) -> None:
    assert keel("teams", "create", "t")[0] == 0
    code, out, err = keel(*args)
    assert code == 1 and out == ""
    assert err.strip() == f"error: {message}" or (err.startswith("error: ") and message in err), err
    assert len(err.strip().splitlines()) == 1


def test_a_team_with_active_keys_is_not_deleted(database: Path) -> None:
    keel("teams", "create", "search")
    keel("keys", "create", "bot", "--team", "search")
    code, _, err = keel("teams", "delete", "search")
    assert code == 1 and "still has 1 active key" in err
    assert len(keel_json("teams", "list")) == 1


def test_guard_policies_are_given_to_teams_and_keys(database: Path) -> None:
    team = keel_json("teams", "create", "search", "--guard-policy", "strict")
    assert team["guard_policy"] == "strict"
    inherits = keel_json("keys", "create", "bot", "--team", "search")
    own = keel_json("keys", "create", "bot2", "--team", "search", "--guard-policy", "lenient")
    assert (inherits["guard_policy"], own["guard_policy"]) == (None, "lenient")
    keys = ring(database)
    assert keys.authenticate(inherits["key"]).guard_policy == "strict"
    assert keys.authenticate(own["key"]).guard_policy == "lenient"
    code, out, err = keel("keys", "create", "bot3", "--team", "search", "--guard-policy", " ")
    assert code == 1 and out == "" and err.strip() == "error: A guard policy needs a non-empty name."
