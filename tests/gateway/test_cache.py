"""The response cache through a real gateway: hits never reach upstream, cost nothing and
record what they saved; streams are served from cache as SSE; teams never share entries."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import openai
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.streams import stream_text_and_usage

from keel.core import AccessSettings, PriceSettings, RouteCacheSettings, SpendSettings

PRICED = SpendSettings(
    prices=[
        PriceSettings(model="fake-chat", token_type="input", usd_per_million=Decimal("1")),
        PriceSettings(model="fake-chat", token_type="output", usd_per_million=Decimal("2")),
    ]
)
MESSAGES = [{"role": "user", "content": "what is cached"}]


def _cached(gateway_factory: GatewayFactory, upstream: FakeDeployment, **kwargs: Any) -> RunningGateway:
    return gateway_factory(
        {"gpt-test": [upstream]},
        route_options={"gpt-test": {"cache": RouteCacheSettings(exact=True, ttl=60)}},
        spend=PRICED,
        **kwargs,
    )


def test_a_repeated_call_is_served_from_cache_free_and_records_what_it_saved(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.client()
    first = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, user="first"
    )
    assert "x-keel-cache" not in first.headers
    # Another end user does not change what the answer is.
    second = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, user="second"
    )
    assert second.headers["x-keel-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().id == first.parse().id
    assert len(upstream.requests()) == 1
    records = {r.end_user: r for r in gw.records()}
    miss, hit = records["first"], records["second"]
    assert miss.cache_status == "miss"
    assert miss.cost_nanos == 3 * 1000 + 4 * 2000
    assert (hit.cache_status, hit.status, hit.cost_nanos) == ("hit", 200, 0)
    assert hit.cost_saved_nanos == miss.cost_nanos
    assert hit.attempts == 0
    assert hit.response_body is not None
    assert "echo: what is cached" in hit.response_body
    # The report counts the hit and what it saved, and charges nothing for it.
    report = gw.admin().get("/usage?by=model")
    [row] = report["data"]
    assert (row["requests"], row["cache_hits"]) == (2, 1)
    assert (row["cost_nanos"], row["saved_nanos"]) == (miss.cost_nanos, miss.cost_nanos)


def test_a_different_request_misses(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.client()
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES, temperature=0.5)
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "other"}])
    assert len(upstream.requests()) == 3
    assert {r.cache_status for r in gw.records()} == {"miss"}


async def test_a_stream_is_served_from_cache_as_sse(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.async_client()
    whole = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    text, usage = await stream_text_and_usage(client, "gpt-test", "what is cached")
    assert text == whole.choices[0].message.content
    assert usage is not None
    assert whole.usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )
    # Without include_usage, no usage chunk.
    stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    await client.close()
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(upstream.requests()) == 1
    hits = [r for r in gw.records() if r.cache_status == "hit"]
    assert len(hits) == 2
    assert all(r.stream for r in hits)


async def test_a_streamed_answer_fills_the_cache_for_whole_answers(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.async_client()
    text, _ = await stream_text_and_usage(client, "gpt-test", "what is cached")
    whole = await client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    await client.close()
    assert whole.headers["x-keel-cache"] == "hit"
    answer = whole.parse()
    assert answer.choices[0].message.content == text
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4
    assert len(upstream.requests()) == 1


def test_a_broken_stream_is_not_cached(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = _cached(gateway_factory, upstream)
    upstream.script(Fault(cut_after_chunks=1))
    client = gw.client()
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    try:
        for _ in stream:
            pass
    except openai.APIError:
        pass
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert len(upstream.requests()) == 2


def test_the_bypass_header_goes_upstream(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.client()
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, extra_headers={"x-keel-cache": "bypass"}
    )
    assert "x-keel-cache" not in raw.headers
    assert len(upstream.requests()) == 2
    statuses = sorted(str(r.cache_status) for r in gw.records())
    assert statuses == ["None", "miss"]


def test_teams_never_share_entries(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = _cached(gateway_factory, upstream, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    red, blue = admin.team("red"), admin.team("blue")
    _, red_one = admin.new_key("red-1", team_id=red)
    _, red_two = admin.new_key("red-2", team_id=red)
    _, blue_one = admin.new_key("blue-1", team_id=blue)
    gw.client(red_one).chat.completions.create(model="gpt-test", messages=MESSAGES)
    raw = gw.client(blue_one).chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert "x-keel-cache" not in raw.headers
    assert len(upstream.requests()) == 2
    # Keys of one team share their team's entries.
    raw = gw.client(red_two).chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert raw.headers["x-keel-cache"] == "hit"
    assert len(upstream.requests()) == 2


def test_a_refused_request_is_never_answered_from_cache(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _cached(gateway_factory, upstream, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    key_id, secret = admin.new_key("k", team_id=admin.team("t"))
    gw.client(secret).chat.completions.create(model="gpt-test", messages=MESSAGES)
    admin.post(f"/keys/{key_id}/revoke", expect=200)
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 401
    assert "x-keel-cache" not in response.headers


def test_the_semantic_cache_embeds_through_the_embedding_route(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, make_deployment: Callable[[], FakeDeployment]
) -> None:
    # The fake's embeddings are hashes of the text: the same text is similarity 1, any other
    # text about 0. Exact matching is off, so a hit can only be semantic.
    embedder = make_deployment()
    semantic = RouteCacheSettings(exact=False, semantic=True, embedding_model="embed", ttl=60)
    gw = gateway_factory(
        {"gpt-test": [upstream], "embed": [embedder]},
        mode={"embed": "embedding"},
        route_options={"gpt-test": {"cache": semantic}},
        spend=PRICED,
    )
    client = gw.client()
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert raw.headers["x-keel-cache"] == "semantic_hit"
    client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "unrelated words"}]
    )
    assert len(upstream.requests()) == 2
    # One embedding per distinct text: the store after a miss reuses the lookup's.
    assert [r.json["input"] for r in embedder.requests()] == ["what is cached", "unrelated words"]
    statuses = sorted(str(r.cache_status) for r in gw.records())
    assert statuses == ["miss", "miss", "semantic_hit"]


def test_an_answer_from_a_fallback_route_is_cached_for_the_route_asked(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, make_deployment: Callable[[], FakeDeployment]
) -> None:
    backup = make_deployment()
    upstream.set_default(Fault(status=500))
    gw = gateway_factory(
        {"gpt-test": [upstream], "backup": [backup]},
        fallbacks={"gpt-test": ["backup"]},
        route_options={"gpt-test": {"cache": RouteCacheSettings(ttl=60)}},
    )
    client = gw.client()
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert raw.headers["x-keel-cache"] == "hit"
    assert len(backup.requests()) == 1
    # The backup route has no cache of its own: asked directly, it answers itself.
    client.chat.completions.create(model="backup", messages=MESSAGES)
    assert len(backup.requests()) == 2


def test_embeddings_are_cached_and_priced(
    gateway_factory: GatewayFactory, make_deployment: Callable[[], FakeDeployment]
) -> None:
    embedder = make_deployment()
    gw = gateway_factory(
        {"embed": [embedder]},
        mode={"embed": "embedding"},
        route_options={"embed": {"cache": RouteCacheSettings(ttl=60)}},
        spend=PRICED,
    )
    client = gw.client()
    first = client.embeddings.create(model="embed", input="three little words")
    raw = client.embeddings.with_raw_response.create(model="embed", input="three little words")
    assert raw.headers["x-keel-cache"] == "hit"
    assert raw.parse().data[0].embedding == first.data[0].embedding
    assert len(embedder.requests()) == 1
    records = {r.cache_status: r for r in gw.records()}
    assert records["miss"].cost_nanos == 3 * 1000
    assert (records["hit"].cost_nanos, records["hit"].cost_saved_nanos) == (0, 3 * 1000)


def test_a_streamed_completion_is_served_from_cache(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _cached(gateway_factory, upstream)
    client = gw.client()
    whole = client.completions.create(model="gpt-test", prompt="say it again")
    stream = client.completions.create(model="gpt-test", prompt="say it again", stream=True)
    text = "".join(chunk.choices[0].text for chunk in stream if chunk.choices)
    assert text == whole.choices[0].text
    assert len(upstream.requests()) == 1
