"""Per-version metrics from the request log, on SQLite and PostgreSQL (same numbers)."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import Engine

from keel.core import InvalidRequest, NotFound
from keel.prompts import PromptRegistry, prompt_stats
from keel.prompts._stats import percentile
from keel.store import RequestRecord, insert_records

NOW = datetime.now(UTC).replace(microsecond=0)
_ids = count()


def record(
    version: int | None,
    *,
    name: str = "support",
    status: int = 200,
    latency: float | None = 100.0,
    ago: timedelta = timedelta(minutes=1),
    error_type: str | None = None,
    team_id: str | None = None,
    tokens: tuple[int, int, int] = (10, 2, 5),
    cost: int | None = 1_000,
) -> RequestRecord:
    return RequestRecord(
        id=f"r{next(_ids):08d}",
        created_at=NOW - ago,
        endpoint="chat.completions",
        requested_model=f"prompt:{name}@production",
        status=status,
        latency_ms=latency,
        error_type=error_type,
        input_tokens=tokens[0],
        cached_input_tokens=tokens[1],
        output_tokens=tokens[2],
        cost_nanos=cost,
        team_id=team_id,
        prompt_name=name if version is not None else None,
        prompt_version=version,
    )


@pytest.fixture
def registry(engine: Engine) -> PromptRegistry:
    registry = PromptRegistry(engine)
    registry.create("support", type="text", template="Hi {{ who }}", variables={"who": "string"}, actor="t")
    for text in ("Hello {{ who }}", "Hey {{ who }}"):
        registry.add_version("support", template=text, variables={"who": "string"}, actor="t")
    registry.set_label("support", "production", 2, actor="t", admin=True)
    registry.set_label("support", "canary", 2, actor="t", admin=True)
    registry.set_label("support", "staging", 3, actor="t", admin=True)
    registry.create("other", type="text", template="x", actor="t")
    return registry


def test_counts_errors_latency_tokens_and_cost_per_version(engine: Engine, registry: PromptRegistry) -> None:
    rng = random.Random(7)
    v1_latencies = [rng.uniform(50, 500) for _ in range(37)]
    records = [record(1, latency=latency) for latency in v1_latencies]
    records += [
        record(1, status=400, latency=1.0, error_type="invalid_request_error", cost=None),
        record(1, status=200, latency=900.0, error_type="stream_error"),  # broke mid-stream
        record(1, status=502, latency=None, error_type="upstream_error", tokens=(0, 0, 0), cost=0),
    ]
    records += [record(2, latency=20.0, cost=3_000), record(2, latency=40.0, cost=None)]
    records += [record(1, name="other"), record(None)]  # another prompt, and no prompt
    insert_records(engine, records)

    by_version = {s.version: s for s in prompt_stats(engine, "support")}
    assert sorted(by_version) == [1, 2, 3]
    v1, v2, v3 = by_version[1], by_version[2], by_version[3]
    assert (v1.requests, v1.errors) == (40, 3)
    assert v1.error_rate == pytest.approx(3 / 40)
    # Percentiles over the successful requests only, interpolated like numpy/percentile_cont.
    ordered = sorted(v1_latencies)
    expected = statistics.quantiles(ordered, n=20, method="inclusive")
    assert v1.latency_p50_ms == pytest.approx(statistics.median(ordered))
    assert v1.latency_p95_ms == pytest.approx(expected[18])
    assert (v1.input_tokens, v1.cached_input_tokens, v1.output_tokens) == (39 * 10, 39 * 2, 39 * 5)
    assert v1.cost_nanos == 38 * 1_000
    assert v1.first_request_at is not None and v1.first_request_at.tzinfo is not None
    assert v1.labels == ()

    assert (v2.requests, v2.errors, v2.error_rate) == (2, 0, 0.0)
    assert v2.latency_p50_ms == pytest.approx(30.0) and v2.latency_p95_ms == pytest.approx(39.0)
    assert v2.cost_nanos == 3_000
    assert v2.labels == ("canary", "production")

    assert (v3.requests, v3.errors, v3.error_rate, v3.latency_p50_ms) == (0, 0, None, None)
    assert v3.labels == ("staging",) and v3.last_request_at is None
    assert v3.to_json()["requests"] == 0 and v2.to_json()["labels"] == ["canary", "production"]


def test_period_and_team_filters(engine: Engine, registry: PromptRegistry) -> None:
    insert_records(
        engine,
        [
            record(1, ago=timedelta(days=10), team_id="t1"),
            record(1, ago=timedelta(days=2), team_id="t1"),
            record(1, ago=timedelta(hours=1), team_id="t2"),
        ],
    )
    assert prompt_stats(engine, "support")[0].requests == 3
    assert prompt_stats(engine, "support", since=NOW - timedelta(days=7))[0].requests == 2
    until = NOW - timedelta(days=1)
    assert prompt_stats(engine, "support", since=NOW - timedelta(days=7), until=until)[0].requests == 1
    assert prompt_stats(engine, "support", team_id="t2")[0].requests == 1
    only_old = prompt_stats(engine, "support", until=NOW - timedelta(days=5))[0]
    assert only_old.last_request_at == NOW - timedelta(days=10)


def test_unknown_prompt_and_bad_period(engine: Engine, registry: PromptRegistry) -> None:
    with pytest.raises(NotFound, match="Unknown prompt 'nope'"):
        prompt_stats(engine, "nope")
    with pytest.raises(InvalidRequest, match="later than"):
        prompt_stats(engine, "support", since=NOW, until=NOW - timedelta(hours=1))


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
