"""Retries, fail-over, fallback models, circuit breakers, timeouts, cut streams and
client disconnects, injected by the fake upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import httpx
import openai
import pytest
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory

from keel.core import BreakerPolicy, RetryPolicy, Timeouts

MakeDeployment = Callable[[], FakeDeployment]
HI = [{"role": "user", "content": "hi"}]


def test_429_is_retried_after_retry_after(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    upstream.script(Fault(status=429, retry_after=0.4))
    gw = gateway_factory({"m": [upstream]})
    started = time.monotonic()
    reply = gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: hi"
    assert time.monotonic() - started >= 0.35, "Retry-After was not honoured"
    assert len(upstream.requests()) == 2
    [record] = gw.records()
    assert record.attempts == 2
    assert record.status == 200


def test_5xx_and_dropped_connections_are_retried(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(status=500), Fault(drop=True))
    gw = gateway_factory({"m": [upstream]})
    reply = gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: hi"
    assert [r.attempts for r in gw.records()] == [3]


def test_retries_give_up_with_the_upstream_error(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(status=503))
    gw = gateway_factory({"m": [upstream]})
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert len(upstream.requests()) == 3
    [record] = gw.records()
    assert record.status == 502
    assert record.attempts == 3
    assert record.error_type == "server_error"


def test_client_errors_are_not_retried(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    upstream.script(Fault(status=400, message="bad temperature"))
    gw = gateway_factory({"m": [upstream]})
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert "bad temperature" in str(info.value)
    assert len(upstream.requests()) == 1


def test_failover_to_the_next_deployment(
    gateway_factory: GatewayFactory, make_deployment: MakeDeployment
) -> None:
    bad, good = make_deployment(), make_deployment()
    bad.set_default(Fault(status=500))
    gw = gateway_factory({"m": [bad, good]})
    for _ in range(4):
        reply = gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "echo: hi"
    assert len(good.requests()) == 4
    # Fail-over skips the backoff: the second deployment is tried at once.
    assert all(r.deployment == good.name for r in gw.records())


def test_fallback_model_when_every_deployment_fails(
    gateway_factory: GatewayFactory, make_deployment: MakeDeployment
) -> None:
    primary, backup = make_deployment(), make_deployment()
    primary.set_default(Fault(status=502))
    gw = gateway_factory({"big": [primary], "small": [backup]}, fallbacks={"big": ["small"]})
    reply = gw.client().chat.completions.create(model="big", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: hi"
    [record] = gw.records()
    assert (record.requested_model, record.route, record.deployment) == ("big", "small", backup.name)
    assert record.attempts == 4  # three on the primary, one on the fallback


def test_breaker_opens_then_half_opens_and_closes(
    gateway_factory: GatewayFactory, make_deployment: MakeDeployment
) -> None:
    flaky, steady = make_deployment(), make_deployment()
    flaky.set_default(Fault(status=500))
    gw = gateway_factory(
        {"m": [flaky, steady]},
        breaker=BreakerPolicy(failure_threshold=2, cooldown=0.6),
        retry=RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.01),
    )
    client = gw.client()
    for _ in range(20):  # weighted random: flaky is picked at least twice (p > 0.99999)
        client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    # Two failures open the breaker; after that no call reaches the flaky deployment.
    assert len(flaky.requests()) == 2
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert f'keel_breaker_open{{deployment="{flaky.name}"}} 1.0' in metrics
    # After the cooldown exactly one probe goes through; it succeeds and closes the breaker.
    flaky.set_default(None)
    time.sleep(0.7)
    for _ in range(20):  # weighted random: flaky is picked at least twice (p > 0.99999)
        client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert len(flaky.requests()) >= 3
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert f'keel_breaker_open{{deployment="{flaky.name}"}} 0.0' in metrics


def test_all_breakers_open_gives_503(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    upstream.set_default(Fault(status=500))
    gw = gateway_factory(
        {"m": [upstream]},
        breaker=BreakerPolicy(failure_threshold=1, cooldown=60),
        retry=RetryPolicy(max_attempts=1),
    )
    client = gw.client()
    with pytest.raises(openai.APIStatusError) as first:
        client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert first.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as second:
        client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert second.value.status_code == 503
    assert len(upstream.requests()) == 1


def test_read_timeout_gives_504_after_retries(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(delay=2))
    gw = gateway_factory(
        {"m": [upstream]},
        timeouts=Timeouts(connect=1, read=0.3, total=5, stream_idle=1),
        retry=RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.01),
    )
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    assert len(upstream.requests()) == 2


def test_stream_cut_midway_ends_with_an_error_event_and_is_not_retried(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(cut_after_chunks=2, reply="a b c d e f g"))
    gw = gateway_factory({"m": [upstream]})
    stream = gw.client().chat.completions.create(model="m", messages=HI, stream=True)  # type: ignore[arg-type]
    got: list[str] = []

    def consume() -> None:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIError):
        consume()
    assert got, "the client should have received the chunks sent before the cut"
    assert len(upstream.requests()) == 1, "a stream that sent bytes must not be retried"
    [record] = gw.records()
    assert record.status == 200
    assert record.error_type == "stream_cut"


def test_stream_idle_timeout_ends_with_an_error_event(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.script(Fault(stall_after_chunks=1, stall=3))
    gw = gateway_factory({"m": [upstream]}, timeouts=Timeouts(connect=1, read=2, total=10, stream_idle=0.3))
    with pytest.raises(openai.APIError):
        list(gw.client().chat.completions.create(model="m", messages=HI, stream=True))  # type: ignore[arg-type]
    [record] = gw.records()
    assert record.error_type == "timeout"


async def test_client_disconnect_cancels_a_stream_upstream(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(chunk_delay=0.2, reply=" ".join(["word"] * 50)))
    gw = gateway_factory({"m": [upstream]})
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            f"{gw.base_url}/chat/completions", json={"model": "m", "messages": HI, "stream": True}
        )
        assert resp.status == 200
        await resp.content.readline()
        resp.close()  # the client goes away mid-stream
    await upstream.wait_for_async(lambda: upstream.requests()[0].cancelled, timeout=5)
    [record] = await asyncio.to_thread(gw.records)
    assert record.status == 499
    assert record.error_type == "client_disconnected"


async def test_client_disconnect_cancels_a_slow_call_upstream(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(delay=3))
    gw = gateway_factory({"m": [upstream]})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "m", "messages": HI},
                timeout=aiohttp.ClientTimeout(total=0.5),
            )
    await upstream.wait_for_async(lambda: upstream.requests()[0].cancelled, timeout=5)
    [record] = await asyncio.to_thread(gw.records)
    assert record.status == 499
