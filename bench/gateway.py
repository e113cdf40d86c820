"""The gateway benchmark: Keel's overhead over a direct call to the same upstream.

One run starts ``bench.upstream``, ``bench.floor_proxy`` (a bare pass-through proxy on
the same uvicorn + aiohttp stack: the cheapest possible gateway) and ``keel serve``
(request logging on, bodies kept, SQLite in a temporary KEEL_HOME) as separate
processes, then drives them with an aiohttp load generator in this process, for every
combination of {direct, through the floor proxy, through Keel}, {non-streaming,
streaming} and concurrency {1, 16, 64}. Each phase is a warm-up, then a fixed number of
requests; it reports throughput, latency p50/p99, time to first byte (response headers,
or the first SSE ``data:`` chunk when streaming), errors, and the CPU time each process
spent per request, read from its own counters; Keel's CPU minus the floor proxy's is
what Keel itself costs above its server and client libraries. A soak at concurrency 64
then checks that Keel's resident memory stays flat. Numbers go to Rich tables and, with
``--json``, to a file.

    python -m bench.gateway                  # full run: 3 repeats per phase, 100k soak (2-3 min)
    python -m bench.gateway --quick --soak 0 # a smoke run in seconds
    python -m bench.gateway --spend inprocess  # with a key, a budget and a rate limit on it
    python -m bench.gateway --spend redis      # the same, budgets and limits kept in Redis
    python -m bench.gateway --prompt           # also through Keel by prompt name (keel-prompt)

``--spend off`` (the default) runs Keel without access control (no key), as the
gateway-core targets are defined; the model has no price there, so the spend ledger has
nothing to reserve. ``inprocess`` and ``redis`` give every request a service key that carries a hard
monthly budget and a (never reached) rate limit, and give the model a price, so each call
is authenticated, takes the rate limit, makes a durable reservation against the budget and
settles it: the difference to ``off`` is the cost of access and spend control.

``--prompt`` adds a fourth target, **keel-prompt**: the same Keel process, sent requests
that name a prompt (``"model": "prompt:bench@production"`` with its variable in
``"prompt": {"variables": ...}``) instead of their messages. The prompt, created in
Keel's database before it starts, renders the same messages with the same model
config, so the upstream sees the same request; keel-prompt runs right after keel in
every round, so load from elsewhere on the machine tends to hit both alike, and the
difference between them is the cost of resolving and rendering a prompt. The soak then
sends prompt requests too.

With ``--repeat`` above 1 every phase is run that many times (direct, floor and Keel
interleaved) and the median of each measure is reported.

Only 127.0.0.1 is used, every count is bounded, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
Mode = Literal["non-stream", "stream"]
Target = Literal["direct", "floor", "keel", "keel-prompt"]
SpendMode = Literal["off", "inprocess", "redis"]

MODEL = "bench-model"
PROMPT_NAME = "bench"
SYSTEM_MESSAGE = "You are a concise assistant for an LLM platform team."
QUESTION = "In one sentence: what does an LLM gateway record for each call?"
CONCURRENCIES = (1, 16, 64)
MODES: tuple[Mode, ...] = ("non-stream", "stream")
TARGETS: tuple[Target, ...] = ("direct", "floor", "keel")
KEEL_TARGETS: tuple[Target, ...] = ("keel", "keel-prompt")  # one Keel process: plain / by prompt
SOAK_CONCURRENCY = 64
SOAK_SAMPLE_EVERY = 5_000
# Per-request client timeout: far above any healthy latency here, so a hang is an error.
REQUEST_TIMEOUT_S = 30.0

# Targets on the 2-core benchmark machine, with request logging (bodies) on.
TARGET_ADDED_P50_MS = 1.0
TARGET_CPU_MS_PER_REQ = 0.5
TARGET_SOAK_GROWTH = 0.05
# A request that names a prompt, against the same request with its messages (p50).
TARGET_PROMPT_P50_RATIO = 1.10

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL = os.environ.get("KEEL_REDIS_URL", DEFAULT_REDIS_URL)

# Headers of every benchmark request (``Authorization`` added when Keel needs a key).
REQUEST_HEADERS = {"Content-Type": "application/json"}

# Wide enough for the result tables when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 140)


# ---------------------------------------------------------------------------- requests


def request_body(stream: bool, prompt: bool = False) -> bytes:
    """A small but typical chat request (system + user message, a few parameters), or
    with ``prompt`` the same request by prompt name (see ``prepare_prompt``)."""
    body: dict[str, Any]
    if prompt:
        body = {"model": f"prompt:{PROMPT_NAME}@production", "prompt": {"variables": {"question": QUESTION}}}
    else:
        body = {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": SYSTEM_MESSAGE},
                {"role": "user", "content": QUESTION},
            ],
            "max_tokens": 64,
            "temperature": 0.2,
        }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


@dataclass
class Samples:
    """What the load generator saw in one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def one_request(
    session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, out: Samples
) -> None:
    """One call, timed from just before it is sent; failures count as errors, not samples."""
    started = time.perf_counter()
    ttfb: float | None = None
    try:
        async with session.post(url, data=body, headers=REQUEST_HEADERS) as resp:
            if not stream:
                ttfb = time.perf_counter()
                payload = await resp.read()
                ok = resp.status == 200 and b'"choices"' in payload
            else:
                tail = b""
                while True:
                    piece = await resp.content.readany()
                    if not piece:
                        break
                    if ttfb is None and b"data:" in piece:
                        ttfb = time.perf_counter()
                    # Only the end matters for the completeness check; keep it short.
                    tail = (tail + piece)[-64:]
                ok = resp.status == 200 and tail.endswith(b"data: [DONE]\n\n")
            if not ok:
                out.fail(f"http {resp.status}" if resp.status != 200 else "incomplete body")
                return
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.fail(type(exc).__name__)
        return
    done = time.perf_counter()
    out.latencies_ms.append((done - started) * 1000)
    out.ttfb_ms.append(((ttfb or done) - started) * 1000)


