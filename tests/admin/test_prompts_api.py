"""The prompts routes of the admin API, with a real registry on each database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from keel.access import Principal
from keel.admin import create_admin_app
from keel.core import AuthenticationError
from keel.prompts import PromptRegistry
from keel.store import RequestRecord, insert_records, read_audit

PRINCIPALS = {
    "admin": Principal("k-admin", "root", "admin", None),
    "ta1": Principal("k-ta1", "lead one", "team_admin", "t1"),
    "m1": Principal("k-m1", "member one", "member", "t1"),
    "ta2": Principal("k-ta2", "lead two", "team_admin", "t2"),
    "svc": Principal("k-svc", "service", "service", "t1"),
}

CHAT = [
    {"role": "system", "content": "You support {{ product }}."},
    {"role": "placeholder", "content": "{{ history }}"},
    {"role": "user", "content": "{{ question }}"},
]
VARIABLES = [
    {"name": "product", "type": "string", "default": "Keel"},
    {"name": "question", "type": "string"},
]


class Keys:
    """The key ring's interface over fixed principals (the tokens are their names)."""

    def authenticate(self, token: str) -> Principal:
        if token not in PRINCIPALS:
            raise AuthenticationError("Invalid API key.")
        return PRINCIPALS[token]

    async def authenticate_async(self, token: str) -> Principal:
        return self.authenticate(token)


@pytest.fixture
def client(engine: Engine) -> TestClient:
    app = create_admin_app(engine=engine, keys=Keys(), prompts=PromptRegistry(engine))
    return TestClient(app)


def call(client: TestClient, method: str, path: str, key: str = "admin", **kwargs: Any) -> Any:
    return client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)


def create(client: TestClient, key: str = "admin", **fields: Any) -> Any:
    body = {
        "name": "support",
        "template": CHAT,
        "variables": VARIABLES,
        "model_config": {"model": "gpt-4o-mini"},
    }
    return call(client, "POST", "/prompts", key, json={**body, **fields})


def test_create_version_label_render_and_rollback(client: TestClient, engine: Engine) -> None:
    response = create(client, commit_message="first")
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 1 and response.json()["type"] == "chat"
    assert response.json()["model_config"] == {"model": "gpt-4o-mini"}
    second = call(
        client,
        "POST",
        "/prompts/support/versions",
        json={"template": CHAT[:1] + CHAT[2:], "variables": VARIABLES, "commit_message": "no history"},
    )
    assert second.status_code == 201 and second.json()["version"] == 2
    for version in (1, 2):
        moved = call(client, "PUT", "/prompts/support/labels/production", json={"version": version})
        assert moved.status_code == 200 and moved.json()["version"] == version and moved.json()["protected"]
    render = call(
        client,
        "POST",
        "/prompts/support/render",
        json={"variables": {"question": "Why?"}, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert render.status_code == 200
    assert render.json()["version"] == 2
    assert render.json()["messages"] == [
        {"role": "system", "content": "You support Keel."},
        {"role": "user", "content": "Why?"},
        {"role": "user", "content": "hi"},
    ]
    back = call(client, "POST", "/prompts/support/labels/production/rollback")
    assert back.status_code == 200 and back.json()["version"] == 1
    shown = call(client, "GET", "/prompts/support").json()
    assert shown["labels"]["production"]["version"] == 1 and shown["latest_version"] == 2
    assert [v["commit_message"] for v in shown["versions"]] == ["first", "no history"]
    assert call(client, "GET", "/prompts/support/versions/production").json()["version"] == 1
    assert call(client, "GET", "/prompts/support/versions/latest").json()["version"] == 2
    assert call(client, "GET", "/prompts/support/versions/2").json()["commit_message"] == "no history"
    assert len(call(client, "GET", "/prompts/support/versions").json()["data"]) == 2
    history = call(client, "GET", "/prompts/support/labels/production/history").json()["data"]
    assert [(m["from_version"], m["to_version"], m["action"]) for m in history] == [
        (None, 1, "set"),
        (1, 2, "set"),
        (2, 1, "rollback"),
    ]
    diff = call(client, "GET", "/prompts/support/diff", params={"a": 1, "b": 2}).json()["diff"]
    assert "-[placeholder]" in diff
    actions = [e.action for e in read_audit(engine, target_type="prompt")]
    assert actions == [
        "prompt.label.rollback",
        "prompt.label.set",
        "prompt.label.set",
        "prompt.version.create",
        "prompt.create",
    ]
    assert read_audit(engine)[0].actor == "key:k-admin (root)"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"template": "{{ nope }}", "variables": None}, 400, "undeclared variable 'nope'"),
        (
            {"template": [{"role": "user", "content": "{% for %}"}], "variables": None},
            400,
            "does not compile",
        ),
        ({"name": "bad name"}, 400, "Invalid prompt name"),
        ({"variables": [{"name": "question", "type": "decimal"}]}, 400, "unknown type 'decimal'"),
        ({"surprise": 1}, 400, "surprise"),
        ({"template": None}, 400, "template is a string; prompt 'support' got null"),
        ({"type": "chat", "template": "x"}, 400, "non-empty list of messages; prompt 'support' got a string"),
    ],
)
def test_bad_prompts_are_refused_and_nothing_is_written(
    client: TestClient, fields: dict[str, Any], status: int, message: str
) -> None:
    response = create(client, **fields)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert call(client, "GET", "/prompts").json()["data"] == []


