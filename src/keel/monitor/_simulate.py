"""``keel monitor simulate``: replay a generated workload through a gateway, first as it
normally is, then with one controlled shift, and show what the drift monitor detects.

The two phases are separated in time on bucket boundaries (1-second buckets by
default), so the real pipeline (request log → buckets → windows → detectors → stored
results) compares exactly the baseline with the shifted traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy import Engine

from keel.core._settings_monitor import MonitorSettings
from keel.monitor._drift import DriftResult
from keel.monitor._embed import Embedder
from keel.monitor._service import DriftRunner
from keel.monitor._windows import GroupFilter, WindowSpec
from keel.monitor._workload import SHIFTED_SIGNAL, GeneratedRequest, ShiftKind, generate


@dataclass
class Phase:
    name: str
    start: datetime
    end: datetime
    sent: int = 0
    failed: int = 0


@dataclass
class SimulationReport:
    shift: ShiftKind
    phases: list[Phase]
    results: list[DriftResult] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return sorted(r.signal for r in self.results if r.drifted)

    @property
    def expected_signal(self) -> str | None:
        return SHIFTED_SIGNAL.get(self.shift)

    @property
    def detected(self) -> bool:
        expected = self.expected_signal
        return (expected is None and not self.drifted) or expected in self.drifted


async def replay(
    url: str,
    requests: Sequence[GeneratedRequest],
    *,
    api_key: str | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
) -> tuple[int, int]:
    """Send ``requests`` to the gateway at ``url`` (its base, without /v1); (sent, failed)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    endpoint = url.rstrip("/") + "/v1/chat/completions"
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(session: aiohttp.ClientSession, request: GeneratedRequest) -> None:
        nonlocal failed
        async with gate:
            try:
                async with session.post(endpoint, json=request.body, headers=headers) as response:
                    await response.read()
                    failed += response.status >= 400
            except aiohttp.ClientError:
                failed += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        await asyncio.gather(*(one(session, r) for r in requests))
    return len(requests), failed


async def _next_boundary(bucket: float) -> datetime:
    """Sleep to the start of the next bucket; returns it."""
    now = time.time()
    boundary = (int(now // bucket) + 1) * bucket
    await asyncio.sleep(boundary - now + 0.001)
    return datetime.fromtimestamp(boundary, UTC)


async def simulate(
    url: str,
    *,
    shift: ShiftKind,
    model: str = "chat",
    requests: int = 200,
    api_key: str | None = None,
    engine: Engine | None = None,
    settings: MonitorSettings | None = None,
    embedder: Embedder | None = None,
    bucket: float = 1.0,
    settle: float = 1.0,
    concurrency: int = 8,
    seed: int = 0,
) -> SimulationReport:
    """Replay ``requests`` baseline requests then as many shifted ones; with ``engine``
    (the gateway's store) test the shifted phase against the baseline and store it."""
    start = await _next_boundary(bucket)
    baseline = Phase("baseline", start, start)
    baseline.sent, baseline.failed = await replay(
        url, generate(requests, "none", model=model, seed=seed), api_key=api_key, concurrency=concurrency
    )
    middle = await _next_boundary(bucket)
    baseline.end = middle
    shifted = Phase(shift, middle, middle)
    shifted.sent, shifted.failed = await replay(
        url, generate(requests, shift, model=model, seed=seed + 1), api_key=api_key, concurrency=concurrency
    )
    end = await _next_boundary(bucket)
    shifted.end = end
    report = SimulationReport(shift, [baseline, shifted])
    if engine is None:
        return report
    await asyncio.sleep(settle)  # the gateway's log writer flushes in batches
    base = settings or MonitorSettings()
    tuned = base.model_copy(
        update={"bucket": bucket, "lag": 0.0, "min_samples": min(base.min_samples, max(10, requests // 4))}
    )
    runner = DriftRunner(
        engine,
        tuned,
        embedder=embedder,
        windows=WindowSpec(end - middle, reference_start=start, reference_end=middle),
    )
    report.results = await runner.run(
        now=end - timedelta(milliseconds=1), where=GroupFilter(route=model), require_data=True, catch_up=False
    )
    return report
