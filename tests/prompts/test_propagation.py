"""End to end: two ``keel serve`` processes on one database serve a prompt by label; a
label move (and a rollback) reaches both within the configured propagation time, and
the request log names the version that served each call. On SQLite and, when
KEEL_TEST_POSTGRES_URL is set, PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import Engine

from keel.prompts import PromptRegistry
from keel.store import recent_requests
from tests.fakes import FakeDeployment

REFRESH_INTERVAL = 0.2
# A label move reaches a gateway within one refresh interval plus one reload; the rest
# is headroom for a busy test machine.
PROPAGATION_DEADLINE = 3 * REFRESH_INTERVAL + 1.0
MODEL = "prompt:answer@production"
TEMPLATE = [
    {"role": "system", "content": "Answer {{ tone }}ly."},
    {"role": "user", "content": "{{ marker }}, {{ tone }}"},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _content(marker: str, temperature: float) -> dict[str, Any]:
    return {
        "template": TEMPLATE,
        "variables": {"tone": "string", "marker": {"type": "string", "default": marker}},
        "model_config": {"model": "m", "temperature": temperature},
    }


@dataclass
class Gateway:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    client: openai.OpenAI

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out.decode(errors="replace")


@pytest.fixture
def gateways(
    tmp_path: Path, database_url: str, engine: Engine, upstream: FakeDeployment
) -> Iterator[list[Gateway]]:
    """Two ``keel serve`` processes on ``database_url`` (migrated already by ``engine``, so
    that they do not both migrate it at once)."""
    started: list[Gateway] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            config = tmp_path / f"keel-{name}.yaml"
            config.write_text(
                f"""
server: {{host: 127.0.0.1, port: {port}, graceful_timeout: 5}}
request_log: {{flush_interval: 0.05}}
access: {{enabled: false, create_first_admin: false}}
prompts: {{refresh_interval: {REFRESH_INTERVAL}}}
providers:
  fake: {{type: openai, base_url: "{upstream.base_url}", api_key: sk-x}}
models:
  m:
    deployments: [{{provider: fake, model: fake-chat}}]
"""
            )
            env = {
                **os.environ,
                "KEEL_HOME": str(tmp_path / f"home-{name}"),
                "KEEL_CONFIG": str(config),
                "KEEL_DATABASE_URL": database_url,
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "keel", "serve", "--log-level", "warning"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            url = f"http://127.0.0.1:{port}"
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)
            started.append(Gateway(name, proc, url, client))
        for gateway in started:
            _wait_live(gateway)
        yield started
    finally:
        for gateway in started:
            gateway.client.close()
            if gateway.proc.poll() is None:
                gateway.proc.terminate()
            try:
                gateway.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gateway.proc.kill()


def _wait_live(gateway: Gateway) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if gateway.proc.poll() is not None:
            raise AssertionError(f"keel serve {gateway.name} exited:\n{gateway.output()}")
        try:
            if httpx.get(f"{gateway.url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"keel serve {gateway.name} did not start:\n{gateway.output()}")


@dataclass(frozen=True)
class Served:
    request_id: str
    marker: str  # which version's text the upstream received


def call(gateway: Gateway, upstream: FakeDeployment) -> Served:
    raw = gateway.client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[], extra_body={"prompt": {"variables": {"tone": "calm"}}}
    )
    completion = raw.parse()
    received = upstream.last_request.json
    marker = received["messages"][1]["content"].removesuffix(", calm")
    # The upstream got the rendered template and the served version's model config.
    assert received["messages"] == [
        {"role": "system", "content": "Answer calmly."},
        {"role": "user", "content": f"{marker}, calm"},
    ]
    assert received["temperature"] == {"one": 0.1, "two": 0.7}[marker]
    assert completion.choices[0].message.content == f"echo: {marker}, calm"
    return Served(raw.headers["x-request-id"], marker)


def switch_times(
    gateways: list[Gateway], upstream: FakeDeployment, marker: str, log: list[Served], *, new: bool = False
) -> list[float]:
    """Call every gateway in turn until each serves ``marker``; seconds until each did.
    Once a gateway serves the new version it must not serve the old one again. ``new``:
    the prompt itself has just been created (unknown until then: 404)."""
    started = time.monotonic()
    switched: dict[str, float] = {}
    while len(switched) < len(gateways) and time.monotonic() - started < PROPAGATION_DEADLINE:
        for gateway in gateways:
            try:
                served = call(gateway, upstream)
            except openai.NotFoundError:
                if not new or gateway.name in switched:
                    raise
                continue
            log.append(served)
            if served.marker == marker:
                switched.setdefault(gateway.name, time.monotonic() - started)
            else:
                assert gateway.name not in switched, f"gateway {gateway.name} went back to {served.marker}"
        time.sleep(0.02)
    assert sorted(switched) == sorted(g.name for g in gateways), (
        f"not every gateway served '{marker}' within {PROPAGATION_DEADLINE:.1f} s: {switched}"
    )
    return list(switched.values())


def test_label_moves_reach_every_gateway(
    gateways: list[Gateway], engine: Engine, upstream: FakeDeployment
) -> None:
    registry = PromptRegistry(engine)
    registry.create("answer", type="chat", actor="test", **_content("one", 0.1))
    registry.set_label("answer", "production", 1, actor="test", admin=True)
    log: list[Served] = []
    # Created after the gateways started: they learn of it by polling, as of any change.
    switch_times(gateways, upstream, "one", log, new=True)

    registry.add_version("answer", actor="test", **_content("two", 0.7))
    for gateway in gateways:  # a new version is not deployed until the label moves
        assert call(gateway, upstream).marker == "one"
    registry.set_label("answer", "production", 2, actor="test", admin=True)
    switch_times(gateways, upstream, "two", log)

    registry.rollback("answer", "production", actor="test", admin=True)
    switch_times(gateways, upstream, "one", log)

    # The request log says which version served each call.
    wanted = {s.request_id: {"one": 1, "two": 2}[s.marker] for s in log}
    deadline = time.monotonic() + 10
    while True:
        records = {r.id: r for r in recent_requests(engine, limit=10_000) if r.id in wanted}
        if len(records) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(records) == len(wanted), f"{len(wanted) - len(records)} calls missing from the request log"
    seen = {(r.prompt_name, r.requested_model, r.status) for r in records.values()}
    assert seen == {("answer", MODEL, 200)}
    assert {rid: r.prompt_version for rid, r in records.items()} == wanted
    assert {r.prompt_version for r in records.values()} == {1, 2}
