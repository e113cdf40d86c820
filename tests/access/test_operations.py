"""Teams and keys in the store: each change complete with its audit entry, or not at all."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from keel.access import AccessAdmin, Actor, KeyRing, api_keys, ensure_first_admin, hash_key
from keel.core import AuthenticationError, InvalidRequest, NotFound
from keel.store import create_store_engine, read_audit, read_changes
from tests.access.conftest import CLI, Org, store_state


def test_team_lifecycle_is_audited_with_before_and_after(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search", {"cost_center": "42"})
    assert access.get_team(CLI, team.id) == team
    assert access.find_team(CLI, "search") == team
    renamed = access.update_team(CLI, team.id, name="retrieval")
    assert renamed.name == "retrieval" and renamed.metadata == {"cost_center": "42"}
    assert [t.name for t in access.list_teams(CLI)] == ["retrieval"]
    access.delete_team(CLI, team.id)
    assert access.list_teams(CLI) == []
    with pytest.raises(NotFound):
        access.get_team(CLI, team.id)

    entries = read_audit(engine)
    assert [e.action for e in entries] == ["team.delete", "team.update", "team.create"]
    assert all(e.actor == CLI.label and e.target_id == team.id and e.team_id == team.id for e in entries)
    delete, update, create = entries
    assert create.before is None and create.after == {
        "id": team.id,
        "name": "search",
        "metadata": {"cost_center": "42"},
    }
    assert update.before is not None and update.before["name"] == "search"
    assert update.after is not None and update.after["name"] == "retrieval"
    assert delete.before is not None and delete.before["name"] == "retrieval" and delete.after is None
    assert read_changes(engine)["access"] == 3


def test_team_names_are_unique_and_a_refused_change_writes_nothing(
    access: AccessAdmin, engine: Engine
) -> None:
    access.create_team(CLI, "search")
    other = access.create_team(CLI, "ads")
    before = store_state(engine)
    with pytest.raises(InvalidRequest, match="already exists"):
        access.create_team(CLI, " search ")
    with pytest.raises(InvalidRequest, match="already exists"):
        access.update_team(CLI, other.id, name="search")
    with pytest.raises(InvalidRequest, match="non-empty"):
        access.create_team(CLI, "   ")
    with pytest.raises(NotFound):
        access.update_team(CLI, "team_missing", name="x")
    with pytest.raises(NotFound):
        access.delete_team(CLI, "team_missing")
    assert store_state(engine) == before


def test_a_team_with_active_keys_cannot_be_deleted(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search")
    key = access.create_key(CLI, name="bot", role="service", team_id=team.id)
    before = store_state(engine)
    with pytest.raises(InvalidRequest, match="1 active key"):
        access.delete_team(CLI, team.id)
    assert store_state(engine) == before

    access.revoke_key(CLI, key.key.id)
    access.delete_team(CLI, team.id)
    # Its revoked keys went with it; the audit log still says what they were.
    with engine.connect() as connection:
        assert connection.execute(select(api_keys.c.id)).all() == []
    deleted = read_audit(engine, limit=1)[0]
    assert deleted.action == "team.delete" and deleted.before is not None
    assert deleted.before["keys"] == [key.key.id]


def test_a_key_is_stored_only_as_its_hash_and_never_audited(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search")
    created = access.create_key(CLI, name="bot", role="member", team_id=team.id, models=["b", "a", "a"])
    secret = created.secret
    assert secret.startswith("sk-keel-") and len(secret) == len("sk-keel-") + 43
    assert created.key.prefix == secret[:12] and created.key.allowed_models == ("a", "b")
    assert secret not in repr(created)
    rotated = access.rotate_key(CLI, created.key.id)

    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(api_keys))]
    assert {row["key_hash"] for row in rows} == {hash_key(secret), hash_key(rotated.secret)}
    stored = json.dumps(rows, default=str)
    audited = json.dumps([(e.before, e.after) for e in read_audit(engine)], default=str)
    for plaintext in (secret, rotated.secret):
        assert plaintext not in stored
        assert plaintext not in audited
        assert hash_key(plaintext) not in audited
    # Nothing read back from the store carries the secret.
    assert all(not hasattr(key, "key_hash") for key in access.list_keys(CLI, include_inactive=True))


def test_creating_a_key_validates_everything_before_writing(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search")
    now = datetime.now(UTC)
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"role": "god", "team_id": team.id}, InvalidRequest, "Unknown role"),
        ({"role": "member", "team_id": "team_missing"}, NotFound, "No team"),
        ({"role": "member"}, InvalidRequest, "needs a team"),
        ({"role": "admin", "team_id": team.id}, InvalidRequest, "organisation"),
        ({"role": "member", "team_id": team.id, "ttl": timedelta(seconds=-1)}, InvalidRequest, "positive"),
        ({"role": "member", "team_id": team.id, "ttl": timedelta(days=10**8)}, InvalidRequest, "too long"),
        ({"role": "member", "team_id": team.id, "expires_at": now - timedelta(1)}, InvalidRequest, "future"),
        (
            {"role": "member", "team_id": team.id, "expires_at": now + timedelta(1), "ttl": timedelta(1)},
            InvalidRequest,
            "not both",
        ),
        ({"role": "member", "team_id": team.id, "models": []}, InvalidRequest, "at least one"),
        ({"role": "member", "team_id": team.id, "models": [" "]}, InvalidRequest, "non-empty"),
    ]
    before = store_state(engine)
    for fields, error, message in bad:
        with pytest.raises(error, match=message):
            access.create_key(CLI, name="bot", **fields)
    with pytest.raises(InvalidRequest, match="non-empty name"):
        access.create_key(CLI, name="", role="member", team_id=team.id)
    assert store_state(engine) == before


def test_expiry_from_a_ttl_or_a_naive_time_is_utc(access: AccessAdmin) -> None:
    team = access.create_team(CLI, "search")
    start = datetime.now(UTC)
    by_ttl = access.create_key(CLI, name="a", role="service", team_id=team.id, ttl=timedelta(hours=1))
    assert by_ttl.key.expires_at is not None
    assert timedelta(minutes=59) < by_ttl.key.expires_at - start < timedelta(minutes=61)
    naive = datetime(2099, 1, 1, 12, 0)
    at = access.create_key(CLI, name="b", role="service", team_id=team.id, expires_at=naive)
    assert at.key.expires_at == naive.replace(tzinfo=UTC)
    assert access.get_key(CLI, at.key.id).expires_at == naive.replace(tzinfo=UTC)


def test_rotation_keeps_the_settings_and_revokes_the_old_key(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search")
    old = access.create_key(
        CLI, name="bot", role="member", team_id=team.id, models=["m"], ttl=timedelta(days=1)
    )
    ring = KeyRing(engine)
    ring.load()
    new = access.rotate_key(CLI, old.key.id)
    ring.reload()
    assert ring.authenticate(new.secret).key_id == new.key.id
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(old.secret)
    assert (new.key.name, new.key.role, new.key.team_id) == ("bot", "member", team.id)
    assert (new.key.allowed_models, new.key.expires_at) == (("m",), old.key.expires_at)
    assert new.key.last_rotated_from == old.key.id
    rotate, create = read_audit(engine, limit=2)[::-1]
    assert rotate.action == "key.rotate" and rotate.target_id == old.key.id
    assert rotate.after is not None and rotate.after["rotated_to"] == new.key.id
    assert rotate.before is not None and rotate.before["revoked_at"] is None
    assert create.action == "key.create" and create.target_id == new.key.id
    # A revoked key cannot be rotated again.
    before = store_state(engine)
    with pytest.raises(InvalidRequest, match="already revoked"):
        access.rotate_key(CLI, old.key.id)
    with pytest.raises(NotFound):
        access.rotate_key(CLI, "key_missing")
    assert store_state(engine) == before


def test_rotation_with_a_grace_period_keeps_the_old_key_working_until_it_ends(
    access: AccessAdmin, engine: Engine
) -> None:
    from tests.access.clock import FakeClock

    team = access.create_team(CLI, "search")
    old = access.create_key(CLI, name="bot", role="service", team_id=team.id)
    with pytest.raises(InvalidRequest, match="negative"):
        access.rotate_key(CLI, old.key.id, grace=timedelta(seconds=-1))
    new = access.rotate_key(CLI, old.key.id, grace=timedelta(minutes=10))
    clock = FakeClock()
    ring = KeyRing(engine, clock=clock)
    ring.load()
    assert ring.authenticate(old.secret).key_id == old.key.id
    assert ring.authenticate(new.secret).key_id == new.key.id
    assert [k.id for k in access.list_keys(CLI)] == [new.key.id, old.key.id]
    clock.advance(timedelta(minutes=10))
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(old.secret)
    # Revoking ends the grace period at once.
    clock.offset = timedelta(0)
    access.revoke_key(CLI, old.key.id)
    ring.reload()
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(old.secret)


def test_revoking_twice_changes_nothing_the_second_time(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "search")
    key = access.create_key(CLI, name="bot", role="service", team_id=team.id)
    revoked = access.revoke_key(CLI, key.key.id)
    assert revoked.revoked_at is not None
    before = store_state(engine)
    assert access.revoke_key(CLI, key.key.id) == revoked
    assert store_state(engine)[0] == before[0]
    entry = read_audit(engine, limit=1)[0]
    assert entry.action == "key.revoke" and entry.before is not None and entry.after is not None
    assert entry.before["revoked_at"] is None and entry.after["revoked_at"] is not None
    assert access.list_keys(CLI) == []
    assert [k.id for k in access.list_keys(CLI, include_inactive=True)] == [key.key.id]


def test_the_first_admin_key_is_created_once(engine: Engine) -> None:
    secret = ensure_first_admin(engine)
    assert secret is not None
    assert ensure_first_admin(engine) is None
    ring = KeyRing(engine)
    ring.load()
    who = ring.authenticate(secret)
    assert (who.role, who.team_id, who.name) == ("admin", None, "admin")
    entry = read_audit(engine, limit=1)[0]
    assert entry.actor == "system:first-start" and entry.action == "key.create"
    # With the only admin key revoked, the next start makes a new one.
    AccessAdmin(engine).revoke_key(Actor.cli(), who.key_id)
    assert ensure_first_admin(engine) not in (None, secret)


def test_every_change_bumps_the_access_version(access: AccessAdmin, engine: Engine, org: Org) -> None:
    version = read_changes(engine)["access"]
    access.revoke_key(CLI, org.member_b.key.id)
    assert read_changes(engine)["access"] == version + 1
    access.list_keys(CLI)
    access.get_team(CLI, org.team_a.id)
    assert read_changes(engine)["access"] == version + 1


def test_replicas_starting_together_create_one_first_admin(database_url: str, engine: Engine) -> None:
    engines = [create_store_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    secrets: list[str | None] = []

    def first_start(replica: Engine) -> None:
        start.wait()
        secrets.append(ensure_first_admin(replica))

    threads = [threading.Thread(target=first_start, args=(replica,)) for replica in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for replica in engines:
        replica.dispose()
    assert len(secrets) == 4 and len([s for s in secrets if s is not None]) == 1
    assert [k.role for k in AccessAdmin(engine).list_keys(CLI)] == ["admin"]


def test_a_principal_knows_its_models(access: AccessAdmin, org: Org) -> None:
    limited = access.create_key(CLI, name="lim", role="service", team_id=org.team_a.id, models=["a"])
    assert limited.key.principal().allows_model("a")
    assert not limited.key.principal().allows_model("b")
    assert org.service_a.key.principal().allows_model("anything")
