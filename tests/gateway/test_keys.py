"""Virtual keys on the data plane: the openai SDK against a real gateway with access on."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory, RunningGateway

from keel.access import KEY_PREFIX, AccessAdmin, Actor
from keel.core import AccessSettings

# A long refresh interval: a test that sees a change at once did not get it from a poll.
ACCESS = AccessSettings(enabled=True, refresh_interval=60)
MESSAGES = [{"role": "user", "content": "hello there"}]


def _post(gw: RunningGateway, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers=headers,
        timeout=10,
    )


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> RunningGateway:
    return gateway_factory({"gpt-test": [upstream], "gpt-other": [upstream]}, access=ACCESS)


BAD_HEADERS = [
    {},
    {"Authorization": "Basic abc"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer nope"},
    {"Authorization": f"Bearer {KEY_PREFIX}{'x' * 43}"},  # well formed, unknown
    {"x-api-key": ""},
]


def test_requests_without_a_valid_key_get_401_and_never_reach_upstream(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    for headers in BAD_HEADERS:
        response = _post(gw, headers)
        assert response.status_code == 401, headers
        error = response.json()["error"]
        assert error["type"] == "authentication_error"
        assert error["message"]
    assert upstream.requests() == []
    records = gw.records()
    assert [r.status for r in records] == [401] * len(BAD_HEADERS)
    assert {r.key_id for r in records} == {None}


def test_a_valid_key_is_recorded_with_its_team_and_end_user_and_never_logged(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    admin = gw.admin()
    team_id = admin.team("search")
    key_id, secret = admin.new_key("search-app", team_id=team_id)
    reply = gw.client(secret).chat.completions.create(model="gpt-test", messages=MESSAGES, user="user-42")
    assert reply.choices[0].message.content == "echo: hello there"
    # The client's key stays at the gateway: upstream gets the provider's.
    assert upstream.last_request.api_key == "sk-upstream"
    [record] = gw.records()
    assert (record.key_id, record.team_id, record.end_user) == (key_id, team_id, "user-42")
    stored = repr(dataclasses.asdict(record))
    assert secret not in stored
    assert secret[10:30] not in stored


def test_a_key_in_an_anthropic_or_azure_style_header_works_and_stays_at_the_gateway(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    admin = gw.admin()
    key_id, secret = admin.new_key("other-client", team_id=admin.team("t"))
    for header in ("x-api-key", "api-key"):
        response = _post(gw, {header: secret})
        assert response.status_code == 200, response.text
        sent = upstream.last_request.headers
        assert not [name for name, value in sent.items() if secret in value]
    assert [r.key_id for r in gw.records()] == [key_id, key_id]


def test_a_key_restricted_to_models_gets_403_for_another(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    admin = gw.admin()
    _, secret = admin.new_key("narrow", team_id=admin.team("t"), models=["gpt-test"])
    client = gw.client(secret)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-other", messages=MESSAGES)
    assert "gpt-other" in refused.value.message
    assert len(upstream.requests()) == 1


def test_a_revoked_key_fails_on_the_next_call(gw: RunningGateway) -> None:
    admin = gw.admin()
    key_id, secret = admin.new_key("soon-gone", team_id=admin.team("t"))
    client = gw.client(secret)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    admin.post(f"/keys/{key_id}/revoke", expect=200)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert refused.value.code == "key_revoked"


def test_a_rotated_key_fails_and_its_replacement_works(gw: RunningGateway) -> None:
    admin = gw.admin()
    key_id, old = admin.new_key("rotating", team_id=admin.team("t"))
    new = admin.post(f"/keys/{key_id}/rotate", expect=200)["key"]
    with pytest.raises(openai.AuthenticationError):
        gw.client(old).chat.completions.create(model="gpt-test", messages=MESSAGES)
    gw.client(new).chat.completions.create(model="gpt-test", messages=MESSAGES)


def test_an_expired_key_fails(gw: RunningGateway) -> None:
    admin = gw.admin()
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    _, secret = admin.new_key("short-lived", team_id=admin.team("t"), expires_at=expires_at.isoformat())
    client = gw.client(secret)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.01)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert refused.value.code == "key_expired"


def test_a_key_created_by_another_process_works_on_first_use(gw: RunningGateway) -> None:
    # Written straight to the store, as `keel keys create` in another process does; the
    # gateway's poll is a minute away, so only the lookup on a miss can find it.
    store = AccessAdmin(gw.app.engine)
    team = store.create_team(Actor.system("test"), "elsewhere")
    created = store.create_key(Actor.system("test"), name="cli-made", role="service", team_id=team.id)
    gw.client(created.secret).chat.completions.create(model="gpt-test", messages=MESSAGES)
    [record] = gw.records()
    assert (record.key_id, record.team_id) == (created.key.id, team.id)


def test_a_service_key_works_on_the_data_plane_but_not_on_the_admin_api(gw: RunningGateway) -> None:
    admin = gw.admin()
    _, secret = admin.new_key("svc", team_id=admin.team("t"))
    gw.client(secret).chat.completions.create(model="gpt-test", messages=MESSAGES)
    for path in ("/me", "/keys", "/usage"):
        refused = admin.call("GET", path, key=secret)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["type"] == "permission_error"


def test_with_access_off_any_key_works_and_nothing_is_attributed(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    gw.client("anything").chat.completions.create(model="gpt-test", messages=MESSAGES, user="u1")
    [record] = gw.records()
    assert (record.key_id, record.team_id, record.end_user) == (None, None, "u1")
