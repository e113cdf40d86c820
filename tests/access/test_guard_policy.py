"""Guard policies on teams and keys: stored, audited, validated, held to roles, and
resolved into the principal the gateway reads (the key's own, else its team's)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from keel.access import AccessAdmin, Actor, KeyRing
from keel.core import InvalidRequest, PermissionDenied
from keel.store import read_audit
from tests.access.conftest import CLI, Org, store_state


def test_a_key_gets_its_own_policy_else_its_teams_else_none(access: AccessAdmin, engine: Engine) -> None:
    strict = access.create_team(CLI, "strict-team", guard_policy="strict")
    plain = access.create_team(CLI, "plain-team")
    inherits = access.create_key(CLI, name="inherits", role="service", team_id=strict.id)
    overrides = access.create_key(CLI, name="own", role="service", team_id=strict.id, guard_policy="lenient")
    unguarded = access.create_key(CLI, name="none", role="service", team_id=plain.id)
    assert inherits.key.guard_policy is None and overrides.key.guard_policy == "lenient"
    ring = KeyRing(engine)
    ring.load()
    assert ring.authenticate(inherits.secret).guard_policy == "strict"
    assert ring.authenticate(overrides.secret).guard_policy == "lenient"
    assert ring.authenticate(unguarded.secret).guard_policy is None


async def test_a_key_created_elsewhere_is_looked_up_with_its_teams_policy(
    access: AccessAdmin, engine: Engine
) -> None:
    team = access.create_team(CLI, "strict-team", guard_policy="strict")
    ring = KeyRing(engine)
    ring.load()
    created = access.create_key(CLI, name="late", role="service", team_id=team.id)
    principal = await ring.authenticate_async(created.secret)
    assert principal.guard_policy == "strict"


def test_changing_a_teams_policy_reaches_its_keys_at_the_next_reload(
    access: AccessAdmin, engine: Engine
) -> None:
    team = access.create_team(CLI, "apps")
    created = access.create_key(CLI, name="app", role="service", team_id=team.id)
    ring = KeyRing(engine)
    ring.load()
    assert ring.authenticate(created.secret).guard_policy is None
    updated = access.update_team(CLI, team.id, guard_policy="strict")
    assert updated.guard_policy == "strict"
    assert ring.reload_if_changed()
    assert ring.authenticate(created.secret).guard_policy == "strict"


def test_policies_are_audited(access: AccessAdmin, engine: Engine) -> None:
    team = access.create_team(CLI, "apps", guard_policy="strict")
    access.update_team(CLI, team.id, guard_policy="pii-only")
    key = access.create_key(CLI, name="app", role="service", team_id=team.id, guard_policy="lenient")
    key_create, team_update, team_create = read_audit(engine, limit=3)
    assert team_create.after is not None and team_create.after["guard_policy"] == "strict"
    assert team_update.before is not None and team_update.before["guard_policy"] == "strict"
    assert team_update.after is not None and team_update.after["guard_policy"] == "pii-only"
    assert key_create.target_id == key.key.id
    assert key_create.after is not None and key_create.after["guard_policy"] == "lenient"


def test_a_rotated_key_keeps_its_policy(access: AccessAdmin) -> None:
    team = access.create_team(CLI, "apps")
    old = access.create_key(CLI, name="app", role="service", team_id=team.id, guard_policy="strict")
    assert access.rotate_key(CLI, old.key.id).key.guard_policy == "strict"


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "bad\nname"])
def test_bad_policy_names_are_refused_and_nothing_is_written(
    access: AccessAdmin, engine: Engine, name: str
) -> None:
    team = access.create_team(CLI, "apps")
    before = store_state(engine)
    with pytest.raises(InvalidRequest) as team_error:
        access.create_team(CLI, "other", guard_policy=name)
    with pytest.raises(InvalidRequest):
        access.update_team(CLI, team.id, guard_policy=name)
    with pytest.raises(InvalidRequest):
        access.create_key(CLI, name="app", role="service", team_id=team.id, guard_policy=name)
    assert team_error.value.param == "guard_policy"
    assert store_state(engine) == before


def test_a_name_of_64_characters_is_kept_stripped(access: AccessAdmin) -> None:
    name = "p" * 64
    assert access.create_team(CLI, "apps", guard_policy=f" {name} ").guard_policy == name


def test_only_admins_set_guard_policies(access: AccessAdmin, org: Org, engine: Engine) -> None:
    team_admin = org.actor(org.team_admin_a)
    before = store_state(engine)
    with pytest.raises(PermissionDenied):
        access.update_team(team_admin, org.team_a.id, guard_policy="lenient")
    with pytest.raises(PermissionDenied):
        access.create_key(team_admin, name="x", role="service", guard_policy="lenient")
    assert store_state(engine) == before
    admin = org.actor(org.admin)
    key = access.create_key(admin, name="x", role="service", team_id=org.team_a.id, guard_policy="strict")
    assert key.key.guard_policy == "strict"
    # Team admins still rename their team (the policy they cannot touch stays).
    assert access.update_team(team_admin, org.team_a.id, name="renamed").name == "renamed"


def test_a_key_made_by_a_key_with_its_own_policy_keeps_that_policy(access: AccessAdmin, org: Org) -> None:
    guarded = access.create_key(
        CLI, name="ta", role="team_admin", team_id=org.team_a.id, guard_policy="strict"
    )
    child = access.create_key(Actor.of_key(guarded.key.principal()), name="child", role="service")
    assert child.key.guard_policy == "strict"


def test_a_key_made_under_its_teams_policy_follows_the_team(access: AccessAdmin, org: Org) -> None:
    access.update_team(CLI, org.team_a.id, guard_policy="strict")
    team_admin = Actor.of_key(org.team_admin_a.key.principal("strict"))
    child = access.create_key(team_admin, name="child", role="service")
    # Not pinned on the key: when the team's policy changes, the child follows it.
    assert child.key.guard_policy is None
