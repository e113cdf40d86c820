"""The harness's gateway client against a real HTTP server that throttles: 429s halve
the calls in flight and wait out Retry-After, 5xx are retried, and what cannot succeed
comes back as an error output (or stops the run, for a model that cannot be called)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from keel.evals import GatewayClient, ModelUnreachable


class Throttler:
    """Answers 429 (Retry-After: 0.05) whenever more than ``allowed`` calls are in flight."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.in_flight = 0
        self.peak_after_throttle = 0
        self.throttled = 0
        self.served = 0
        self.status_script: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.status_script:
            status = self.status_script.pop(0)
            return web.json_response({"error": {"message": f"scripted {status}"}}, status=status)
        if body["model"] == "missing":
            return web.json_response({"error": {"message": "Unknown model 'missing'."}}, status=404)
        self.in_flight += 1
        try:
            if self.in_flight > self.allowed:
                self.throttled += 1
                return web.json_response(
                    {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0.05"}
                )
            if self.throttled:
                self.peak_after_throttle = max(self.peak_after_throttle, self.in_flight)
            await asyncio.sleep(0.02)
            self.served += 1
            return web.json_response(
                {
                    "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
                },
                headers={"x-request-id": f"r{self.served}", "x-keel-cost-usd": "0.000002000"},
            )
        finally:
            self.in_flight -= 1


@pytest.fixture
async def server() -> AsyncIterator[tuple[Throttler, str]]:
    throttler = Throttler(allowed=4)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", throttler.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield throttler, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_429s_shrink_concurrency_and_every_call_still_succeeds(server: tuple[Throttler, str]) -> None:
    throttler, url = server
    async with GatewayClient(url, None, concurrency=16, retries=8, backoff_s=0.01) as client:
        outputs = await asyncio.gather(
            *(client.chat("m", [{"role": "user", "content": str(i)}]) for i in range(60))
        )
        assert all(o.error is None and o.text == "ok" for o in outputs)
        assert client.throttled > 0
        assert client.limit.limit < 16
    assert throttler.served == 60
    assert outputs[0].cost_usd == pytest.approx(2e-6)
    assert outputs[0].input_tokens == 3 and outputs[0].request_id is not None


async def test_5xx_is_retried_and_a_lasting_failure_is_an_error_output(server: tuple[Throttler, str]) -> None:
    throttler, url = server
    async with GatewayClient(url, None, concurrency=2, retries=2, backoff_s=0.01) as client:
        throttler.status_script = [502, 503]
        recovered = await client.chat("m", [{"role": "user", "content": "x"}])
        assert recovered.error is None and client.retried == 2
        throttler.status_script = [500, 500, 500]
        failed = await client.chat("m", [{"role": "user", "content": "x"}])
        assert failed.error is not None and "HTTP 500" in failed.error
        throttler.status_script = [400]
        bad = await client.chat("m", [{"role": "user", "content": "x"}])
        assert bad.error == "HTTP 400: scripted 400"


async def test_an_unknown_model_stops_with_its_name(server: tuple[Throttler, str]) -> None:
    _, url = server
    async with GatewayClient(url, None, concurrency=2) as client:
        with pytest.raises(ModelUnreachable, match="Unknown model 'missing'"):
            await client.chat("missing", [{"role": "user", "content": "x"}])
