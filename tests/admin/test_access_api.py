"""The admin API for teams, keys, audit and /me: what each role may do, and above all
what it may not (every endpoint is tried by keys of another team, a service key, a
revoked, an expired and a malformed key)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from keel.access import AccessAdmin, CreatedKey, KeyRing
from tests.access.clock import FakeClock
from tests.access.conftest import CLI, Org, build_org, store_state
from tests.admin.conftest import bearer

# Every access endpoint, aimed at team B's objects ({team}: team B, {key}: a key of B).
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/teams", {"name": "intruders"}),
    ("GET", "/teams", None),
    ("GET", "/teams/{team}", None),
    ("PATCH", "/teams/{team}", {"name": "taken-over"}),
    ("DELETE", "/teams/{team}", None),
    ("POST", "/keys", {"name": "x", "role": "service", "team_id": "{team}"}),
    ("GET", "/keys", None),
    ("GET", "/keys?team_id={team}", None),
    ("GET", "/keys/{key}", None),
    ("POST", "/keys/{key}/revoke", None),
    ("POST", "/keys/{key}/rotate", None),
    ("GET", "/audit", None),
    ("GET", "/audit?team_id={team}", None),
    ("GET", "/me", None),
]


@pytest.fixture
def org(engine: Engine, keyring: KeyRing) -> Org:
    built = build_org(AccessAdmin(engine))
    keyring.reload()
    return built


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    key: str | None,
    *,
    team: str = "",
    key_id: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    path = path.format(team=team, key=key_id)
    if body is not None:
        body = json.loads(json.dumps(body).replace("{team}", team))
    return await client.request(
        method, path, json=body, headers=headers if headers is not None else bearer(key or "")
    )


def assert_openai_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type and error["message"]
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("caller", ["team_admin_a", "member_a"])
async def test_a_key_of_team_a_never_reads_or_changes_team_b(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine, caller: str
) -> None:
    key: CreatedKey = getattr(org, caller)
    b_secrets = [org.team_admin_b, org.member_b]
    b_words = {org.team_b.name, *(k.key.name for k in b_secrets), *(k.key.prefix for k in b_secrets)}
    before = store_state(engine)
    for method, path, body in ENDPOINTS:
        response = await call(
            admin_client, method, path, body, key.secret, team=org.team_b.id, key_id=org.member_b.key.id
        )
        where = f"{caller} {method} {path}"
        assert not any(word in response.text for word in b_words), where
        if response.status_code == 200:
            # Lists and /me answer, showing team A's objects only.
            data = response.json().get("data", [response.json()])
            teams = {item["id"] if item.get("object") == "team" else item["team_id"] for item in data}
            assert teams <= {org.team_a.id}, where
        else:
            assert response.status_code in (403, 404), where
            assert response.json()["error"]["message"], where
    after = store_state(engine)
    assert after == before, "nothing changed"


async def test_lists_show_each_role_what_it_may_see(admin_client: httpx.AsyncClient, org: Org) -> None:
    async def ids(path: str, key: CreatedKey) -> set[str]:
        response = await admin_client.get(path, headers=bearer(key.secret))
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]}

    team_a_keys = {org.team_admin_a.key.id, org.member_a.key.id, org.service_a.key.id}
    assert await ids("/keys", org.team_admin_a) == team_a_keys
    assert await ids("/keys", org.member_a) == {org.member_a.key.id}
    assert await ids("/keys", org.admin) == team_a_keys | {
        org.admin.key.id,
        org.team_admin_b.key.id,
        org.member_b.key.id,
    }
    assert await ids("/teams", org.member_a) == {org.team_a.id}
    assert await ids("/teams", org.admin) == {org.team_a.id, org.team_b.id}
    audit = await admin_client.get("/audit", headers=bearer(org.team_admin_a.secret))
    assert {e["team_id"] for e in audit.json()["data"]} == {org.team_a.id}
    denied = await admin_client.get("/audit", headers=bearer(org.member_a.secret))
    assert_openai_error(denied, 403, "permission_error")


async def test_a_member_cannot_create_more_powerful_keys(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    before = store_state(engine)
    for role in ("admin", "team_admin"):
        response = await admin_client.post(
            "/keys", json={"name": "up", "role": role}, headers=bearer(org.member_a.secret)
        )
        assert_openai_error(response, 403, "permission_error")
    response = await admin_client.post(
        "/keys", json={"name": "up", "role": "admin"}, headers=bearer(org.team_admin_a.secret)
    )
    assert_openai_error(response, 403, "permission_error")
    assert store_state(engine) == before
    made = await admin_client.post(
        "/keys", json={"name": "svc", "role": "service"}, headers=bearer(org.member_a.secret)
    )
    assert made.status_code == 201 and made.json()["team_id"] == org.team_a.id


async def test_service_keys_are_refused_by_every_endpoint(admin_client: httpx.AsyncClient, org: Org) -> None:
    for method, path, body in ENDPOINTS:
        response = await call(
            admin_client,
            method,
            path,
            body,
            org.service_a.secret,
            team=org.team_a.id,
            key_id=org.service_a.key.id,
        )
        assert_openai_error(response, 403, "permission_error")
        assert "data plane" in response.json()["error"]["message"]


async def test_revoked_and_expired_keys_fail_at_once_on_every_endpoint(
    admin_client: httpx.AsyncClient, org: Org, keyring_clock: FakeClock, engine: Engine
) -> None:
    access = AccessAdmin(engine)
    short = access.create_key(
        CLI, name="short", role="team_admin", team_id=org.team_a.id, ttl=timedelta(hours=1)
    )
    revoke = await admin_client.post(
        f"/keys/{org.team_admin_a.key.id}/revoke", headers=bearer(org.admin.secret)
    )
    assert revoke.status_code == 200 and revoke.json()["status"] == "revoked"
    assert (await admin_client.get("/me", headers=bearer(short.secret))).status_code == 200
    keyring_clock.advance(timedelta(hours=1))
    for secret, reason in ((org.team_admin_a.secret, "revoked"), (short.secret, "expired")):
        for method, path, body in ENDPOINTS:
            response = await call(
                admin_client, method, path, body, secret, team=org.team_a.id, key_id=org.member_a.key.id
            )
            assert_openai_error(response, 401, "authentication_error")
            assert reason in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-keel-key"},
        {"Authorization": "Bearer sk-keel-" + "Q" * 43},
        {"Authorization": "sk-keel-" + "Q" * 43},
    ],
)
async def test_a_bad_authorization_header_is_a_401_in_openai_format(
    admin_client: httpx.AsyncClient, org: Org, headers: dict[str, str]
) -> None:
    for method, path, body in ENDPOINTS:
        response = await call(
            admin_client,
            method,
            path,
            body,
            None,
            team=org.team_a.id,
            key_id=org.member_a.key.id,
            headers=headers,
        )
        assert_openai_error(response, 401, "authentication_error")


async def test_the_admin_workflow_shows_each_key_once(
    admin_client: httpx.AsyncClient, admin_key: str, keyring: KeyRing, engine: Engine
) -> None:
    auth = bearer(admin_key)
    me = await admin_client.get("/me", headers=auth)
    assert me.json()["role"] == "admin" and me.json()["team_id"] is None

    team = await admin_client.post(
        "/teams", json={"name": "search", "metadata": {"owner": "ml"}}, headers=auth
    )
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    renamed = await admin_client.patch(f"/teams/{team_id}", json={"name": "retrieval"}, headers=auth)
    assert renamed.json()["name"] == "retrieval" and renamed.json()["metadata"] == {"owner": "ml"}

    created = await admin_client.post(
        "/keys",
        json={
            "name": "bot",
            "role": "team_admin",
            "team_id": team_id,
            "models": ["gpt-x"],
            "ttl_seconds": 3600,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert secret.startswith(body["prefix"]) and body["status"] == "active" and body["models"] == ["gpt-x"]
    assert "key_hash" not in body and "hash" not in json.dumps(body)

    # The new key works at once (this process's ring reloaded) and is never shown again.
    team_admin = bearer(secret)
    own = await admin_client.get(f"/keys/{body['id']}", headers=team_admin)
    assert own.status_code == 200 and "key" not in own.json()
    listed = await admin_client.get("/keys", headers=auth)
    assert secret not in listed.text and all("key" not in item for item in listed.json()["data"])

    rotated = await admin_client.post(
        f"/keys/{body['id']}/rotate", json={"grace_seconds": 0}, headers=team_admin
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["key"]
    assert rotated.json()["rotated_from"] == body["id"] and new_secret != secret
    old = await admin_client.get("/me", headers=team_admin)
    assert_openai_error(old, 401, "authentication_error")
    assert (await admin_client.get("/me", headers=bearer(new_secret))).json()["key_id"] == rotated.json()[
        "id"
    ]

    still_active = await admin_client.delete(f"/teams/{team_id}", headers=auth)
    assert_openai_error(still_active, 400, "invalid_request_error")
    revoked = await admin_client.post(f"/keys/{rotated.json()['id']}/revoke", headers=auth)
    assert revoked.json()["status"] == "revoked"
    deleted = await admin_client.delete(f"/teams/{team_id}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["id"] == team_id

    audit = await admin_client.get("/audit", params={"limit": 100}, headers=auth)
    actions = [e["action"] for e in audit.json()["data"]]
    assert actions == [
        "team.delete",
        "key.revoke",
        "key.create",
        "key.rotate",
        "key.create",
        "team.update",
        "team.create",
        "key.create",
    ]
    for plaintext in (admin_key, secret, new_secret):
        assert plaintext not in audit.text
    assert audit.json()["data"][5]["before"]["name"] == "search"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "role": "god"}, "role"),
        ({"name": "", "role": "service"}, "name"),
        ({"name": "x", "role": "service", "team_id": "team_missing"}, "team_id"),
        ({"name": "x", "role": "member"}, "team_id"),
        ({"name": "x", "role": "service", "team_id": "{team}", "ttl_seconds": -5}, "ttl_seconds"),
        (
            {"name": "x", "role": "service", "team_id": "{team}", "expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
        ),
        ({"name": "x", "role": "service", "team_id": "{team}", "unknown": 1}, "unknown"),
    ],
)
async def test_bad_key_requests_are_clear_errors_that_write_nothing(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine, body: dict[str, Any], param: str
) -> None:
    before = store_state(engine)
    response = await call(admin_client, "POST", "/keys", body, org.admin.secret, team=org.team_a.id)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["param"] == param
    assert store_state(engine) == before


async def test_malformed_json_is_a_400(admin_client: httpx.AsyncClient, org: Org) -> None:
    response = await admin_client.post(
        "/teams",
        content=b"{not json",
        headers=bearer(org.admin.secret) | {"content-type": "application/json"},
    )
    assert_openai_error(response, 400, "invalid_request_error")


async def test_the_routes_are_documented_in_openapi(admin_client: httpx.AsyncClient) -> None:
    spec = (await admin_client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/teams",
        "/teams/{team_id}",
        "/keys",
        "/keys/{key_id}",
        "/keys/{key_id}/revoke",
        "/keys/{key_id}/rotate",
        "/audit",
        "/me",
    }
    assert set(paths["/teams/{team_id}"]) == {"get", "patch", "delete"}
    created = paths["/keys"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/KeyCreated")
    key_out = spec["components"]["schemas"]["KeyOut"]["properties"]
    assert "key" not in key_out and "key_hash" not in key_out


async def test_guard_policies_are_set_on_teams_and_keys_and_shown(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    admin = bearer(org.admin.secret)
    created = await admin_client.post(
        "/teams", json={"name": "apps", "guard_policy": "strict"}, headers=admin
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["guard_policy"] == "strict"
    key = await admin_client.post(
        "/keys", json={"name": "k", "team_id": team["id"], "guard_policy": "lenient"}, headers=admin
    )
    assert key.status_code == 201 and key.json()["guard_policy"] == "lenient"
    inherits = await admin_client.post(
        "/keys", json={"name": "k2", "role": "member", "team_id": team["id"]}, headers=admin
    )
    assert inherits.json()["guard_policy"] is None
    me = await admin_client.get("/me", headers=bearer(inherits.json()["key"]))
    assert me.json()["guard_policy"] == "strict"  # the team's, resolved by the key ring
    patched = await admin_client.patch(f"/teams/{team['id']}", json={"guard_policy": "pii"}, headers=admin)
    assert patched.status_code == 200 and patched.json()["guard_policy"] == "pii"
    audit = (await admin_client.get("/audit?limit=1", headers=admin)).json()["data"][0]
    assert (audit["before"]["guard_policy"], audit["after"]["guard_policy"]) == ("strict", "pii")


async def test_guard_policies_are_validated_and_reserved_to_admins(
    admin_client: httpx.AsyncClient, org: Org, engine: Engine
) -> None:
    before = store_state(engine)
    admin = bearer(org.admin.secret)
    for policy in ("", "x" * 65, 7):
        response = await admin_client.post(
            "/keys", json={"name": "k", "team_id": org.team_a.id, "guard_policy": policy}, headers=admin
        )
        assert_openai_error(response, 400, "invalid_request_error")
    team_admin = bearer(org.team_admin_a.secret)
    denied = await admin_client.patch(
        f"/teams/{org.team_a.id}", json={"guard_policy": "off"}, headers=team_admin
    )
    assert_openai_error(denied, 403, "permission_error")
    denied = await admin_client.post("/keys", json={"name": "k", "guard_policy": "off"}, headers=team_admin)
    assert_openai_error(denied, 403, "permission_error")
    assert store_state(engine) == before
