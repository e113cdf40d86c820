"""Real ``keel serve`` processes in front of the fake upstream, for end-to-end tests of
spend control (budgets under concurrency, across processes, across a SIGKILL).

A ``Stack`` is one database (SQLite, or a PostgreSQL schema of its own), optionally one
Redis key prefix, three fake deployments behind three routes, a team with a service key,
and the prices of ``fake-chat``. The database is migrated and the key and budget are
written before any gateway starts, so every process finds them at start and no two
processes race to migrate. Gateways are subprocesses on free ports, started with a
generated keel.yaml (``KEEL_CONFIG``), ``KEEL_HOME`` and ``KEEL_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import Engine, select

from keel.access import AccessAdmin, Actor, CreatedKey
from keel.spend import Budget, set_budget, spend_ledger
from keel.store import create_store_engine, request_log, upgrade
from tests.fakes import FakeDeployment, FakeUpstream, ReceivedRequest

# Prices of fake-chat, USD per 1M tokens: 1 nano-USD an input token, 10 000 an output one.
# Output dominates, so a full answer costs almost exactly what its reservation holds.
INPUT_NANOS = 1
OUTPUT_NANOS = 10_000
PRICES = [
    {"model": "fake-chat", "token_type": "input", "usd_per_million": "0.001"},
    {"model": "fake-chat", "token_type": "output", "usd_per_million": "10"},
]

# Every request body is padded to this size, and asks for at most MAX_TOKENS: the
# gateway reserves BODY_BYTES input tokens (its bound: a token is at least a byte) and
# MAX_TOKENS output tokens at the price above, the same for every request.
BODY_BYTES = 512
MAX_TOKENS = 16
PROMPT_WORDS = 40
RESERVATION = BODY_BYTES * INPUT_NANOS + MAX_TOKENS * OUTPUT_NANOS
# The fake echoes the prompt ("echo: <tag> a a a ..."), cut at MAX_TOKENS words.
FULL_COST = (1 + PROMPT_WORDS) * INPUT_NANOS + MAX_TOKENS * OUTPUT_NANOS

# The routes: "main" answers (its first calls may be scripted to fail), "hang" never
# answers in time, "stall" streams three content chunks and then stalls.
ROUTES = ("main", "hang", "stall")


def cost_of(usage: dict[str, int]) -> int:
    """What the fake's own count of a call costs at the configured prices."""
    return usage["prompt_tokens"] * INPUT_NANOS + usage["completion_tokens"] * OUTPUT_NANOS


def chat_body(tag: str, route: str, *, stream: bool, include_usage: bool = False) -> bytes:
    """A chat request of exactly BODY_BYTES bytes (JSON allows the trailing spaces)."""
    content = f"{tag} " + " ".join(["a"] * PROMPT_WORDS)
    body: dict[str, Any] = {
        "model": route,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
    }
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    raw = json.dumps(body).encode()
    assert len(raw) <= BODY_BYTES, len(raw)
    return raw + b" " * (BODY_BYTES - len(raw))


