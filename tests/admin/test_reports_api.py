"""``GET /admin/reports/cost``: the monthly report over HTTP, scoped like the CLI's but by
role: an admin reads any team's or all, a team admin only its own, others nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from keel.access import AccessAdmin, Actor
from tests.admin.conftest import bearer
from tests.reports.conftest import Seeded


def _key(engine: Engine, role: str, team_id: str | None) -> str:
    created = AccessAdmin(engine).create_key(Actor.cli(), name=f"{role}-reader", role=role, team_id=team_id)
    return created.secret


async def test_an_admin_reads_every_team_and_a_team_admin_only_its_own(
    engine: Engine, keyring: object, admin_key: str, admin_client: httpx.AsyncClient, seeded: Seeded
) -> None:
    everything = await admin_client.get(
        "/reports/cost", params={"month": "2026-11"}, headers=bearer(admin_key)
    )
    assert everything.status_code == 200, everything.text
    assert everything.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in everything.headers["content-security-policy"]
    assert "alpha" in everything.text and "beta" in everything.text

    team_admin = _key(engine, "team_admin", seeded.alpha)
    member = _key(engine, "member", seeded.alpha)
    keyring.reload()  # type: ignore[attr-defined]
    own = await admin_client.get("/reports/cost", params={"month": "2026-11"}, headers=bearer(team_admin))
    assert own.status_code == 200, own.text
    assert "alpha" in own.text and "beta-batch" not in own.text and "claude-3-5-sonnet" not in own.text
    other = await admin_client.get(
        "/reports/cost", params={"month": "2026-11", "team_id": seeded.beta}, headers=bearer(team_admin)
    )
    assert other.status_code == 403
    refused = await admin_client.get("/reports/cost", params={"month": "2026-11"}, headers=bearer(member))
    assert refused.status_code == 403
    bad = await admin_client.get("/reports/cost", params={"month": "November"}, headers=bearer(admin_key))
    assert bad.status_code == 400 and "YYYY-MM" in bad.json()["error"]["message"]
