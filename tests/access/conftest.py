"""An organisation to test access rules against: two teams, and keys of every role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select

from keel.access import AccessAdmin, Actor, CreatedKey, Team, api_keys, teams
from keel.store import audit_log, read_changes

CLI = Actor.cli()


@dataclass
class Org:
    admin: CreatedKey
    team_a: Team
    team_b: Team
    team_admin_a: CreatedKey
    member_a: CreatedKey
    service_a: CreatedKey
    team_admin_b: CreatedKey
    member_b: CreatedKey

    def actor(self, key: CreatedKey) -> Actor:
        return Actor.of_key(key.key.principal())


def build_org(access: AccessAdmin) -> Org:
    team_a = access.create_team(CLI, "team-a")
    team_b = access.create_team(CLI, "team-b")
    admin = access.ensure_first_admin(CLI)
    assert admin is not None
    return Org(
        admin=admin,
        team_a=team_a,
        team_b=team_b,
        team_admin_a=access.create_key(CLI, name="ta-a", role="team_admin", team_id=team_a.id),
        member_a=access.create_key(CLI, name="m-a", role="member", team_id=team_a.id),
        service_a=access.create_key(CLI, name="s-a", role="service", team_id=team_a.id),
        team_admin_b=access.create_key(CLI, name="ta-b", role="team_admin", team_id=team_b.id),
        member_b=access.create_key(CLI, name="m-b", role="member", team_id=team_b.id),
    )


@pytest.fixture
def access(engine: Engine) -> AccessAdmin:
    return AccessAdmin(engine)


@pytest.fixture
def org(access: AccessAdmin) -> Org:
    return build_org(access)


def store_state(engine: Engine) -> tuple[int, int | None, int, int]:
    """What a failed change must leave as it was: audit entries, the change version,
    teams and keys."""
    with engine.connect() as connection:
        audits = connection.execute(select(func.count()).select_from(audit_log)).scalar_one()
        team_count = connection.execute(select(func.count()).select_from(teams)).scalar_one()
        key_count = connection.execute(select(func.count()).select_from(api_keys)).scalar_one()
    return audits, read_changes(engine).get("access"), team_count, key_count