async def drive(
    url: str,
    total: int,
    concurrency: int,
    stream: bool | None,
    on_done: Any = None,
    session: aiohttp.ClientSession | None = None,
    prompt: bool = False,
) -> Samples:
    """``total`` requests from ``concurrency`` workers; ``stream=None`` alternates modes;
    ``prompt``: requests that name the benchmark prompt."""
    out = Samples()
    bodies = (request_body(False, prompt), request_body(True, prompt))
    issued = 0
    completed = 0

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal issued, completed
        while issued < total:
            n = issued
            issued += 1
            streaming = bool(n % 2) if stream is None else stream
            await one_request(client, url, bodies[streaming], streaming, out)
            completed += 1
            if on_done is not None:
                on_done(completed)

    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(new_session(concurrency))
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return out


def new_session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
    )


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any KEEL_* setting that could redirect the gateway."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int | None:
        """Stop gracefully; the return code is ``-sig`` when the process re-raised the
        signal after its own clean shutdown, as uvicorn does."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_upstream(workdir: Path, *extra_args: str) -> tuple[Child, int]:
    """The stand-in upstream (``bench.upstream``) on a free port; ``extra_args`` go to it
    (``--latency-ms 50``)."""
    log_path = workdir / "upstream.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--port", "0", *extra_args],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=log,
        )
    child = Child("upstream", proc, log_path)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r":(\d+) ", line)
    if not match:
        child.stop()
        raise RuntimeError(f"upstream did not start: {line!r}\n{child.log_tail()}")
    return child, int(match.group(1))


def start_floor(workdir: Path, port: int, upstream_port: int) -> Child:
    log_path = workdir / "floor.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.floor_proxy",
                "--port",
                str(port),
                "--upstream",
                f"http://127.0.0.1:{upstream_port}",
            ],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Child("floor", proc, log_path)


def prepare_spend(workdir: Path) -> str:
    """A team, a service key with a hard monthly budget and a rate limit, in the
    database Keel will use; returns the key."""
    from keel.access import AccessAdmin, Actor
    from keel.spend import set_budget, set_rate_limit
    from keel.store import create_store_engine, upgrade

    (workdir / "home").mkdir(exist_ok=True)
    engine = create_store_engine(f"sqlite:///{workdir / 'home' / 'keel.db'}")
    try:
        upgrade(engine)
        admin = AccessAdmin(engine)
        actor = Actor.system("bench")
        team = admin.create_team(actor, "bench")
        created = admin.create_key(actor, name="bench", role="service", team_id=team.id)
        key_id = created.key.id
        set_budget(
            engine,
            scope="key",
            scope_id=key_id,
            period="month",
            limit_nanos=10**18,
            team_id=team.id,
            actor="bench",
        )
        set_rate_limit(
            engine, scope="key", scope_id=key_id, rpm=10**9, tpm=10**12, team_id=team.id, actor="bench"
        )
        return created.secret
    finally:
        engine.dispose()


def prepare_prompt(workdir: Path) -> None:
    """The chat prompt ``--prompt`` requests name, labelled production, in the database
    Keel will use: it renders exactly the messages and parameters of the plain request."""
    from keel.prompts import PromptRegistry
    from keel.store import create_store_engine, upgrade

    (workdir / "home").mkdir(exist_ok=True)
    engine = create_store_engine(f"sqlite:///{workdir / 'home' / 'keel.db'}")
    try:
        upgrade(engine)
        registry = PromptRegistry(engine)
        version = registry.create(
            PROMPT_NAME,
            type="chat",
            template=[
                {"role": "system", "content": SYSTEM_MESSAGE},
                {"role": "user", "content": "{{ question }}"},
            ],
            variables={"question": "string"},
            model_config={"model": MODEL, "max_tokens": 64, "temperature": 0.2},
            actor="bench",
        )
        registry.set_label(PROMPT_NAME, "production", version.version, actor="bench", admin=True)
    finally:
        engine.dispose()


def write_keel_config(workdir: Path, keel_port: int, upstream_port: int, spend: SpendMode) -> Path:
    config = workdir / "keel.yaml"
    access = "access: {enabled: false}" if spend == "off" else "access: {enabled: true}"
    # With spend control on, the model has a price, so that every call makes a durable
    # reservation and a settlement (an unpriced call has nothing to reserve).
    spend_lines = ""
    if spend != "off":
        prefix = f"keel-bench-{os.getpid()}:" if spend == "redis" else "keel:"
        spend_lines = (
            f"spend:\n  redis_key_prefix: '{prefix}'\n  prices:\n"
            f"    - {{model: {MODEL}, token_type: input, usd_per_million: 1.0}}\n"
            f"    - {{model: {MODEL}, token_type: output, usd_per_million: 2.0}}"
        )
    redis = f"redis_url: {REDIS_URL}" if spend == "redis" else ""
    config.write_text(
        f"""\
