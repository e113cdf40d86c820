"""Who may do what: admin everything; a team admin its team; a member its own keys; a
service key nothing; no key makes a key more powerful than itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from keel.access import AccessAdmin, Actor
from keel.core import InvalidRequest, NotFound, PermissionDenied
from tests.access.conftest import CLI, Org, store_state


def test_a_team_admin_manages_its_own_team_only(access: AccessAdmin, org: Org, engine: Engine) -> None:
    ta = org.actor(org.team_admin_a)
    a_keys = {org.team_admin_a.key.id, org.member_a.key.id, org.service_a.key.id}
    assert {k.id for k in access.list_keys(ta)} == a_keys
    assert [t.id for t in access.list_teams(ta)] == [org.team_a.id]
    assert access.update_team(ta, org.team_a.id, metadata={"x": 1}).metadata == {"x": 1}
    made = access.create_key(ta, name="new", role="team_admin")
    assert made.key.team_id == org.team_a.id and made.key.created_by_key_id == org.team_admin_a.key.id

    before = store_state(engine)
    b_key = org.member_b.key.id
    with pytest.raises(NotFound):
        access.get_key(ta, b_key)
    with pytest.raises(NotFound):
        access.revoke_key(ta, b_key)
    with pytest.raises(NotFound):
        access.rotate_key(ta, b_key)
    with pytest.raises(NotFound):
        access.get_key(ta, org.admin.key.id)
    with pytest.raises(NotFound):
        access.get_team(ta, org.team_b.id)
    with pytest.raises(NotFound):
        access.update_team(ta, org.team_b.id, name="mine")
    with pytest.raises(PermissionDenied):
        access.list_keys(ta, team_id=org.team_b.id)
    with pytest.raises(PermissionDenied):
        access.create_key(ta, name="x", role="member", team_id=org.team_b.id)
    with pytest.raises(PermissionDenied):
        access.create_key(ta, name="x", role="admin")
    with pytest.raises(PermissionDenied):
        access.create_team(ta, "another")
    with pytest.raises(PermissionDenied):
        access.delete_team(ta, org.team_a.id)
    assert store_state(engine) == before


def test_a_member_sees_and_changes_only_its_own_keys(access: AccessAdmin, org: Org, engine: Engine) -> None:
    member = org.actor(org.member_a)
    assert [k.id for k in access.list_keys(member)] == [org.member_a.key.id]
    child = access.create_key(member, name="my-service", role="service")
    peer = access.create_key(member, name="my-member", role="member")
    assert child.key.team_id == org.team_a.id
    assert {k.id for k in access.list_keys(member)} == {org.member_a.key.id, child.key.id, peer.key.id}
    assert access.revoke_key(member, child.key.id).revoked_at is not None

    before = store_state(engine)
    for other in (org.service_a, org.team_admin_a, org.member_b):
        with pytest.raises(NotFound):
            access.get_key(member, other.key.id)
        with pytest.raises(NotFound):
            access.revoke_key(member, other.key.id)
    for role in ("team_admin", "admin"):
        with pytest.raises(PermissionDenied, match="more powerful"):
            access.create_key(member, name="x", role=role)
    with pytest.raises(PermissionDenied):
        access.create_key(member, name="x", role="member", team_id=org.team_b.id)
    with pytest.raises(PermissionDenied):
        access.update_team(member, org.team_a.id, name="renamed")
    with pytest.raises(PermissionDenied):
        access.read_audit(member)
    assert store_state(engine) == before


def test_a_member_that_rotates_itself_keeps_its_keys(access: AccessAdmin, org: Org) -> None:
    member = org.actor(org.member_a)
    child = access.create_key(member, name="svc", role="service")
    rotated = access.rotate_key(member, org.member_a.key.id)
    new_member = Actor.of_key(rotated.key.principal())
    assert {k.id for k in access.list_keys(new_member)} == {rotated.key.id, child.key.id}
    # The old identity, still valid during no grace period, owns nothing any more.
    assert access.list_keys(member, include_inactive=True) == [access.get_key(CLI, org.member_a.key.id)]


def test_a_restricted_key_only_creates_keys_as_restricted(access: AccessAdmin, org: Org) -> None:
    limited = access.create_key(
        CLI, name="lim", role="team_admin", team_id=org.team_a.id, models=["a", "b"], ttl=timedelta(hours=1)
    )
    actor = org.actor(limited)
    inherited = access.create_key(actor, name="child", role="member")
    assert inherited.key.allowed_models == ("a", "b")
    assert inherited.key.expires_at == limited.key.expires_at
    assert access.create_key(actor, name="one", role="service", models=["a"]).key.allowed_models == ("a",)
    with pytest.raises(PermissionDenied, match="models"):
        access.create_key(actor, name="wider", role="service", models=["a", "c"])
    with pytest.raises(PermissionDenied, match="outlives"):
        access.create_key(actor, name="longer", role="service", ttl=timedelta(days=2))


def test_no_key_changes_a_more_powerful_key(access: AccessAdmin, org: Org) -> None:
    # A team admin key in the team, made by the operator: a member cannot see it; another
    # team admin of the team can, and may revoke it (same power).
    other_admin = access.create_key(CLI, name="ta2", role="team_admin", team_id=org.team_a.id)
    member_made_service = access.create_key(org.actor(org.member_a), name="svc", role="service")
    ta = org.actor(org.team_admin_a)
    assert access.revoke_key(ta, member_made_service.key.id).revoked_at is not None
    assert access.revoke_key(ta, other_admin.key.id).revoked_at is not None


def test_service_keys_do_nothing_here(access: AccessAdmin, org: Org) -> None:
    service = org.actor(org.service_a)
    calls = [
        lambda: access.list_keys(service),
        lambda: access.get_key(service, org.service_a.key.id),
        lambda: access.create_key(service, name="x", role="service"),
        lambda: access.revoke_key(service, org.service_a.key.id),
        lambda: access.rotate_key(service, org.service_a.key.id),
        lambda: access.list_teams(service),
        lambda: access.read_audit(service),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(NotFound):
        access.get_team(service, org.team_a.id)


def test_audit_is_read_by_admins_and_by_team_admins_for_their_team(access: AccessAdmin, org: Org) -> None:
    everything = access.read_audit(org.actor(org.admin))
    assert {e.team_id for e in everything} == {None, org.team_a.id, org.team_b.id}
    ta = org.actor(org.team_admin_a)
    own = access.read_audit(ta)
    assert own and {e.team_id for e in own} == {org.team_a.id}
    assert access.read_audit(ta, team_id=org.team_a.id) == own
    with pytest.raises(PermissionDenied):
        access.read_audit(ta, team_id=org.team_b.id)
    assert len(access.read_audit(CLI, limit=2)) == 2
    with pytest.raises(InvalidRequest):
        access.read_audit(CLI, limit=0)
