"""The admin API for budgets, prices and usage: what each role may do, and what it may
not (another team's budgets and usage, prices for non-admins), and bad input that leaves
nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from keel.access import AccessAdmin, CreatedKey, KeyRing
from keel.core import SpendSettings
from keel.spend import (
    InProcessCounters,
    LimitWindow,
    SpendLedger,
    SpendScopes,
    budgets,
    prices,
    rate_limits,
    set_budget,
    set_rate_limit,
)
from keel.spend._ledger_store import append_ledger_rows
from keel.store import audit_log, insert_records
from tests.access.conftest import Org, build_org
from tests.admin.conftest import bearer
from tests.store.conftest import make_record


@pytest.fixture
def org(engine: Engine, keyring: KeyRing) -> Org:
    built = build_org(AccessAdmin(engine))
    keyring.reload()
    return built


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


async def _post(
    client: httpx.AsyncClient, path: str, key: CreatedKey, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(path, json=body, headers=bearer(key.secret))


async def _get(client: httpx.AsyncClient, path: str, key: CreatedKey) -> httpx.Response:
    return await client.get(path, headers=bearer(key.secret))


def _budget(scope: str, scope_id: str, limit: str = "25") -> dict[str, Any]:
    return {"scope": scope, "scope_id": scope_id, "period": "month", "limit_usd": limit}


async def test_team_admins_set_budgets_on_their_team_and_its_keys_only(
    admin_client: httpx.AsyncClient, org: Org
) -> None:
    a, b = org.team_a.id, org.team_b.id
    made = await _post(admin_client, "/budgets", org.team_admin_a, _budget("team", a, "12.5"))
    assert made.status_code == 201, made.text
    assert made.json()["limit_nanos"] == 12_500_000_000 and made.json()["team_id"] == a
    on_key = await _post(admin_client, "/budgets", org.team_admin_a, _budget("key", org.member_a.key.id))
    assert on_key.status_code == 201 and on_key.json()["team_id"] == a
    refusals = [
        await _post(admin_client, "/budgets", org.team_admin_a, _budget("team", b)),
        await _post(admin_client, "/budgets", org.team_admin_a, _budget("key", org.member_b.key.id)),
        await _post(admin_client, "/budgets", org.member_a, _budget("team", a)),
        await _post(admin_client, "/budgets", org.team_admin_a, _budget("model", "gpt-4o")),
        await _post(admin_client, "/budgets", org.service_a, _budget("team", a)),
    ]
    assert [r.status_code for r in refusals] == [404, 404, 403, 403, 403]
    assert (await _post(admin_client, "/budgets", org.admin, _budget("model", "gpt-4o"))).status_code == 201


async def test_budgets_are_read_by_their_team_and_hidden_from_others(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    mine = set_budget(
        engine, scope="team", scope_id=org.team_a.id, period="day", limit_nanos=10_000, actor="t"
    )
    theirs = set_budget(engine, scope="team", scope_id=org.team_b.id, period="day", limit_nanos=1, actor="t")
    listed = await _get(admin_client, "/budgets", org.member_a)
    assert [b["id"] for b in listed.json()["data"]] == [mine.id]
    assert len((await _get(admin_client, "/budgets", org.admin)).json()["data"]) == 2
    assert (await _get(admin_client, f"/budgets?team_id={org.team_b.id}", org.member_a)).status_code == 403
    assert (await _get(admin_client, f"/budgets/{theirs.id}", org.team_admin_a)).status_code == 404
    deleted = await admin_client.delete(f"/budgets/{theirs.id}", headers=bearer(org.team_admin_a.secret))
    assert deleted.status_code == 404
    member_delete = await admin_client.delete(f"/budgets/{mine.id}", headers=bearer(org.member_a.secret))
    assert member_delete.status_code == 403
    assert _count(engine, budgets) == 2
    ok = await admin_client.delete(f"/budgets/{mine.id}", headers=bearer(org.team_admin_a.secret))
    assert ok.status_code == 200 and _count(engine, budgets) == 1


async def test_one_budget_shows_its_window_from_the_ledger(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    budget = set_budget(
        engine, scope="team", scope_id=org.team_a.id, period="month", limit_nanos=10_000, actor="t"
    )
    now = datetime.now(UTC)
    row = {"at": now, "request_id": "r", "reserved_at": now, "team_id": org.team_a.id, "instance_id": "i"}
    append_ledger_rows(
        engine,
        [
            {**row, "reservation_id": "a", "entry": "reserve", "amount_nanos": 4_000},
            {**row, "reservation_id": "a", "entry": "settle", "amount_nanos": 1_500},
            {**row, "reservation_id": "b", "entry": "reserve", "amount_nanos": 2_000},
        ],
    )
    shown = (await _get(admin_client, f"/budgets/{budget.id}", org.member_a)).json()
    assert (shown["spent_nanos"], shown["reserved_nanos"], shown["remaining_nanos"]) == (1_500, 2_000, 6_500)
    assert shown["spent_usd"] == "0.0000015"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_budget("team", "no-such-team"), 404, "No team with id 'no-such-team'"),
        (_budget("team", "{a}", "-5"), 400, "cannot be negative"),
        (_budget("team", "{a}", "0"), 400, "more than zero"),
        ({**_budget("team", "{a}"), "period": "year"}, 400, "Unknown budget period"),
        ({**_budget("team", "{a}"), "limit_usd": "lots"}, 400, "limit_usd"),
    ],
)
async def test_bad_budgets_are_clear_errors_and_write_nothing(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine, body: dict[str, Any], status: int, message: str
) -> None:
    body = {k: (v.replace("{a}", org.team_a.id) if isinstance(v, str) else v) for k, v in body.items()}
    audits = _count(engine, audit_log)
    response = await _post(admin_client, "/budgets", org.admin, body)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert _count(engine, budgets) == 0 and _count(engine, audit_log) == audits


async def test_prices_are_read_by_anyone_and_set_by_admins_only(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    listed = (await _get(admin_client, "/prices?model=openai/gpt-4o-2024-08-06", org.member_a)).json()["data"]
    assert {(p["token_type"], p["usd_per_million"], p["source"]) for p in listed} == {
        ("input", "2.5", "builtin"),
        ("cached_input", "1.25", "builtin"),
        ("output", "10", "builtin"),
    }
    price = {"model": "gpt-4o", "token_type": "output", "usd_per_million": "9.5"}
    assert (await _post(admin_client, "/prices", org.team_admin_a, price)).status_code == 403
    bad = await _post(admin_client, "/prices", org.admin, {**price, "token_type": "reasoning"})
    assert bad.status_code == 400 and "Unknown token type 'reasoning'" in bad.json()["error"]["message"]
    negative = await _post(admin_client, "/prices", org.admin, {**price, "usd_per_million": "-1"})
    assert negative.status_code == 400
    assert _count(engine, prices) == 0
    made = await _post(admin_client, "/prices", org.admin, price)
    assert made.status_code == 201 and made.json()["source"] == "api"
    listed = (await _get(admin_client, "/prices?model=gpt-4o", org.member_a)).json()["data"]
    assert {p["token_type"]: p["usd_per_million"] for p in listed}["output"] == "9.5"
    before = (await _get(admin_client, "/prices?model=gpt-4o&at=2025-01-01T00:00:00Z", org.admin)).json()
    assert {p["token_type"]: p["usd_per_million"] for p in before["data"]}["output"] == "10"


async def test_usage_is_limited_to_the_callers_team(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    a, b = org.team_a.id, org.team_b.id
    insert_records(
        engine,
        [
            make_record(1, created_at=datetime.now(UTC), team_id=a, cost_nanos=100),
            make_record(2, created_at=datetime.now(UTC), team_id=b, cost_nanos=7),
        ],
    )
    own = (await _get(admin_client, "/usage?by=team&since=1d", org.member_a)).json()["data"]
    assert [(r["team"], r["cost_nanos"]) for r in own] == [(a, 100)]
    everything = (await _get(admin_client, "/usage?by=team", org.admin)).json()["data"]
    assert {r["team"] for r in everything} == {a, b}
    assert (await _get(admin_client, f"/usage?team_id={b}", org.team_admin_a)).status_code == 403
    assert (await _get(admin_client, "/usage?by=region", org.admin)).status_code == 400
    csv = await _get(admin_client, "/usage?by=team&format=csv", org.team_admin_b)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[1].startswith(f"{b},1,")
    assert (await admin_client.get("/usage")).status_code == 401


@pytest.fixture
async def ledger(engine: Engine) -> AsyncIterator[SpendLedger]:
    started = SpendLedger(
        engine, InProcessCounters(), SpendSettings(heartbeat_interval_s=60, instance_timeout_s=600)
    )
    await started.start()
    yield started
    await started.close()


@pytest.fixture
def admin_services(ledger: SpendLedger) -> dict[str, object]:
    return {"spend": ledger}


async def test_changes_reach_this_processs_ledger_at_once(
    admin_client: httpx.AsyncClient, org: Org, ledger: SpendLedger
) -> None:
    price = {"model": "my-model", "token_type": "input", "usd_per_million": "3"}
    assert (await _post(admin_client, "/prices", org.admin, price)).status_code == 201
    assert ledger.prices.price_at("my-model", "input", datetime.now(UTC)) == 3
    assert (
        await _post(admin_client, "/budgets", org.admin, _budget("team", org.team_a.id))
    ).status_code == 201
    windows = ledger.windows_for(SpendScopes(team_id=org.team_a.id), datetime.now(UTC))
    assert [w.budget.limit_nanos for w in windows] == [25_000_000_000]


# -- rate limits -------------------------------------------------------------------------


def _limit(scope: str, scope_id: str, rpm: int | None = 60, tpm: int | None = None) -> dict[str, Any]:
    return {"scope": scope, "scope_id": scope_id, "rpm": rpm, "tpm": tpm}


async def test_team_admins_set_rate_limits_on_their_team_and_its_keys_only(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    a, b = org.team_a.id, org.team_b.id
    made = await _post(admin_client, "/limits", org.team_admin_a, _limit("team", a, 60, 10_000))
    assert made.status_code == 201, made.text
    assert made.json() | {"created_at": None} == {
        "object": "rate_limit",
        "id": made.json()["id"],
        "scope": "team",
        "scope_id": a,
        "rpm": 60,
        "tpm": 10_000,
        "team_id": a,
        "created_at": None,
        "created_by": made.json()["created_by"],
    }
    on_key = await _post(admin_client, "/limits", org.team_admin_a, _limit("key", org.member_a.key.id))
    assert on_key.status_code == 201 and on_key.json()["team_id"] == a
    refusals = [
        await _post(admin_client, "/limits", org.team_admin_a, _limit("team", b)),
        await _post(admin_client, "/limits", org.team_admin_a, _limit("key", org.member_b.key.id)),
        await _post(admin_client, "/limits", org.member_a, _limit("team", a)),
        await _post(admin_client, "/limits", org.member_a, _limit("key", org.member_a.key.id)),
        await _post(admin_client, "/limits", org.service_a, _limit("team", a)),
    ]
    assert [r.status_code for r in refusals] == [404, 404, 403, 403, 403]
    on_b = await _post(admin_client, "/limits", org.admin, _limit("key", org.member_b.key.id, None, 5))
    assert on_b.status_code == 201 and on_b.json()["team_id"] == b
    assert _count(engine, rate_limits) == 3


async def test_rate_limits_are_read_by_their_team_and_hidden_from_others(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    mine = set_rate_limit(engine, scope="team", scope_id=org.team_a.id, rpm=10, actor="t")
    theirs = set_rate_limit(engine, scope="team", scope_id=org.team_b.id, tpm=1, actor="t")
    listed = await _get(admin_client, "/limits", org.member_a)
    assert [limit["id"] for limit in listed.json()["data"]] == [mine.id]
    assert len((await _get(admin_client, "/limits", org.admin)).json()["data"]) == 2
    assert (await _get(admin_client, f"/limits?team_id={org.team_b.id}", org.member_a)).status_code == 403
    assert (await _get(admin_client, "/limits", org.service_a)).status_code == 403
    assert (await admin_client.get("/limits")).status_code == 401
    deleted = await admin_client.delete(f"/limits/{theirs.id}", headers=bearer(org.team_admin_a.secret))
    assert deleted.status_code == 404 and "No rate limit" in deleted.json()["error"]["message"]
    member_delete = await admin_client.delete(f"/limits/{mine.id}", headers=bearer(org.member_a.secret))
    assert member_delete.status_code == 403
    assert _count(engine, rate_limits) == 2
    ok = await admin_client.delete(f"/limits/{mine.id}", headers=bearer(org.team_admin_a.secret))
    assert ok.status_code == 200 and ok.json()["id"] == mine.id and _count(engine, rate_limits) == 1
    gone = await admin_client.delete(f"/limits/{mine.id}", headers=bearer(org.admin.secret))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_limit("team", "no-such-team"), 404, "No team with id 'no-such-team'"),
        (_limit("key", "key_missing"), 404, "key_missing"),
        (_limit("team", "{a}", 0), 400, "rpm must be a whole number more than zero"),
        (_limit("team", "{a}", None, -5), 400, "tpm must be"),
        (_limit("team", "{a}", None, None), 400, "needs rpm, tpm or both"),
        (_limit("model", "gpt-4o"), 400, "Unknown rate-limit scope 'model'"),
        ({**_limit("team", "{a}"), "rpm": "fast"}, 400, "rpm"),
        ({**_limit("team", "{a}"), "burst": 3}, 400, "burst"),
    ],
)
async def test_bad_rate_limits_are_clear_errors_and_write_nothing(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine, body: dict[str, Any], status: int, message: str
) -> None:
    body = {k: (v.replace("{a}", org.team_a.id) if isinstance(v, str) else v) for k, v in body.items()}
    audits = _count(engine, audit_log)
    response = await _post(admin_client, "/limits", org.admin, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert _count(engine, rate_limits) == 0 and _count(engine, audit_log) == audits


async def test_rate_limit_changes_reach_this_processs_ledger_at_once(
    admin_client: httpx.AsyncClient, org: Org, ledger: SpendLedger
) -> None:
    a = org.team_a.id
    made = await _post(admin_client, "/limits", org.team_admin_a, _limit("team", a, 30, 900))
    assert made.status_code == 201
    assert ledger.limits_for(org.member_a.key.id, a) == [LimitWindow(f"team:{a}", 30, 900)]
    deleted = await admin_client.delete(f"/limits/{made.json()['id']}", headers=bearer(org.admin.secret))
    assert deleted.status_code == 200
    assert ledger.limits_for(org.member_a.key.id, a) == []