def tag_of(payload: Any) -> str | None:
    """The tag a request carries (the first word of its user message)."""
    if isinstance(payload, (str, bytes)):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict):
        return None
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    content = messages[-1].get("content")
    return content.split()[0] if isinstance(content, str) and content else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate()`` (run in a thread: it may read the database) until true."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Gateway:
    """One ``keel serve`` process."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_url(self) -> str:
        return f"{self.url}/v1/chat/completions"

    def start(self) -> Gateway:
        with self.log_path.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "keel", "serve", "--log-level", "warning"],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited at start:\n{self.output()}")
                try:
                    async with session.get(f"{self.url}/health/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.output()}")

    async def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: in-flight calls finish, queues drain) and wait."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.proc.wait, timeout)
        assert code in (0, -signal.SIGTERM), f"{self.name} exited with {code}:\n{self.output()}"
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def ensure_gone(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@dataclass
class Stack:
    tmp_path: Path
    upstream: FakeUpstream
    database_url: str
    redis_url: str | None = None
    redis_prefix: str | None = None
    deployments: dict[str, FakeDeployment] = field(default_factory=dict)
    gateways: list[Gateway] = field(default_factory=list)
    key: CreatedKey | None = None
    budget: Budget | None = None
    _engine: Engine | None = None

    def setup(self) -> Stack:
        for route in ROUTES:
            self.deployments[route] = self.upstream.deployment(f"e2e{route}{uuid.uuid4().hex[:10]}")
        engine = self.engine
        upgrade(engine)
        access = AccessAdmin(engine)
        team = access.create_team(Actor.cli(), f"e2e-{uuid.uuid4().hex[:6]}")
        self.key = access.create_key(Actor.cli(), name="load", role="service", team_id=team.id)
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_store_engine(self.database_url)
        return self._engine

    @property
    def headers(self) -> dict[str, str]:
        assert self.key is not None
        return {"Authorization": f"Bearer {self.key.secret}", "Content-Type": "application/json"}

    def set_key_budget(self, limit_nanos: int) -> Budget:
        assert self.key is not None
        self.budget = set_budget(
            self.engine,
            scope="key",
            scope_id=self.key.key.id,
            period="total",
            limit_nanos=limit_nanos,
            hard=True,
            alert_at_fraction=None,
            team_id=self.key.key.team_id,
            actor="e2e",
        )
        return self.budget

    # -- gateways -------------------------------------------------------------------------

    def _config(self, port: int) -> dict[str, Any]:
        spend: dict[str, Any] = {"prices": PRICES}
        if self.redis_prefix is not None:
            spend["redis_key_prefix"] = self.redis_prefix
        config: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": port, "graceful_timeout": 20},
            "request_log": {"flush_interval": 0.1},
            "access": {"enabled": True, "create_first_admin": False, "refresh_interval": 0.5},
            # One deployment a route: a retry goes back to it; the breaker never opens.
            "retry": {"max_attempts": 4, "backoff_base": 0.01, "backoff_max": 0.05},
            "breaker": {"failure_threshold": 1000, "cooldown": 1},
            "timeouts": {"connect": 10, "read": 90, "total": 120, "stream_idle": 90},
            "providers": {
                f"p{route}": {"type": "openai", "base_url": dep.base_url, "api_key": "sk-upstream"}
                for route, dep in self.deployments.items()
            },
            "models": {
                route: {"deployments": [{"provider": f"p{route}", "model": "fake-chat"}]}
                for route in self.deployments
            },
            "spend": spend,
        }
        if self.redis_url is not None:
            config["redis_url"] = self.redis_url
        return config

    def new_gateway(self) -> Gateway:
        index = len(self.gateways)
        port = free_port()
        config_path = self.tmp_path / f"keel{index}.yaml"
        config_path.write_text(yaml.safe_dump(self._config(port)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env |= {
            "KEEL_HOME": str(self.tmp_path / f"home{index}"),
            "KEEL_CONFIG": str(config_path),
            "KEEL_DATABASE_URL": self.database_url,
        }
        gateway = Gateway(f"gateway{index}", port, env, self.tmp_path / f"gateway{index}.log")
        self.gateways.append(gateway)
        return gateway

    async def start(self, count: int = 1) -> list[Gateway]:
        started = [self.new_gateway().start() for _ in range(count)]
        await asyncio.gather(*(g.wait_ready() for g in started))
        return started

    async def restart(self, gateway: Gateway) -> Gateway:
        """The same gateway (port, home, config) started again."""
        gateway.start()
        await gateway.wait_ready()
        return gateway

    def teardown(self) -> None:
        for gateway in self.gateways:
            gateway.ensure_gone()
        for dep in self.deployments.values():
            dep.reset()
        if self._engine is not None:
            self._engine.dispose()

    # -- what was recorded ----------------------------------------------------------------

    def ledger(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(spend_ledger).order_by(spend_ledger.c.id)))

    def records(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(request_log)))

    def upstream_requests(self) -> list[ReceivedRequest]:
        return [r for dep in self.deployments.values() for r in dep.requests()]
