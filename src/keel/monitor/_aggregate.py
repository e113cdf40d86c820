"""From the request log to per-bucket aggregates, incrementally.

``Aggregator.catch_up`` reads only the requests created since the watermark (the end of
the last bucket it stored) and up to the last *closed* bucket (one that ended ``lag``
ago, so late writes of long requests are in), and stores, per bucket, group and
signal, a histogram or category counts (and for embedding signals a sample of vectors),
moving the watermark in the same transaction with a compare-and-set: of several
processes only one stores a range. ``aggregate`` computes the same for any range
without storing it (the open buckets at the head of a window).

Column signals are computed for every request, vectorised; body signals on a sample
of ``body_sample`` requests per bucket and group (deterministic: the same range always
yields the same sample), embeddings on the first ``embedding_sample`` of those.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.monitor._embed import Embedder
from keel.monitor._signals import LOG_COLUMNS, Event, Group, LoggedRequest, SignalSpec
from keel.monitor._tables import monitor_buckets, monitor_progress, monitor_samples
from keel.monitor._types import FloatArray
from keel.store import request_log

REQUESTS = "requests"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ID_CHUNK = 500
_MAX_TEXT = 4000


@dataclass
class BucketAggregate:
    """One bucket's observations of one signal for one group."""

    bucket_start: datetime
    group: Group
    signal: str
    count: int
    total: float | None
    counts: dict[str, float]
    # Embedding signals: (request id, vector) of the sampled texts.
    samples: list[tuple[str, FloatArray]] = field(default_factory=list)


@dataclass(frozen=True)
class AggregationPlan:
    """What to compute: the signals, the bucket size and the sampling."""

    specs: Sequence[SignalSpec]
    bucket: timedelta = timedelta(minutes=5)
    body_sample: int = 100
    embedding_sample: int = 32
    embedder: Embedder | None = None
    routes: frozenset[str] = frozenset()
    seed: int = 0


def bucket_floor(at: datetime, bucket: timedelta) -> datetime:
    """The start of the bucket ``at`` falls in (buckets are aligned to 2000-01-01 UTC)."""
    seconds = int(bucket.total_seconds())
    offset = int((at - _EPOCH).total_seconds()) // seconds * seconds
    return _EPOCH + timedelta(seconds=offset)


def _group_of(row: Any) -> Group:
    prompt = f"{row.prompt_name}@{row.prompt_version}" if row.prompt_name else ""
    return Group(row.route or row.requested_model, prompt, row.deployment or "")