def test_render_errors_are_clear(client: TestClient) -> None:
    create(client)
    call(client, "PUT", "/prompts/support/labels/production", json={"version": 1})
    missing = call(client, "POST", "/prompts/support/render", json={"variables": {}})
    assert missing.status_code == 400 and "Missing variable 'question'" in missing.json()["error"]["message"]
    typed = call(client, "POST", "/prompts/support/render", json={"variables": {"question": 1}})
    assert "must be string, not integer" in typed.json()["error"]["message"]
    unknown = call(client, "POST", "/prompts/support/render", json={"label": "canary"})
    assert unknown.status_code == 404 and "no label 'canary'" in unknown.json()["error"]["message"]
    assert call(client, "GET", "/prompts/nope").status_code == 404


def test_roles_and_teams(client: TestClient) -> None:
    assert create(client, "ta1", name="team-prompt").json()["version"] == 1  # owned by t1
    assert create(client, "m1", name="member-prompt").status_code == 403
    assert create(client, "ta1", name="org-prompt", team_id=None).status_code == 201  # defaults to own team
    assert create(client, "ta1", name="other-team", team_id="t2").status_code == 403
    assert create(client, "admin", name="org").status_code == 201
    assert create(client, "svc", name="x").status_code == 403
    assert create(client, "bogus", name="x").status_code == 401
    # A team admin moves unprotected labels of its team's prompts, never production.
    assert (
        call(client, "PUT", "/prompts/team-prompt/labels/staging", "ta1", json={"version": 1}).status_code
        == 200
    )
    refused = call(client, "PUT", "/prompts/team-prompt/labels/production", "ta1", json={"version": 1})
    assert refused.status_code == 403 and "protected" in refused.json()["error"]["message"]
    protect = call(
        client, "PUT", "/prompts/team-prompt/labels/staging", "ta1", json={"version": 1, "protected": True}
    )
    assert protect.status_code == 403
    # Another team sees neither the prompt nor, by its answer, that it exists.
    assert call(client, "GET", "/prompts/team-prompt", "ta2").status_code == 404
    assert (
        call(client, "PUT", "/prompts/team-prompt/labels/staging", "ta2", json={"version": 1}).status_code
        == 404
    )
    assert call(client, "PUT", "/prompts/org/labels/staging", "ta1", json={"version": 1}).status_code == 403
    # Members read their team's and the organisation's prompts.
    listed = {p["name"] for p in call(client, "GET", "/prompts", "m1").json()["data"]}
    assert listed == {"org", "org-prompt", "team-prompt"}
    assert {p["name"] for p in call(client, "GET", "/prompts", "ta2").json()["data"]} == {"org"}
    # A service key (an application's) fetches the versions it may render, and nothing else.
    assert call(client, "GET", "/prompts/team-prompt/versions/1", "svc").json()["version"] == 1
    assert call(client, "GET", "/prompts/team-prompt", "svc").status_code == 403
    assert call(client, "GET", "/prompts", "svc").status_code == 403
    assert (
        call(
            client,
            "POST",
            "/prompts/team-prompt/render",
            "m1",
            json={"variables": {"question": "q"}, "label": "staging"},
        ).status_code
        == 200
    )


def test_label_body_is_validated(client: TestClient) -> None:
    create(client)
    bad = call(client, "PUT", "/prompts/support/labels/staging", json={"version": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "version"
    missing = call(client, "PUT", "/prompts/support/labels/staging", json={"version": 9})
    assert missing.status_code == 404
    latest = call(client, "PUT", "/prompts/support/labels/latest", json={"version": 1})
    assert latest.status_code == 400 and "automatic" in latest.json()["error"]["message"]
    nothing = call(client, "POST", "/prompts/support/labels/staging/rollback")
    assert nothing.status_code == 404


def _log(
    engine: Engine, version: int, *, team_id: str | None, status: int = 200, latency: float = 50.0
) -> None:
    insert_records(
        engine,
        [
            RequestRecord(
                id=uuid4().hex,
                created_at=datetime.now(UTC),
                endpoint="chat.completions",
                requested_model="prompt:support",
                status=status,
                error_type=None if status < 400 else "upstream_error",
                latency_ms=latency,
                input_tokens=10,
                output_tokens=4,
                cost_nanos=2_500_000,
                team_id=team_id,
                prompt_name="support",
                prompt_version=version,
            )
        ],
    )


def test_version_stats(client: TestClient, engine: Engine) -> None:
    create(client)
    call(client, "POST", "/prompts/support/versions", json={"template": CHAT, "variables": VARIABLES})
    call(client, "PUT", "/prompts/support/labels/production", json={"version": 2})
    for latency in (10.0, 20.0, 30.0):
        _log(engine, 1, team_id="t1", latency=latency)
    _log(engine, 1, team_id="t1", status=502)
    _log(engine, 2, team_id="t2", latency=5.0)

    response = call(client, "GET", "/prompts/support/stats", params={"since": "1d"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "support" and body["since"] is not None and body["team_id"] is None
    v1, v2 = body["data"]
    assert (v1["version"], v1["requests"], v1["errors"], v1["error_rate"]) == (1, 4, 1, 0.25)
    assert (v1["latency_p50_ms"], v1["latency_p95_ms"]) == (20.0, pytest.approx(29.0))
    assert (v1["input_tokens"], v1["output_tokens"], v1["cost_nanos"]) == (40, 16, 10_000_000)
    assert v1["cost_usd"] == "0.01" and v1["labels"] == []
    assert (v2["version"], v2["requests"], v2["labels"]) == (2, 1, ["production"])

    # A member sees its own team's requests only; another team does not see a team prompt.
    member = call(client, "GET", "/prompts/support/stats", "m1").json()
    assert member["team_id"] == "t1" and [v["requests"] for v in member["data"]] == [4, 0]
    create(client, "ta2", name="t2-prompt")
    assert call(client, "GET", "/prompts/t2-prompt/stats", "m1").status_code == 404
    assert call(client, "GET", "/prompts/nope/stats").status_code == 404
    bad = call(client, "GET", "/prompts/support/stats", params={"since": "soon"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]