home: {workdir / "home"}
server:
  host: 127.0.0.1
  port: {keel_port}
request_log:
  enabled: true
  bodies: true
# The data plane alone: the drift monitor's periodic run (embedding sampled bodies) is a
# background job measured by bench/drift.py, and belongs on one process of a deployment.
monitor:
  enabled: false
{access}
{redis}
{spend_lines}
providers:
  bench:
    type: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key: bench-key
models:
  {MODEL}:
    deployments:
      - provider: bench
        model: {MODEL}
"""
    )
    return config


# Runs ``keel`` under cProfile timed by the main thread's CPU clock, so that the
# profile shows where the event loop's CPU goes rather than wall time (which would
# charge GIL waits and scheduling delays to whatever frame happened to be current).
# The request-log writer's thread is not in it; its cost is in the CPU counters.
_PROFILED_KEEL = """
import cProfile, sys, time
from keel.cli import main
out = sys.argv.pop(1)
profiler = cProfile.Profile(time.thread_time)
profiler.enable()
try:
    main()
except (SystemExit, KeyboardInterrupt):
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""


def start_keel(workdir: Path, config: Path, profile_to: Path | None) -> Child:
    log_path = workdir / "keel.log"
    runner = [sys.executable, "-m", "keel"]
    if profile_to is not None:
        runner = [sys.executable, "-c", _PROFILED_KEEL, str(profile_to.resolve())]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*runner, "serve", "--config", str(config), "--log-level", "warning"],
            cwd=workdir,
            env=child_env(KEEL_HOME=str(workdir / "home")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Child("keel", proc, log_path)


async def wait_healthy(child: Child, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} not healthy after {timeout}s:\n{child.log_tail()}")


def pin(processes: Sequence[tuple[psutil.Process, list[int]]]) -> bool:
    """Give the gateways a core of their own (upstream and load generator share the
    other), so that a gateway's CPU time and latency are not mixed up with the
    stand-ins' scheduling. Keel and the floor proxy share CPU 0 but never run a phase
    at the same time."""
    try:
        for proc, cpus in processes:
            proc.cpu_affinity(cpus)
    except (psutil.Error, OSError, AttributeError):
        return False
    return True


class LogWatch:
    """Reads the gateway's request-log counter from /metrics, to let the batching
    writer finish a phase's records before that phase's CPU time is read."""

    def __init__(self, base_url: str) -> None:
        self._url = f"{base_url}/metrics"

    async def written(self, session: aiohttp.ClientSession) -> int:
        async with session.get(self._url) as resp:
            text = await resp.text()
        match = re.search(r"^keel_request_log_written (\S+)$", text, re.MULTILINE)
        return int(float(match.group(1))) if match else -1

    async def wait_for(self, expected: int, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                written = await self.written(session)
                if written >= expected or time.monotonic() > deadline:
                    return written
                await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------- measuring


def cpu_seconds(proc: psutil.Process | None) -> float:
    """User + system time of every thread; 0 for the direct target's missing gateway."""
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return times.user + times.system


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class PhaseResult:
    target: Target
    mode: Mode
    concurrency: int
    requests: int
    errors: int
    error_kinds: dict[str, int]
    seconds: float
    req_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None
    ttfb_p99_ms: float | None
    gateway_cpu_ms_per_req: float | None
    upstream_cpu_ms_per_req: float
    loadgen_cpu_ms_per_req: float
    machine_busy_pct: float
    log_written: int | None = None
    log_expected: int | None = None


@dataclass
class SoakSample:
    requests: int
    rss_mib: float


@dataclass
class SoakResult:
    requests: int
    concurrency: int
    errors: int
    seconds: float
    req_per_s: float
    gateway_cpu_ms_per_req: float
    samples: list[SoakSample]
    second_half_growth: float
    flat: bool


@dataclass
class Bench:
    """The running processes and what the run has measured so far."""

    upstream: Child
    gateways: dict[Target, Child]
    urls: dict[Target, str]
    log_watch: LogWatch
    progress: Progress
    prompt: bool = False  # the soak's requests name a prompt
    keel_requests: int = 0
    results: list[PhaseResult] = field(default_factory=list)

    async def phase(
        self, target: Target, mode: Mode, concurrency: int, total: int, warmup: int
    ) -> PhaseResult:
        url = f"{self.urls[target]}/v1/chat/completions"
        stream = mode == "stream"
        child = self.gateways.get(target)
        gateway = child.ps if child is not None else None
        upstream, me = self.upstream.ps, psutil.Process()
        label = f"{target:>6} {mode:<10} c={concurrency:<3}"
        task = self.progress.add_task(label, total=warmup + total)

        def advance(_: int) -> None:
            self.progress.advance(task)

        via_keel = target in KEEL_TARGETS
        prompt = target == "keel-prompt"
        async with new_session(concurrency) as session:
            await drive(url, warmup, concurrency, stream, advance, session, prompt)
            if via_keel:
                self.keel_requests += warmup
                await self.log_watch.wait_for(self.keel_requests)
            cpu_before = (cpu_seconds(gateway), cpu_seconds(upstream), cpu_seconds(me))
            machine_before = psutil.cpu_times()
            started = time.perf_counter()
            samples = await drive(url, total, concurrency, stream, advance, session, prompt)
            seconds = time.perf_counter() - started
        written: int | None = None
        if via_keel:
            self.keel_requests += total
            written = await self.log_watch.wait_for(self.keel_requests)
        cpu_after = (cpu_seconds(gateway), cpu_seconds(upstream), cpu_seconds(me))
        machine_after = psutil.cpu_times()
        self.progress.remove_task(task)

        def per_req(i: int) -> float:
            return (cpu_after[i] - cpu_before[i]) * 1000 / total

        result = PhaseResult(
            target=target,
            mode=mode,
            concurrency=concurrency,
            requests=total,
            errors=samples.errors,
            error_kinds=samples.error_kinds,
            seconds=seconds,
            req_per_s=total / seconds,
            p50_ms=percentile(samples.latencies_ms, 50),
            p99_ms=percentile(samples.latencies_ms, 99),
            ttfb_p50_ms=percentile(samples.ttfb_ms, 50),
            ttfb_p99_ms=percentile(samples.ttfb_ms, 99),
            gateway_cpu_ms_per_req=per_req(0) if gateway is not None else None,
            upstream_cpu_ms_per_req=per_req(1),
            loadgen_cpu_ms_per_req=per_req(2),
            machine_busy_pct=busy_pct(machine_before, machine_after),
            log_written=written,
            log_expected=self.keel_requests if via_keel else None,
        )
        self.results.append(result)
        return result

    async def soak(self, total: int) -> SoakResult:
        url = f"{self.urls['keel']}/v1/chat/completions"
        gateway = self.gateways["keel"].ps
        task = self.progress.add_task(f"  soak mixed      c={SOAK_CONCURRENCY}", total=total)
        samples = [SoakSample(0, gateway.memory_info().rss / 2**20)]

        def advance(n: int) -> None:
            self.progress.advance(task)
            if n % SOAK_SAMPLE_EVERY == 0:
                samples.append(SoakSample(n, gateway.memory_info().rss / 2**20))

        cpu_before = cpu_seconds(gateway)
        started = time.perf_counter()
        seen = await drive(url, total, SOAK_CONCURRENCY, None, advance, prompt=self.prompt)
        seconds = time.perf_counter() - started
        self.keel_requests += total
        await self.log_watch.wait_for(self.keel_requests)
        cpu_ms = (cpu_seconds(gateway) - cpu_before) * 1000 / total
        self.progress.remove_task(task)
        samples.sort(key=lambda s: s.requests)
        if samples[-1].requests != total:
            samples.append(SoakSample(total, gateway.memory_info().rss / 2**20))
        mid = min(samples, key=lambda s: abs(s.requests - total / 2))
        growth = (samples[-1].rss_mib - mid.rss_mib) / mid.rss_mib
        return SoakResult(
            requests=total,
            concurrency=SOAK_CONCURRENCY,
            errors=seen.errors,
            seconds=seconds,
            req_per_s=total / seconds,
            gateway_cpu_ms_per_req=cpu_ms,
            samples=samples,
            second_half_growth=growth,
            flat=growth < TARGET_SOAK_GROWTH,
        )


def busy_pct(before: Any, after: Any) -> float:
    """Share of all cores' time that was not idle between two ``psutil.cpu_times()``."""
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    return 100.0 * (1 - idle / total) if total > 0 else 0.0


# ---------------------------------------------------------------------------- reporting


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(results: Sequence[PhaseResult]) -> Table:
    table = Table(
        title="Direct to upstream vs through the floor proxy vs through Keel "
        "(latencies in ms; added p50 = p50 minus direct p50)"
    )
    for name in ("target", "mode", "c", "req/s", "p50", "p99", "ttfb p50", "ttfb p99", "errors", "added p50"):
        table.add_column(name, justify="left" if name in ("target", "mode") else "right")
    for r in results:
        table.add_row(
            r.target,
            r.mode,
            str(r.concurrency),
            f"{r.req_per_s:,.0f}",
            fmt(r.p50_ms),
            fmt(r.p99_ms),
            fmt(r.ttfb_p50_ms),
            fmt(r.ttfb_p99_ms),
            str(r.errors),
            fmt(added_p50(results, r.mode, r.concurrency, r.target)) if r.target != "direct" else "",
        )
    return table


def cpu_table(results: Sequence[PhaseResult]) -> Table:
    table = Table(title="CPU time per request (ms), from each process's own counters")
    columns = (
        "target",
        "mode",
        "c",
        "gateway",
        "keel - floor",
        "upstream",
        "load generator",
        "machine busy %",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("target", "mode") else "right")
    for r in results:
        table.add_row(
            r.target,
            r.mode,
            str(r.concurrency),
            fmt(r.gateway_cpu_ms_per_req, 3),
            fmt(keel_above_floor(results, r.mode, r.concurrency, r.target), 3)
            if r.target in KEEL_TARGETS
            else "",
            fmt(r.upstream_cpu_ms_per_req, 3),
            fmt(r.loadgen_cpu_ms_per_req, 3),
            f"{r.machine_busy_pct:.0f}",
        )
    return table


def soak_table(soak: SoakResult) -> Table:
    table = Table(title="Soak: gateway RSS")
    table.add_column("requests", justify="right")
    table.add_column("gateway RSS MiB", justify="right")
    for s in soak.samples:
        table.add_row(f"{s.requests:,}", f"{s.rss_mib:.1f}")
    return table


def soak_summary(soak: SoakResult) -> str:
    return (
        f"soak: {soak.requests:,} requests through Keel at c={soak.concurrency}, half streaming: "
        f"{soak.req_per_s:,.0f} req/s, {soak.errors} errors, {soak.gateway_cpu_ms_per_req:.3f} ms "
        f"gateway CPU/req, RSS {soak.second_half_growth:+.1%} over the second half"
    )


def find(results: Sequence[PhaseResult], target: Target, mode: Mode, c: int) -> PhaseResult | None:
    found = [r for r in results if (r.target, r.mode, r.concurrency) == (target, mode, c)]
    return found[-1] if found else None


def median_of(runs: Sequence[PhaseResult]) -> PhaseResult:
    """One phase's repeats as one result: the median of every measure (robust to a
    neighbour's burst hitting one repeat), errors summed."""

    def med(values: Sequence[float | None]) -> float | None:
        present = sorted(v for v in values if v is not None)
        return statistics.median(present) if present else None

    first = runs[0]
    return PhaseResult(
        target=first.target,
        mode=first.mode,
        concurrency=first.concurrency,
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
        error_kinds={k: sum(r.error_kinds.get(k, 0) for r in runs) for r in runs for k in r.error_kinds},
        seconds=sum(r.seconds for r in runs),
        req_per_s=statistics.median(r.req_per_s for r in runs),
        p50_ms=med([r.p50_ms for r in runs]),
        p99_ms=med([r.p99_ms for r in runs]),
        ttfb_p50_ms=med([r.ttfb_p50_ms for r in runs]),
        ttfb_p99_ms=med([r.ttfb_p99_ms for r in runs]),
        gateway_cpu_ms_per_req=med([r.gateway_cpu_ms_per_req for r in runs]),
        upstream_cpu_ms_per_req=statistics.median(r.upstream_cpu_ms_per_req for r in runs),
        loadgen_cpu_ms_per_req=statistics.median(r.loadgen_cpu_ms_per_req for r in runs),
        machine_busy_pct=statistics.median(r.machine_busy_pct for r in runs),
        log_written=runs[-1].log_written,
        log_expected=runs[-1].log_expected,
    )


def summarise(results: Sequence[PhaseResult]) -> list[PhaseResult]:
    """Every phase once, in the order first run, its repeats folded by ``median_of``."""
    keys: dict[tuple[str, str, int], list[PhaseResult]] = {}
    for r in results:
        keys.setdefault((r.target, r.mode, r.concurrency), []).append(r)
    return [median_of(runs) for runs in keys.values()]


def added_p50(results: Sequence[PhaseResult], mode: Mode, c: int, target: Target = "keel") -> float | None:
    """``target``'s p50 minus the direct p50 at the same mode and concurrency."""
    proxied, direct = find(results, target, mode, c), find(results, "direct", mode, c)
    if proxied is None or direct is None or proxied.p50_ms is None or direct.p50_ms is None:
        return None
    return proxied.p50_ms - direct.p50_ms


def keel_above_floor(
    results: Sequence[PhaseResult], mode: Mode, c: int, target: Target = "keel"
) -> float | None:
    """Keel's CPU ms/request minus the floor proxy's: what Keel itself costs above the
    server and client libraries every proxy on this stack pays."""
    keel, floor = find(results, target, mode, c), find(results, "floor", mode, c)
    if keel is None or floor is None:
        return None
    if keel.gateway_cpu_ms_per_req is None or floor.gateway_cpu_ms_per_req is None:
        return None
    return keel.gateway_cpu_ms_per_req - floor.gateway_cpu_ms_per_req


@dataclass
class Verdict:
    target: str
    value: str
    met: bool | None
    # Reported for context, never a pass or a miss.
    informational: bool = False


def verdicts(results: Sequence[PhaseResult], soak: SoakResult | None) -> list[Verdict]:
    out: list[Verdict] = []
    for mode in MODES:
        added = added_p50(results, mode, 1)
        out.append(
            Verdict(
                f"added p50 latency ≤ {TARGET_ADDED_P50_MS:g} ms at c=1 ({mode})",
                f"{fmt(added, 3)} ms",
                None if added is None else added <= TARGET_ADDED_P50_MS,
            )
        )
    for mode in MODES:
        cpu = [r.gateway_cpu_ms_per_req for r in results if r.target == "keel" and r.mode == mode]
        worst = max((c for c in cpu if c is not None), default=None)
        out.append(
            Verdict(
                f"gateway CPU ≤ {TARGET_CPU_MS_PER_REQ:g} ms/req, worst of c=1/16/64 ({mode})",
                f"{fmt(worst, 3)} ms",
                None if worst is None else worst <= TARGET_CPU_MS_PER_REQ,
            )
        )
    for mode in MODES:
        floor = [r.gateway_cpu_ms_per_req for r in results if r.target == "floor" and r.mode == mode]
        above = [keel_above_floor(results, mode, c) for c in CONCURRENCIES]
        present = [a for a in above if a is not None]
        floors = [f for f in floor if f is not None]
        out.append(
            Verdict(
                f"Keel CPU above the floor proxy's, c=1/16/64 ({mode})",
                f"{' / '.join(fmt(a, 3) for a in above)} ms (floor {fmt(min(floors, default=None), 3)}-"
                f"{fmt(max(floors, default=None), 3)} ms)"
                if present
                else "—",
                None,
                informational=True,
            )
        )
    if any(r.target == "keel-prompt" for r in results):
        out.extend(prompt_verdicts(results))
    at_64 = [r for r in results if r.concurrency == 64]
    errors = sum(r.errors for r in at_64)
    out.append(Verdict("no errors at c=64 (all phases)", str(errors), errors == 0 if at_64 else None))
    if soak is not None:
        out.append(
            Verdict(
                f"memory flat over {soak.requests:,} requests (2nd-half RSS growth < "
                f"{TARGET_SOAK_GROWTH:.0%})",
                f"{soak.samples[0].rss_mib:.1f} → {soak.samples[-1].rss_mib:.1f} MiB "
                f"({soak.second_half_growth:+.1%} 2nd half)",
                soak.flat and soak.errors == 0,
            )
        )
    return out


def prompt_vs_plain(results: Sequence[PhaseResult], mode: Mode, c: int) -> float | None:
    """keel-prompt's p50 over keel's, minus 1 (+0.05: a prompt request is 5% slower)."""
    plain, prompt = find(results, "keel", mode, c), find(results, "keel-prompt", mode, c)
    if plain is None or prompt is None or not plain.p50_ms or prompt.p50_ms is None:
        return None
    return prompt.p50_ms / plain.p50_ms - 1


def prompt_verdicts(results: Sequence[PhaseResult]) -> list[Verdict]:
    out: list[Verdict] = []
    for mode in MODES:
        change = prompt_vs_plain(results, mode, 1)
        plain, prompt = find(results, "keel", mode, 1), find(results, "keel-prompt", mode, 1)
        out.append(
            Verdict(
                f"by prompt: p50 ≤ {TARGET_PROMPT_P50_RATIO:.0%} of plain through Keel, c=1 ({mode})",
                f"{fmt(prompt.p50_ms if prompt else None, 3)} vs {fmt(plain.p50_ms if plain else None, 3)} ms"
                + (f" ({change:+.1%})" if change is not None else ""),
                None if change is None else change <= TARGET_PROMPT_P50_RATIO - 1,
            )
        )
    for mode in MODES:
        changes = [prompt_vs_plain(results, mode, c) for c in CONCURRENCIES]
        cpu = [(find(results, "keel-prompt", mode, c), find(results, "keel", mode, c)) for c in CONCURRENCIES]
        extra = [
            a.gateway_cpu_ms_per_req - b.gateway_cpu_ms_per_req
            for a, b in cpu
            if a is not None
            and b is not None
            and a.gateway_cpu_ms_per_req is not None
            and b.gateway_cpu_ms_per_req is not None
        ]
        out.append(
            Verdict(
                f"by prompt vs plain: p50 change and extra CPU ms/req, c=1/16/64 ({mode})",
                f"{' / '.join('—' if c is None else f'{c:+.1%}' for c in changes)}; "
                f"{' / '.join(f'{e:+.3f}' for e in extra) or '—'} ms",
                None,
                informational=True,
            )
        )
    return out


def verdict_table(items: Sequence[Verdict], pinned: bool) -> Table:
    table = Table(
        title="Targets (2-core machine, request logging with bodies on, "
        + ("gateway pinned to CPU 0)" if pinned else "no CPU pinning)")
    )
    table.add_column("target")
    table.add_column("measured", justify="right")
    table.add_column("result")
    for v in items:
        if v.informational:
            result = "[dim]info[/]"
        else:
            result = "[dim]n/a[/]" if v.met is None else ("[green]PASS[/]" if v.met else "[red]MISS[/]")
        table.add_row(v.target, v.value, result)
    return table


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
    }


def log_rows(db: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            (count,) = conn.execute("select count(*) from request_log").fetchone()
            return int(count)
    except sqlite3.Error:
        return None


def print_profile(path: Path, limit: int = 15) -> None:
    """The gateway's top functions from keel, aiohttp, uvicorn, starlette and sqlalchemy,
    by cumulative and by own CPU time (the cumulative list starts with the ASGI chain
    every request passes through; the own-time list shows where the work is)."""
    import pstats

    stats = pstats.Stats(str(path))
    wanted = re.compile(r"/(keel|aiohttp|uvicorn|starlette|sqlalchemy)/")
    rows = []
    for func, (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        filename, line, name = func
        if wanted.search(filename):
            short = re.sub(r"^.*/(site-packages|src)/", "", filename)
            rows.append((cumulative, own, calls, f"{short}:{line}({name})"))
    total: float = stats.total_tt  # type: ignore[attr-defined]
    for title, key in (("cumulative", 0), ("own", 1)):
        rows.sort(key=lambda row: row[key], reverse=True)
        table = Table(
            title=f"Gateway profile: top {limit} by {title} CPU time of {total:.1f} s profiled "
            "(keel, aiohttp, uvicorn, starlette, sqlalchemy)"
        )
        for name in ("cumulative s", "own s", "calls", "function"):
            table.add_column(name, justify="left" if name == "function" else "right")
        for cumulative, own, calls, name in rows[:limit]:
            table.add_row(f"{cumulative:.2f}", f"{own:.2f}", str(calls), name)
        console.print(table)
    console.print(f"full profile: {path} (python -m pstats {path})")


# ---------------------------------------------------------------------------- main


@dataclass
class Plan:
    requests: int
    warmup: int
    soak: int
    repeat: int
    pin: bool
    profile: Path | None
    json_path: Path | None
    only: set[Mode]
    spend: SpendMode = "off"
    prompt: bool = False


def parse_args(argv: Sequence[str] | None) -> Plan:
    parser = argparse.ArgumentParser(description="Keel gateway benchmark (127.0.0.1 only).")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per phase (2000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests per phase (10%%, ≥ 64)")
    parser.add_argument("--quick", action="store_true", help="300 requests per phase, soak 10,000")
    parser.add_argument("--soak", type=int, default=None, help="soak requests (100,000; 0 skips)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="run every direct/floor/Keel triple this many times (3; 1 with --quick); the median counts",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway (Keel or the floor proxy) to CPU 0 and the upstream and load generator "
        "to the other cores (best on an otherwise idle machine)",
    )
    parser.add_argument("--mode", choices=MODES, action="append", help="only this mode (repeatable)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the gateway under cProfile, writing stats here (timings are then not representative)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every number to this file")
    parser.add_argument(
        "--spend",
        choices=["off", "inprocess", "redis"],
        default="off",
        help="off: no key (default); inprocess/redis: a key with a budget and a rate limit, "
        f"counters in process or in Redis ($KEEL_REDIS_URL, else {DEFAULT_REDIS_URL})",
    )
    parser.add_argument(
        "--prompt",
        action="store_true",
        help=f"Keel's requests name a prompt (prompt:{PROMPT_NAME}@production) that renders the same "
        "messages, instead of sending them",
    )
    args = parser.parse_args(argv)
    requests = 300 if args.quick and args.requests == 2000 else args.requests
    soak = args.soak if args.soak is not None else (10_000 if args.quick else 100_000)
    warmup = args.warmup if args.warmup is not None else max(64, requests // 10)
    if requests < 1 or warmup < 0 or soak < 0 or args.repeat < 1:
        parser.error("counts must be positive")
    return Plan(
        requests=requests,
        warmup=warmup,
        soak=soak,
        repeat=1 if args.quick and args.repeat == 3 else args.repeat,
        pin=args.pin,
        profile=args.profile,
        json_path=args.json,
        only=set(args.mode or MODES),
        spend=args.spend,
        prompt=args.prompt,
    )


@dataclass
class Processes:
    upstream: Child
    floor: Child
    keel: Child
    urls: dict[Target, str]


@contextlib.contextmanager
def processes(
    workdir: Path, profile_to: Path | None, spend: SpendMode, prompt: bool = False
) -> Iterator[Processes]:
    upstream, upstream_port = start_upstream(workdir)
    started: list[Child] = []
    try:
        floor_port, keel_port = free_port(), free_port()
        started.append(floor := start_floor(workdir, floor_port, upstream_port))
        if spend != "off":
            REQUEST_HEADERS["Authorization"] = f"Bearer {prepare_spend(workdir)}"
        if prompt:
            prepare_prompt(workdir)
        config = write_keel_config(workdir, keel_port, upstream_port, spend)
        started.append(keel := start_keel(workdir, config, profile_to))
        yield Processes(
            upstream,
            floor,
            keel,
            {
                "direct": f"http://127.0.0.1:{upstream_port}",
                "floor": f"http://127.0.0.1:{floor_port}",
                "keel": f"http://127.0.0.1:{keel_port}",
                "keel-prompt": f"http://127.0.0.1:{keel_port}",
            },
        )
    finally:
        for child in reversed(started):
            child.stop()
        upstream.stop()


async def run(plan: Plan) -> int:
    info = machine_info()
    console.print(
        f"[bold]Keel gateway benchmark[/] — {info['cores']} cores, {info['cpu_model']}, "
        f"Python {info['python']}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        workdir = Path(tmp)
        with processes(workdir, plan.profile, plan.spend, plan.prompt) as procs:
            upstream, keel, urls = procs.upstream, procs.keel, procs.urls
            await wait_healthy(upstream, f"{urls['direct']}/health")
            await wait_healthy(procs.floor, f"{urls['floor']}/health")
            await wait_healthy(keel, f"{urls['keel']}/health/live")
            cores = os.cpu_count() or 1
            others = list(range(1, cores))
            pinned = (
                plan.pin
                and cores >= 2
                and pin(
                    [
                        (keel.ps, [0]),
                        (procs.floor.ps, [0]),
                        (upstream.ps, others),
                        (psutil.Process(), others),
                    ]
                )
            )
            if plan.pin and not pinned:
                console.print("[yellow]--pin asked for, but CPU affinity could not be set[/]")
            console.print(
                f"CPU pinning: gateway (Keel or floor proxy) on CPU 0; upstream and load generator on "
                f"CPU {others[0]}{f'-{others[-1]}' if len(others) > 1 else ''}"
                if pinned
                else "no CPU pinning: gateway, upstream and load generator share every core"
            )
            if plan.prompt:
                console.print(
                    f"keel-prompt: the same Keel, requests naming the prompt {PROMPT_NAME}@production, "
                    "which renders the plain request's messages"
                )
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            bench = Bench(
                upstream=upstream,
                gateways={"floor": procs.floor, "keel": keel, "keel-prompt": keel},
                urls=urls,
                log_watch=LogWatch(urls["keel"]),
                progress=progress,
                prompt=plan.prompt,
            )
            soak: SoakResult | None = None
            started = time.perf_counter()
            with progress:
                for mode in MODES:
                    if mode not in plan.only:
                        continue
                    for c in CONCURRENCIES:
                        # Direct, floor and Keel back to back, so that load from others
                        # on the machine tends to hit every side of a comparison alike.
                        for _ in range(plan.repeat):
                            for target in (*TARGETS, "keel-prompt") if plan.prompt else TARGETS:
                                await bench.phase(target, mode, c, plan.requests, plan.warmup)
                if plan.soak:
                    soak = await bench.soak(plan.soak)
            wall = time.perf_counter() - started
            final = summarise(bench.results)
            console.print(results_table(final))
            console.print(cpu_table(final))
            if soak is not None:
                console.print(soak_table(soak))
                console.print(soak_summary(soak))
            lagging = [
                r for r in final if r.log_written is not None and r.log_written < (r.log_expected or 0)
            ]
            # cProfile writes its stats on KeyboardInterrupt, not on a re-raised SIGTERM.
            stop_signal = signal.SIGINT if plan.profile else signal.SIGTERM
            rc_keel = keel.stop(sig=stop_signal)
            rows = log_rows(workdir / "home" / "keel.db")
        console.print(
            f"request log: {rows if rows is not None else '?'} rows for {bench.keel_requests} requests "
            f"sent through Keel; gateway "
            + ("stopped cleanly" if rc_keel in (0, 1, -stop_signal) else f"exit status {rc_keel}")
            + "; "
            + (
                "writer kept up at every phase end"
                if not lagging
                else f"writer behind in {len(lagging)} phases"
            )
        )
        items = verdicts(final, soak)
        console.print(verdict_table(items, pinned))
        console.print(f"benchmark wall time: {wall:.0f} s")
        if plan.profile is not None:
            console.print("[yellow]the gateway ran under cProfile: its timings above are inflated[/]")
            print_profile(plan.profile)
        if plan.json_path is not None:
            document = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join(["python -m bench.gateway", *sys.argv[1:]]),
                "machine": info,
                "pinned": pinned,
                "plan": {k: str(v) if isinstance(v, Path | set) else v for k, v in asdict(plan).items()},
                "wall_seconds": wall,
                "phases": [asdict(r) for r in bench.results],
                "final_phases": [asdict(r) for r in final],
                "added_p50_ms": {
                    f"{mode} c={c}": added_p50(final, mode, c) for mode in MODES for c in CONCURRENCIES
                },
                "floor_added_p50_ms": {
                    f"{mode} c={c}": added_p50(final, mode, c, "floor")
                    for mode in MODES
                    for c in CONCURRENCIES
                },
                "keel_minus_floor_cpu_ms_per_req": {
                    f"{mode} c={c}": keel_above_floor(final, mode, c) for mode in MODES for c in CONCURRENCIES
                },
                "prompt_vs_plain_p50": {
                    f"{mode} c={c}": prompt_vs_plain(final, mode, c) for mode in MODES for c in CONCURRENCIES
                }
                if plan.prompt
                else None,
                "soak": asdict(soak) if soak is not None else None,
                "request_log_rows": rows,
                "keel_requests": bench.keel_requests,
                "targets": [asdict(v) for v in items],
            }
            plan.json_path.write_text(json.dumps(document, indent=2))
            console.print(f"numbers written to {plan.json_path}")
        return 0 if all(v.met is not False for v in items) else 1


def main(argv: Sequence[str] | None = None) -> None:
    plan = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(run(plan)))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(run(plan)))


if __name__ == "__main__":
    main()
