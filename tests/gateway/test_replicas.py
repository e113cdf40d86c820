"""Two gateways on one database (SQLite, and PostgreSQL when configured): a change made
through one reaches the other within its refresh interval."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory, RunningGateway

from keel.core import (
    AccessSettings,
    CacheSettings,
    PromptSettings,
    RateLimitSettings,
    RouteCacheSettings,
    SpendSettings,
    StoreSettings,
)

REFRESH = 0.2
MESSAGES = [{"role": "user", "content": "hello there"}]


def _eventually(check: Callable[[], bool], within: float = 5 * REFRESH + 1) -> float:
    """Seconds until ``check()`` held; fails after ``within``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def pair(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, database_url: str
) -> tuple[RunningGateway, RunningGateway]:
    def start() -> RunningGateway:
        return gateway_factory(
            {"gpt-test": [upstream]},
            store=StoreSettings(url=database_url),
            access=AccessSettings(enabled=True, refresh_interval=REFRESH),
            prompts=PromptSettings(refresh_interval=REFRESH),
        )

    return start(), start()


def _refused(client: openai.OpenAI, error: type[openai.APIStatusError]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        except error:
            return True
        return False

    return check


def test_keys_made_and_revoked_on_one_replica_hold_on_the_other(
    pair: tuple[RunningGateway, RunningGateway],
) -> None:
    one, two = pair
    admin = one.admin()
    key_id, secret = admin.new_key("shared", team_id=admin.team("t"))
    on_two = two.client(secret)
    on_two.chat.completions.create(model="gpt-test", messages=MESSAGES)
    admin.post(f"/keys/{key_id}/revoke", expect=200)
    _eventually(_refused(on_two, openai.AuthenticationError))


def test_a_rate_limit_set_on_one_replica_applies_on_the_other(
    pair: tuple[RunningGateway, RunningGateway],
) -> None:
    one, two = pair
    admin = one.admin()
    key_id, secret = admin.new_key("limited", team_id=admin.team("t"))
    admin.post("/limits", {"scope": "key", "scope_id": key_id, "rpm": 1})
    _eventually(_refused(two.client(secret), openai.RateLimitError))


def test_a_label_move_on_one_replica_reaches_the_other(
    pair: tuple[RunningGateway, RunningGateway], upstream: FakeDeployment
) -> None:
    one, two = pair
    admin = one.admin()
    template = [{"role": "user", "content": "v1 {{ q }}"}]
    admin.post("/prompts", {"name": "p", "template": template, "variables": {"q": "string"}})
    admin.put("/prompts/p/labels/production", {"version": 1})
    admin.post(
        "/prompts/p/versions",
        {"template": [{"role": "user", "content": "v2 {{ q }}"}], "variables": {"q": "string"}},
    )
    _, secret = admin.new_key("app", team_id=admin.team("t"))
    client = two.client(secret)

    def sent() -> str | None:
        try:
            client.chat.completions.create(
                model="gpt-test", messages=[], extra_body={"prompt": {"name": "p", "variables": {"q": "x"}}}
            )
        except openai.NotFoundError:  # the prompt has not reached this replica yet
            return None
        content: str = upstream.last_request.json["messages"][0]["content"]
        return content

    _eventually(lambda: sent() == "v1 x")
    admin.put("/prompts/p/labels/production", {"version": 2})
    _eventually(lambda: sent() == "v2 x")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("KEEL_TEST_REDIS_URL")
    if not url:
        pytest.skip("KEEL_TEST_REDIS_URL is not set: Redis variant not run")
    return url


def test_replicas_sharing_redis_enforce_one_model_limit_and_share_the_cache(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, tmp_path: Path, redis_url: str
) -> None:
    prefix = f"keel-test-{uuid.uuid4().hex[:8]}:"
    route = {
        "limits": RateLimitSettings(rpm=3),
        "cache": RouteCacheSettings(ttl=60),
    }

    def start() -> RunningGateway:
        return gateway_factory(
            {"gpt-test": [upstream]},
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'shared.db'}"),
            redis_url=redis_url,
            spend=SpendSettings(redis_key_prefix=prefix),
            cache=CacheSettings(backend="redis", redis_prefix=f"{prefix}cache:"),
            route_options={"gpt-test": route},
        )

    one, two = start(), start()
    one.client().chat.completions.create(model="gpt-test", messages=MESSAGES)
    # The answer one stored is a hit on two.
    raw = two.client().chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert raw.headers["x-keel-cache"] == "hit"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    one.client().chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "3rd"}])
    with pytest.raises(openai.RateLimitError):
        two.client().chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "4th"}])
    assert len(upstream.requests()) == 2
