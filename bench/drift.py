"""Drift report timing: one route's report over 1,000,000 logged requests (numeric and
categorical signals) and 10,000 embedding vectors (384 dimensions), reference 7 days
before a 1-hour window, on SQLite.

    python -m bench.drift                         # seed into a temp dir, time, print
    python -m bench.drift --requests 200000 --embeddings 2000 --repeat 3
    python -m bench.drift --aggregate 100000      # also time aggregating N log rows

Seeding writes what aggregation would have stored (per-5-minute-bucket histograms,
category counts and embedding samples, bulk inserted): the request log itself is not
needed for the report, which is the point of pre-aggregation. The reference drifts a
little on purpose (latency +20 % in the last hour, a new topic in the embeddings), so
the detectors do real work. ``--aggregate N`` additionally inserts N request-log rows
with bodies and times turning them into buckets (language, refusals, and hashing
embeddings on the sampled bodies). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from keel.core._settings_monitor import MonitorSettings
from keel.monitor import (
    AggregationPlan,
    Aggregator,
    BucketAggregate,
    DriftResult,
    DriftRunner,
    Group,
    GroupFilter,
    hashing_embedder,
    signals,
    write_aggregates,
)
from keel.store import create_store_engine, insert_records, upgrade

BUDGET_S = 10.0
NOW = datetime(2026, 3, 9, 0, 30, tzinfo=UTC)
BUCKET = timedelta(minutes=5)
SPAN = timedelta(days=7, hours=1)


def _numeric(rng: np.random.Generator, n: int, late: np.ndarray) -> dict[str, np.ndarray]:
    latency = rng.lognormal(np.log(800), 0.5, n) * np.where(late, 1.2, 1.0)
    inputs = rng.lognormal(np.log(300), 0.8, n).round()
    outputs = rng.lognormal(np.log(150), 0.6, n).round()
    return {
        "latency_ms": latency,
        "ttft_ms": latency * rng.uniform(0.1, 0.3, n),
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cost_per_request": inputs * 150 + outputs * 600,
        "input_chars": inputs * 4.1,
        "output_chars": outputs * 4.3,
    }


def seed_aggregates(url: str, requests: int, embeddings: int, seed: int = 0) -> float:
    """Bucket aggregates of ``requests`` requests and ``embeddings`` vectors; seconds taken."""
    started = time.perf_counter()
    engine = create_store_engine(url)
    upgrade(engine)
    rng = np.random.default_rng(seed)
    specs = {s.name: s for s in signals()}
    start = NOW - SPAN
    offsets = np.sort(rng.uniform(0, SPAN.total_seconds(), requests))
    bucket_index = (offsets // BUCKET.total_seconds()).astype(np.int64)
    late = offsets > (SPAN - timedelta(hours=1)).total_seconds()
    group = Group("chat", "", "openai/gpt-4o-mini")
    buckets = int(bucket_index.max()) + 1
    starts = [start + i * BUCKET for i in range(buckets)]
    out: list[BucketAggregate] = []
    for name, values in _numeric(rng, requests, late).items():
        binning = specs[name].binning
        assert binning is not None
        cells = bucket_index * binning.size + binning.index(values)
        found, counts = np.unique(cells, return_counts=True)
        totals = np.bincount(bucket_index, weights=values, minlength=buckets)
        per_bucket: dict[int, dict[str, float]] = defaultdict(dict)
        for cell, count in zip(found.tolist(), counts.tolist(), strict=True):
            per_bucket[cell // binning.size][str(cell % binning.size)] = float(count)
        for b, histogram in per_bucket.items():
            out.append(
                BucketAggregate(
                    starts[b], group, name, int(sum(histogram.values())), float(totals[b]), histogram
                )
            )
    categorical = {
        "error_rate": (["ok", "upstream_error", "rate_limited"], [0.985, 0.01, 0.005]),
        "language": (["en", "de", "fr", "und"], [0.8, 0.08, 0.07, 0.05]),
        "refusal_rate": (["answer", "refusal"], [0.97, 0.03]),
    }
    for name, (labels, p) in categorical.items():
        drawn = rng.choice(len(labels), size=requests, p=p)
        counter = Counter(zip(bucket_index.tolist(), drawn.tolist(), strict=True))
        per_bucket_counts: dict[int, dict[str, float]] = defaultdict(dict)
        for (b, label), count in counter.items():
            per_bucket_counts[b][labels[label]] = float(count)
        for b, counts_of in per_bucket_counts.items():
            out.append(BucketAggregate(starts[b], group, name, int(sum(counts_of.values())), None, counts_of))
    # Embeddings: equally many per bucket; the last hour leans towards a new topic.
    per_bucket_vectors = max(1, embeddings // buckets)
    topic = rng.normal(size=384)
    topic /= np.linalg.norm(topic)
    made = 0
    for b in range(buckets):
        k = min(
            per_bucket_vectors + (1 if b < embeddings - per_bucket_vectors * buckets else 0),
            embeddings - made,
        )
        if k <= 0:
            break
        vectors = rng.normal(size=(k, 384))
        if starts[b] >= NOW - timedelta(hours=1):
            vectors += 2.0 * topic
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        samples = [(f"req-{b}-{i}", v) for i, v in enumerate(vectors)]
        population = float((bucket_index == b).sum())
        out.append(
            BucketAggregate(starts[b], group, "input_embedding", k, None, {"population": population}, samples)
        )
        made += k
    with engine.begin() as connection:
        write_aggregates(connection, out)
    engine.dispose()
    return time.perf_counter() - started


def time_report(url: str, repeat: int) -> tuple[list[float], list[DriftResult]]:
    settings = MonitorSettings(window="1h", reference="7d", lag=0, embedder="hashing")
    names = [
        "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_per_request", "input_chars",
        "output_chars", "error_rate", "language", "refusal_rate", "input_embedding",
    ]  # fmt: skip
    timings = []
    results: list[DriftResult] = []
    for _ in range(repeat):
        engine = create_store_engine(url)
        # A fresh runner each time: the whole reference is read, nothing is cached.
        runner = DriftRunner(engine, settings, embedder=hashing_embedder(), signal_names=names)
        started = time.perf_counter()
        results = asyncio.run(runner.run(now=NOW, where=GroupFilter("chat"), store=False, require_data=True))
        timings.append(time.perf_counter() - started)
        engine.dispose()
    return timings, results


def time_aggregation(directory: Path, rows: int) -> tuple[float, float]:
    """(seconds to insert, seconds to aggregate) ``rows`` request-log rows with bodies."""
    from tests.monitor._traffic import make_records

    url = f"sqlite:///{directory / 'aggregate.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    start = NOW - timedelta(days=1)
    records = make_records(start, timedelta(days=1), rows, seed=3)
    began = time.perf_counter()
    for at in range(0, rows, 50_000):
        insert_records(engine, records[at : at + 50_000])
    inserted = time.perf_counter() - began
    plan = AggregationPlan([s for s in signals()], BUCKET, 100, 32, hashing_embedder())
    aggregator = Aggregator(engine, plan)
    began = time.perf_counter()
    asyncio.run(aggregator.catch_up(NOW, history=timedelta(days=2), lag=timedelta(0)))
    aggregated = time.perf_counter() - began
    engine.dispose()
    return inserted, aggregated


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--embeddings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--aggregate", type=int, default=0, help="also time aggregating N request-log rows")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'drift.db'}"
        seeded = seed_aggregates(url, args.requests, args.embeddings)
        console.print(
            f"seeded {args.requests:,} requests and {args.embeddings:,} embeddings "
            f"as buckets in {seeded:.1f} s"
        )
        timings, results = time_report(url, args.repeat)
        table = Table("signal", "detector", "n reference", "n current", "score", "p", "drift")
        for r in results:
            table.add_row(
                r.signal,
                r.detector,
                f"{r.n_reference:,}",
                f"{r.n_current:,}",
                "" if r.score is None else f"{r.score:.4g}",
                "" if r.p_value is None else f"{r.p_value:.3g}",
                "DRIFT" if r.drifted else "ok",
            )
        console.print(table)
        median = statistics.median(timings)
        verdict = "[green]within[/green]" if median < BUDGET_S else "[red]OVER[/red]"
        console.print(
            f"drift report: median {median:.2f} s over {args.repeat} runs "
            f"(min {min(timings):.2f}, max {max(timings):.2f}); budget {BUDGET_S:.0f} s: {verdict}"
        )
        if args.aggregate:
            inserted, aggregated = time_aggregation(Path(tmp), args.aggregate)
            console.print(
                f"aggregation: {args.aggregate:,} request-log rows (inserted in {inserted:.1f} s) "
                f"aggregated in {aggregated:.1f} s ({args.aggregate / aggregated:,.0f} rows/s)"
            )


if __name__ == "__main__":
    main()
