"""Rate limits through a real gateway: limits on models from settings, on keys and teams
from the admin API; OpenAI's ``x-ratelimit-*`` headers on answers and refusals."""

from __future__ import annotations

import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory

from keel.core import AccessSettings, RateLimitSettings

MESSAGES = [{"role": "user", "content": "hello there"}]


def test_a_model_rpm_limit_refuses_the_call_past_it_with_headers(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, route_options={"gpt-test": {"limits": RateLimitSettings(rpm=3)}}
    )
    client = gw.client()
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-reset-requests"]
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    error = refused.value
    assert error.code == "rate_limit_exceeded"
    assert error.type == "rate_limit_error"
    headers = error.response.headers
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    # One request comes back every 20 s at 3 a minute.
    assert 1 <= int(headers["retry-after"]) <= 20
    assert headers["x-request-id"]
    assert len(upstream.requests()) == 3
    records = gw.records()
    assert sorted(r.status for r in records) == [200, 200, 200, 429]
    [refusal] = [r for r in records if r.status == 429]
    assert refusal.error_type == "rate_limit_error"
    assert refusal.route == "gpt-test"


async def test_a_streamed_answer_carries_the_rate_limit_headers(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, route_options={"gpt-test": {"limits": RateLimitSettings(rpm=5)}}
    )
    client = gw.async_client()
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "5"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "echo: hello there"
    await client.close()


def test_without_limits_answers_carry_no_rate_limit_headers(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    raw = gw.client().chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert not [name for name in raw.headers if name.startswith("x-ratelimit")]


def test_a_token_limit_counts_what_a_call_may_use_then_refunds_what_it_did_not(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, route_options={"gpt-test": {"limits": RateLimitSettings(tpm=600)}}
    )
    client = gw.client()
    # max_tokens=400 plus the body's bytes fit 600 once; the call uses 5 tokens, and the rest
    # comes back, so the next calls fit too.
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES, max_tokens=400
        )
        assert raw.headers["x-ratelimit-limit-tokens"] == "600"
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 200
    # A call that could never fit is refused without a wait to retry after.
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, max_tokens=1000)
    assert "retry-after" not in refused.value.response.headers
    assert "too large" in refused.value.message
    assert len(upstream.requests()) == 4


def test_key_and_team_limits_set_through_the_admin_api_apply_at_once(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]}, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    team_id = admin.team("t")
    key_a, secret_a = admin.new_key("a", team_id=team_id)
    _, secret_b = admin.new_key("b", team_id=team_id)
    a, b = gw.client(secret_a), gw.client(secret_b)
    a.chat.completions.create(model="gpt-test", messages=MESSAGES)

    admin.post("/limits", {"scope": "key", "scope_id": key_a, "rpm": 1})
    raw = a.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert raw.headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError):
        a.chat.completions.create(model="gpt-test", messages=MESSAGES)
    # Another key of the team is not limited by a's limit...
    for _ in range(3):
        b.chat.completions.create(model="gpt-test", messages=MESSAGES)

    # ... but by its team's.
    admin.post("/limits", {"scope": "team", "scope_id": team_id, "rpm": 2})
    b.chat.completions.create(model="gpt-test", messages=MESSAGES)
    b.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as refused:
        b.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert refused.value.response.headers["x-ratelimit-limit-requests"] == "2"