class Aggregator:
    """Aggregates ``request_log`` into ``monitor_buckets`` / ``monitor_samples``.
    ``rows_read`` counts the request rows read, for tests and the bench."""

    def __init__(self, engine: Engine, plan: AggregationPlan) -> None:
        self.engine = engine
        self.plan = plan
        self.rows_read = 0

    # -- the watermark ----------------------------------------------------------------

    def watermark(self) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(monitor_progress.c.aggregated_until).where(monitor_progress.c.source == REQUESTS)
            ).scalar()

    async def catch_up(self, now: datetime, *, history: timedelta, lag: timedelta) -> datetime:
        """Store every closed bucket not stored yet; returns the new watermark."""
        bucket = self.plan.bucket
        closed = bucket_floor(now - lag, bucket)
        mark = await asyncio.to_thread(self.watermark)
        if mark is None:
            first = await asyncio.to_thread(self._first_request, now - history)
            start = bucket_floor(first, bucket) if first is not None else closed
            if not await asyncio.to_thread(self._move_watermark, None, min(start, closed), []):
                return await asyncio.to_thread(self.watermark) or closed
            mark = min(start, closed)
        step = max(bucket, timedelta(hours=1))
        while mark < closed:
            end = min(mark + step, closed)
            aggregates = await self.aggregate(mark, end)
            if not await asyncio.to_thread(self._move_watermark, mark, end, aggregates):
                # Another process stored this range first: continue from where it is.
                moved = await asyncio.to_thread(self.watermark)
                if moved is None or moved <= mark:
                    raise RuntimeError(f"monitor: could not store the aggregates from {mark.isoformat()}")
                mark = moved
                continue
            mark = end
        return mark

    def _first_request(self, since: datetime) -> datetime | None:
        with self.engine.connect() as connection:
            found: datetime | None = connection.execute(
                select(func.min(request_log.c.created_at)).where(request_log.c.created_at >= since)
            ).scalar()
        return found

    def _move_watermark(self, old: datetime | None, new: datetime, aggregates: list[BucketAggregate]) -> bool:
        embedder = self.plan.embedder.name if self.plan.embedder is not None else None
        try:
            with self.engine.begin() as connection:
                if old is None:
                    connection.execute(
                        insert(monitor_progress).values(
                            source=REQUESTS, aggregated_until=new, embedder=embedder
                        )
                    )
                else:
                    moved = connection.execute(
                        update(monitor_progress)
                        .where(
                            monitor_progress.c.source == REQUESTS, monitor_progress.c.aggregated_until == old
                        )
                        .values(aggregated_until=new, embedder=embedder)
                    )
                    if moved.rowcount != 1:
                        raise _LostRace
                write_aggregates(connection, aggregates)
        except (_LostRace, IntegrityError):
            return False
        return True

    # -- computing ----------------------------------------------------------------------

    async def aggregate(self, start: datetime, end: datetime) -> list[BucketAggregate]:
        """The aggregates of requests created in [start, end), not stored."""
        if end <= start:
            return []
        batch = await asyncio.to_thread(self._read_and_compute, start, end)
        if batch.texts and self.plan.embedder is not None:
            vectors = await self.plan.embedder.embed([text for *_, text in batch.texts])
            by_key: dict[tuple[int, str], list[tuple[str, FloatArray]]] = defaultdict(list)
            for (key, name, request_id, _), vector in zip(batch.texts, vectors, strict=True):
                by_key[(key, name)].append((request_id, np.asarray(vector, dtype=np.float64)))
            for (key, name), samples in by_key.items():
                bucket_start, group = batch.keys[key]
                population = batch.key_sizes[key] * len(samples) / max(1, batch.text_checked[(key, name)])
                batch.out.append(
                    BucketAggregate(
                        bucket_start, group, name, len(samples), None, {"population": population}, samples
                    )
                )
        return batch.out

    def _read_and_compute(self, start: datetime, end: datetime) -> _Batch:
        batch = _Batch()
        columns = [
            request_log.c.id,
            request_log.c.created_at,
            request_log.c.route,
            request_log.c.requested_model,
            request_log.c.prompt_name,
            request_log.c.prompt_version,
            request_log.c.deployment,
            *(request_log.c[name] for name in LOG_COLUMNS),
        ]
        where = [request_log.c.created_at >= start, request_log.c.created_at < end]
        if self.plan.routes:
            where.append(
                func.coalesce(request_log.c.route, request_log.c.requested_model).in_(self.plan.routes)
            )
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*columns).where(and_(*where)).order_by(request_log.c.created_at, request_log.c.id)
            ).all()
            self.rows_read += len(rows)
            codes = self._codes(batch, rows, start)
            if rows:
                self._column_signals(batch, rows, codes)
                self._body_signals(batch, connection, rows, codes)
            self._event_signals(batch, connection, start, end)
        return batch

    def _codes(self, batch: _Batch, rows: Sequence[Any], start: datetime) -> np.ndarray:
        index: dict[tuple[datetime, Group], int] = {}
        seconds = int(self.plan.bucket.total_seconds())
        codes = np.empty(len(rows), dtype=np.int64)
        for i, row in enumerate(rows):
            at = row.created_at
            offset = int((at - _EPOCH).total_seconds()) // seconds * seconds
            # A range that starts mid-bucket (the bucket setting changed) starts its first
            # bucket there: a bucket already stored is never written again.
            key = (max(_EPOCH + timedelta(seconds=offset), start), _group_of(row))
            code = index.get(key)
            if code is None:
                code = index[key] = len(batch.keys)
                batch.keys.append(key)
            codes[i] = code
        batch.key_sizes = np.bincount(codes, minlength=len(batch.keys)).tolist()
        return codes

    def _column_signals(self, batch: _Batch, rows: Sequence[Any], codes: np.ndarray) -> None:
        specs = [s for s in self.plan.specs if s.source == "columns"]
        if not specs:
            return
        columns: dict[str, Any] = {}
        for name in LOG_COLUMNS:
            values = [getattr(row, name) for row in rows]
            columns[name] = values
        for name in ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_nanos"):
            columns[name] = np.array([np.nan if v is None else v for v in columns[name]], dtype=np.float64)
        for spec in specs:
            values = spec.compute(columns)
            if spec.kind == "numeric":
                self._add_numeric(batch, spec, np.asarray(values, dtype=np.float64), codes)
            else:
                self._add_categories(batch, spec, list(values), codes)

    def _add_numeric(self, batch: _Batch, spec: SignalSpec, values: FloatArray, codes: np.ndarray) -> None:
        assert spec.binning is not None
        keep = np.isfinite(values)
        if not keep.any():
            return
        values, codes = values[keep], codes[keep]
        size = spec.binning.size
        combined = codes * size + spec.binning.index(values)
        cells, counts = np.unique(combined, return_counts=True)
        totals = np.bincount(codes, weights=values, minlength=len(batch.keys))
        per_key: dict[int, dict[str, float]] = defaultdict(dict)
        for cell, count in zip(cells.tolist(), counts.tolist(), strict=True):
            per_key[cell // size][str(cell % size)] = float(count)
        for key, histogram in per_key.items():
            bucket_start, group = batch.keys[key]
            n = int(sum(histogram.values()))
            batch.out.append(
                BucketAggregate(bucket_start, group, spec.name, n, float(totals[key]), histogram)
            )

    def _add_categories(
        self, batch: _Batch, spec: SignalSpec, values: Sequence[str | None], codes: Iterable[int]
    ) -> None:
        per_key: dict[int, Counter[str]] = defaultdict(Counter)
        for code, value in zip(codes, values, strict=True):
            if value is not None:
                per_key[int(code)][value] += 1
        for key, counter in per_key.items():
            bucket_start, group = batch.keys[key]
            counts = {k: float(v) for k, v in counter.items()}
            batch.out.append(
                BucketAggregate(bucket_start, group, spec.name, sum(counter.values()), None, counts)
            )

    def _body_signals(
        self, batch: _Batch, connection: Connection, rows: Sequence[Any], codes: np.ndarray
    ) -> None:
        specs = [s for s in self.plan.specs if s.source == "bodies"]
        measured = [s for s in specs if s.kind != "embedding"]
        embedded = [s for s in specs if s.kind == "embedding"] if self.plan.embedder is not None else []
        if not (measured or embedded) or self.plan.body_sample == 0:
            return
        members: dict[int, list[int]] = defaultdict(list)
        for i, code in enumerate(codes.tolist()):
            members[code].append(i)
        chosen: dict[int, list[int]] = {}
        for key, indexes in members.items():
            if len(indexes) > self.plan.body_sample:
                # Seeded by the bucket, so a range always yields the same sample.
                bucket_start, _ = batch.keys[key]
                rng = np.random.default_rng([self.plan.seed, int(bucket_start.timestamp()), key])
                indexes = sorted(rng.choice(indexes, size=self.plan.body_sample, replace=False).tolist())
            chosen[key] = indexes
        wanted = [rows[i].id for indexes in chosen.values() for i in indexes]
        bodies: dict[str, tuple[str | None, str | None]] = {}
        for at in range(0, len(wanted), _ID_CHUNK):
            found = connection.execute(
                select(request_log.c.id, request_log.c.request_body, request_log.c.response_body).where(
                    request_log.c.id.in_(wanted[at : at + _ID_CHUNK])
                )
            )
            bodies.update({r.id: (r.request_body, r.response_body) for r in found})
        values: dict[str, tuple[list[int], list[Any]]] = {s.name: ([], []) for s in measured}
        for key, indexes in chosen.items():
            for position, i in enumerate(indexes):
                row = rows[i]
                request_body, response_body = bodies.get(row.id, (None, None))
                if request_body is None and response_body is None:
                    continue
                logged = LoggedRequest(row.id, row.created_at, row.status, request_body, response_body)
                for spec in measured:
                    value = spec.compute(logged)
                    if value is not None:
                        values[spec.name][0].append(key)
                        values[spec.name][1].append(value)
                if position < self.plan.embedding_sample:
                    for spec in embedded:
                        batch.text_checked[(key, spec.name)] += 1
                        text = spec.compute(logged)
                        if isinstance(text, str) and text.strip():
                            batch.texts.append((key, spec.name, row.id, text[:_MAX_TEXT]))
        for spec in measured:
            keys, found_values = values[spec.name]
            if not keys:
                continue
            key_array = np.asarray(keys, dtype=np.int64)
            if spec.kind == "numeric":
                self._add_numeric(batch, spec, np.asarray(found_values, dtype=np.float64), key_array)
            else:
                self._add_categories(batch, spec, [str(v) for v in found_values], keys)

    def _event_signals(self, batch: _Batch, connection: Connection, start: datetime, end: datetime) -> None:
        specs = [s for s in self.plan.specs if s.source == "events"]
        for spec in specs:
            events: list[Event] = [e for e in spec.compute(connection, start, end) if start <= e.at < end]
            if not events:
                continue
            index = {key: code for code, key in enumerate(batch.keys)}
            codes = []
            for event in events:
                key = (bucket_floor(event.at, self.plan.bucket), event.group)
                if key not in index:
                    index[key] = len(batch.keys)
                    batch.keys.append(key)
                    batch.key_sizes.append(0)
                codes.append(index[key])
            if spec.kind == "numeric":
                numbers = np.asarray([float(e.value) for e in events], dtype=np.float64)
                self._add_numeric(batch, spec, numbers, np.asarray(codes, dtype=np.int64))
            else:
                self._add_categories(batch, spec, [str(e.value) for e in events], codes)


class _LostRace(Exception):
    pass


@dataclass
class _Batch:
    keys: list[tuple[datetime, Group]] = field(default_factory=list)
    key_sizes: list[int] = field(default_factory=list)
    out: list[BucketAggregate] = field(default_factory=list)
    texts: list[tuple[int, str, str, str]] = field(default_factory=list)
    text_checked: Counter[tuple[int, str]] = field(default_factory=Counter)


def write_aggregates(connection: Connection, aggregates: Sequence[BucketAggregate]) -> None:
    """Insert aggregates (bulk: one executemany per table)."""
    buckets = [
        {
            "bucket_start": a.bucket_start,
            "route": a.group.route,
            "prompt": a.group.prompt,
            "model": a.group.model,
            "signal": a.signal,
            "count": a.count,
            "total": a.total,
            "counts": a.counts,
        }
        for a in aggregates
    ]
    samples = [
        {
            "bucket_start": a.bucket_start,
            "route": a.group.route,
            "prompt": a.group.prompt,
            "model": a.group.model,
            "signal": a.signal,
            "request_id": request_id,
            "vector": np.asarray(vector, dtype=np.float32).tobytes(),
        }
        for a in aggregates
        for request_id, vector in a.samples
    ]
    if buckets:
        connection.execute(insert(monitor_buckets), buckets)
    if samples:
        connection.execute(insert(monitor_samples), samples)
