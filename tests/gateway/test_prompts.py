"""Prompts from the registry, resolved by a real gateway: created and labelled through the
admin API, called with the openai SDK by ``prompt`` field or ``prompt:`` model alias."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory, RunningGateway

from keel.core import AccessSettings, RouteCacheSettings

TEMPLATE = [
    {"role": "system", "content": "You answer questions about {{ product }}."},
    {"role": "placeholder", "content": "{{ history }}"},
    {"role": "user", "content": "{{ question }}"},
]
VARIABLES = [
    {"name": "product", "type": "string", "default": "Keel"},
    {"name": "question", "type": "string"},
]
CONFIG = {"model": "gpt-test", "temperature": 0.2, "max_tokens": 50}


def _with_prompt(gw: RunningGateway, name: str = "support", **fields: Any) -> None:
    """Create prompt ``name`` (version 1) and point ``production`` at it."""
    admin = gw.admin()
    body = {"name": name, "template": TEMPLATE, "variables": VARIABLES, "model_config": CONFIG, **fields}
    assert admin.post("/prompts", body)["version"] == 1
    admin.put(f"/prompts/{name}/labels/production", {"version": 1})


def _ask(client: openai.OpenAI, question: str, **kwargs: Any) -> Any:
    prompt = {"name": "support", "label": "production", "variables": {"question": question}}
    return client.chat.completions.create(
        model="gpt-test", messages=[], extra_body={"prompt": prompt}, **kwargs
    )


@pytest.fixture
def gw(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> RunningGateway:
    gw = gateway_factory({"gpt-test": [upstream]})
    _with_prompt(gw)
    return gw


def test_a_prompt_named_in_the_request_is_rendered_with_its_model_config(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    reply = _ask(gw.client(), "how do budgets work")
    assert reply.choices[0].message.content == "echo: how do budgets work"
    sent = upstream.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "You answer questions about Keel."},
        {"role": "user", "content": "how do budgets work"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 50)
    assert "prompt" not in sent
    [record] = gw.records()
    assert (record.prompt_name, record.prompt_version) == ("support", 1)
    assert record.requested_model == "gpt-test"


def test_the_request_overrides_the_prompts_model_config_and_adds_its_history(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    prompt = {"name": "support", "variables": {"question": "and then?", "product": "Acme"}}
    gw.client().chat.completions.create(
        model="gpt-test",
        messages=history,
        temperature=0.9,
        extra_body={"prompt": prompt},
    )
    sent = upstream.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "You answer questions about Acme."},
        *history,
        {"role": "user", "content": "and then?"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.9, 50)


def test_the_prompt_model_alias_takes_the_model_from_the_version(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    reply = gw.client().chat.completions.create(
        model="prompt:support@production",
        messages=[],
        extra_body={"prompt": {"variables": {"question": "alias?"}}},
    )
    assert reply.choices[0].message.content == "echo: alias?"
    assert upstream.last_request.json["temperature"] == 0.2
    [record] = gw.records()
    assert record.requested_model == "prompt:support@production"
    assert (record.route, record.prompt_name, record.prompt_version) == ("gpt-test", "support", 1)


async def test_a_prompt_can_be_streamed(gw: RunningGateway, upstream: FakeDeployment) -> None:
    client = gw.async_client()
    stream = await client.chat.completions.create(
        model="gpt-test",
        messages=[],
        stream=True,
        extra_body={"prompt": {"name": "support", "variables": {"question": "streamed"}}},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    assert text == "echo: streamed"
    [record] = gw.records()
    assert (record.stream, record.prompt_version) == (True, 1)


def test_moving_the_label_changes_the_next_call_and_rollback_restores_it(
    gw: RunningGateway, upstream: FakeDeployment
) -> None:
    admin = gw.admin()
    v2 = [
        {"role": "system", "content": "Be brief about {{ product }}."},
        {"role": "user", "content": "{{ question }}"},
    ]
    created = admin.post(
        "/prompts/support/versions",
        {"template": v2, "variables": VARIABLES, "model_config": {**CONFIG, "temperature": 0}},
    )
    assert created["version"] == 2
    client = gw.client()
    _ask(client, "one", user="one")
    assert upstream.last_request.json["messages"][0]["content"] == "You answer questions about Keel."
    admin.put("/prompts/support/labels/production", {"version": 2})
    _ask(client, "two", user="two")
    assert upstream.last_request.json["messages"][0]["content"] == "Be brief about Keel."
    assert upstream.last_request.json["temperature"] == 0
    admin.post("/prompts/support/labels/production/rollback", expect=200)
    _ask(client, "three", user="three")
    assert upstream.last_request.json["messages"][0]["content"] == "You answer questions about Keel."
    assert {r.end_user: r.prompt_version for r in gw.records()} == {"one": 1, "two": 2, "three": 1}


def test_a_missing_variable_is_a_400_naming_it(gw: RunningGateway, upstream: FakeDeployment) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gw.client().chat.completions.create(
            model="gpt-test", messages=[], extra_body={"prompt": {"name": "support", "variables": {}}}
        )
    assert "question" in refused.value.message
    assert upstream.requests() == []


def test_a_mistyped_variable_is_a_400(gw: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(gw.client(), 42)
    assert "question" in refused.value.message


@pytest.mark.parametrize(
    ("prompt", "model", "says"),
    [
        ({"name": "nope", "variables": {"question": "q"}}, "gpt-test", "Unknown prompt 'nope'"),
        (
            {"name": "support", "label": "staging", "variables": {"question": "q"}},
            "gpt-test",
            "no label 'staging'",
        ),
        ({"name": "support", "version": 9, "variables": {"question": "q"}}, "gpt-test", "no version 9"),
        ({"variables": {"question": "q"}}, "prompt:nope@production", "Unknown prompt 'nope'"),
    ],
)
def test_an_unknown_prompt_label_or_version_is_a_404(
    gw: RunningGateway, upstream: FakeDeployment, prompt: dict[str, Any], model: str, says: str
) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        gw.client().chat.completions.create(model=model, messages=[], extra_body={"prompt": prompt})
    assert says in refused.value.message
    assert upstream.requests() == []
    [record] = gw.records()
    assert record.status == 404


def test_a_prompt_call_is_cached_under_what_it_rendered(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, route_options={"gpt-test": {"cache": RouteCacheSettings(ttl=60)}}
    )
    _with_prompt(gw)
    admin = gw.admin()
    client = gw.client()
    _ask(client, "cached?")
    _ask(client, "cached?")
    assert len(upstream.requests()) == 1
    # A label move changes what is sent, so the old version's answer is not served.
    admin.post("/prompts/support/versions", {"template": TEMPLATE[:1] + TEMPLATE[2:], "variables": VARIABLES})
    admin.put("/prompts/support/labels/production", {"version": 2})
    _ask(client, "cached?")
    assert len(upstream.requests()) == 2


def test_a_teams_prompt_is_not_served_to_another_team(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]}, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    red, blue = admin.team("red"), admin.team("blue")
    _with_prompt(gw, team_id=red)
    _, red_key = admin.new_key("red", team_id=red)
    _, blue_key = admin.new_key("blue", team_id=blue)
    _ask(gw.client(red_key), "mine")
    with pytest.raises(openai.NotFoundError) as refused:
        _ask(gw.client(blue_key), "theirs")
    assert "Unknown prompt 'support'" in refused.value.message
    assert len(upstream.requests()) == 1
    # An organisation-wide prompt serves every team.
    _with_prompt(gw, name="shared")
    prompt = {"name": "shared", "variables": {"question": "ours"}}
    gw.client(blue_key).chat.completions.create(model="gpt-test", messages=[], extra_body={"prompt": prompt})
    assert len(upstream.requests()) == 2


def test_a_text_prompt_serves_completions(gw: RunningGateway, upstream: FakeDeployment) -> None:
    gw.admin().post(
        "/prompts",
        {"name": "haiku", "template": "Write about {{ topic }}.", "variables": {"topic": "string"}},
    )
    gw.admin().put("/prompts/haiku/labels/production", {"version": 1})
    reply = gw.client().completions.create(
        model="gpt-test", prompt="", extra_body={"prompt": {"name": "haiku", "variables": {"topic": "rain"}}}
    )
    assert upstream.last_request.json["prompt"] == "Write about rain."
    assert reply.choices[0].text
    [record] = gw.records()
    assert (record.endpoint, record.prompt_name, record.prompt_version) == ("completions", "haiku", 1)
