"""SIGTERM under load: every request that got a response is in the request log."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from tests.fakes import FakeDeployment, Fault

from keel.store import create_store_engine, recent_requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _fire(session: aiohttp.ClientSession, url: str, i: int) -> str | None:
    body = {"model": "m", "messages": [{"role": "user", "content": f"request {i}"}], "stream": i % 2 == 0}
    try:
        async with session.post(url, json=body) as resp:
            payload = await resp.read()
            if resp.status == 200 and (not body["stream"] or payload.endswith(b"data: [DONE]\n\n")):
                return resp.headers["x-request-id"]
    except aiohttp.ClientError:
        pass
    return None


async def test_sigterm_drains_the_request_log(tmp_path: Path, upstream: FakeDeployment) -> None:
    upstream.set_default(Fault(delay=1.0, chunk_delay=0.05))
    port = _free_port()
    config = tmp_path / "keel.yaml"
    config.write_text(
        f"""
server: {{host: 127.0.0.1, port: {port}, graceful_timeout: 20}}
request_log: {{batch_size: 1000, flush_interval: 5.0}}
access: {{enabled: false}}
providers:
  fake: {{type: openai, base_url: "{upstream.base_url}", api_key: sk-x}}
models:
  m:
    deployments: [{{provider: fake, model: fake-chat}}]
"""
    )
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "home"), "KEEL_CONFIG": str(config)}
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-m", "keel", "serve", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/health/live") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            tasks = [asyncio.create_task(_fire(session, url, i)) for i in range(60)]
            # Stop once every call is in flight upstream (none answered yet: each waits 1 s
            # there), however slowly a loaded machine got them there.
            await upstream.wait_for_async(lambda: len(upstream.requests()) >= 60, timeout=20)
            proc.send_signal(signal.SIGTERM)
            answered = [rid for rid in await asyncio.gather(*tasks) if rid is not None]
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn re-raises the signal after its graceful stop, so the exit is "by SIGTERM".
    assert proc.returncode in (0, -signal.SIGTERM), out.decode()
    assert len(answered) == 60, f"in-flight requests should finish during a graceful stop: {len(answered)}"
    # The flush interval (5 s) is longer than the stop took: only the drain can have written them.
    engine = create_store_engine(f"sqlite:///{tmp_path / 'home' / 'keel.db'}")
    logged = {r.id for r in recent_requests(engine, limit=1000)}
    engine.dispose()
    missing = set(answered) - logged
    assert not missing, f"{len(missing)} answered requests missing from the log"
