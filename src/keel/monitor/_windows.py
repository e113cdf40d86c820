"""Reference and current windows over the bucket aggregates.

``WindowSpec`` says which two periods to compare: the current window is the
``window`` before the end time (sliding); the reference is either the ``reference``
before the current window ("the week before") or a fixed period.

``WindowState`` holds, per bucket, the aggregates of one group filter (a route, maybe
one prompt version or model) as dense arrays, and remembers up to when it has read
stored buckets: advancing it to a later end reads only the buckets stored since
(``rows_read`` counts them), drops those that fell out of the reference, and sums the
rest into the two windows. Buckets not stored yet (the open head of the window) are
passed in by the caller, computed from the request log and never cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select

from keel.monitor._aggregate import BucketAggregate
from keel.monitor._binning import numeric_from_histogram
from keel.monitor._signals import SignalSpec
from keel.monitor._tables import monitor_buckets, monitor_samples
from keel.monitor._types import CategoricalData, EmbeddingData, FloatArray, NumericData, SignalData


@dataclass(frozen=True)
class WindowSpec:
    window: timedelta
    reference: timedelta = timedelta(days=7)
    reference_start: datetime | None = None
    reference_end: datetime | None = None

    def ranges(self, end: datetime) -> tuple[datetime, datetime, datetime, datetime]:
        """(reference start, reference end, current start, current end)."""
        current_start = end - self.window
        if self.reference_start is not None and self.reference_end is not None:
            return self.reference_start, self.reference_end, current_start, end
        return current_start - self.reference, current_start, current_start, end


@dataclass(frozen=True)
class GroupFilter:
    """Which requests: one route ("" / None: all), and optionally one prompt version
    (``name@3``) or model."""

    route: str | None = None
    prompt: str | None = None
    model: str | None = None

    def matches(self, route: str, prompt: str, model: str) -> bool:
        return (
            (not self.route or route == self.route)
            and (self.prompt is None or prompt == self.prompt)
            and (self.model is None or model == self.model)
        )


@dataclass
class _Cell:
    """One signal's observations in one bucket (or a sum of buckets)."""

    count: float = 0.0
    total: float = 0.0
    dense: FloatArray | None = None
    categories: dict[str, float] = field(default_factory=dict)
    vectors: list[FloatArray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    # Embedding: how many texts each of this bucket's vectors stands for.
    weights: list[float] = field(default_factory=list)
    population: float = 0.0


@dataclass
class WindowData:
    """Both windows of one group filter, per signal."""

    reference: dict[str, _Cell]
    current: dict[str, _Cell]
    n_reference_requests: int
    n_current_requests: int


class WindowState:
    def __init__(self, engine: Engine, specs: Sequence[SignalSpec], windows: WindowSpec, where: GroupFilter):
        self.engine = engine
        self.specs = {s.name: s for s in specs}
        self.windows = windows
        self.where = where
        self.buckets: dict[datetime, dict[str, _Cell]] = {}
        # The periods whose stored buckets are in ``buckets``.
        self.loaded: list[tuple[datetime, datetime]] = []
        self.rows_read = 0

    def advance(
        self, end: datetime, stored_until: datetime, head: Iterable[BucketAggregate] = ()
    ) -> WindowData:
        """The windows ending at ``end``: stored buckets (read once each) up to
        ``stored_until``, plus ``head``, the aggregates of [stored_until, end)."""
        ref_start, ref_end, cur_start, cur_end = self.windows.ranges(end)
        stored_end = min(stored_until, end)
        needed = _merge([(ref_start, min(ref_end, stored_end)), (cur_start, min(cur_end, stored_end))])
        for start, stop in needed:
            for gap_start, gap_end in _missing((start, stop), self.loaded):
                self._read(gap_start, gap_end)
        # Keep only what the windows still need: a sliding reference drops its oldest.
        for start in [s for s in self.buckets if not any(a <= s < b for a, b in needed)]:
            del self.buckets[start]
        self.loaded = needed
        head_cells: dict[datetime, dict[str, _Cell]] = {}
        for aggregate in head:
            wanted = aggregate.signal in self.specs and self.where.matches(*_key(aggregate))
            if wanted and aggregate.bucket_start >= stored_end:
                _add(
                    head_cells.setdefault(aggregate.bucket_start, {}), aggregate.signal, self._cell(aggregate)
                )
        every = {**self.buckets, **head_cells}
        reference = _sum(cells for start, cells in every.items() if ref_start <= start < ref_end)
        current = _sum(cells for start, cells in every.items() if cur_start <= start < cur_end)
        return WindowData(reference, current, _requests(reference), _requests(current))

    def _read(self, start: datetime, end: datetime) -> None:
        if end <= start:
            return
        where = [monitor_buckets.c.bucket_start >= start, monitor_buckets.c.bucket_start < end]
        sample_where = [monitor_samples.c.bucket_start >= start, monitor_samples.c.bucket_start < end]
        if self.where.route:
            where.append(monitor_buckets.c.route == self.where.route)
            sample_where.append(monitor_samples.c.route == self.where.route)
        for column, value in (("prompt", self.where.prompt), ("model", self.where.model)):
            if value is not None:
                where.append(monitor_buckets.c[column] == value)
                sample_where.append(monitor_samples.c[column] == value)
        names = list(self.specs)
        where.append(monitor_buckets.c.signal.in_(names))
        sample_where.append(monitor_samples.c.signal.in_(names))
        embedded: dict[tuple[datetime, str], list[tuple[str, FloatArray]]] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    monitor_buckets.c.bucket_start,
                    monitor_buckets.c.signal,
                    monitor_buckets.c.count.label("n"),
                    monitor_buckets.c.total,
                    monitor_buckets.c.counts,
                ).where(*where)
            ).all()
            if any(self.specs[n].kind == "embedding" for n in names):
                for sample in connection.execute(
                    select(
                        monitor_samples.c.bucket_start,
                        monitor_samples.c.signal,
                        monitor_samples.c.request_id,
                        monitor_samples.c.vector,
                    ).where(*sample_where)
                ):
                    vector = np.frombuffer(sample.vector, dtype=np.float32).astype(np.float64)
                    embedded.setdefault((sample.bucket_start, sample.signal), []).append(
                        (sample.request_id, vector)
                    )
                    self.rows_read += 1
        self.rows_read += len(rows)
        for row in rows:
            spec = self.specs[row.signal]
            cell = _Cell(count=float(row.n), total=float(row.total or 0.0))
            if spec.kind == "numeric" and spec.binning is not None:
                cell.dense = _dense(spec.binning.size, row.counts)
            elif spec.kind == "categorical":
                cell.categories = dict(row.counts)
            else:
                samples = embedded.get((row.bucket_start, row.signal), [])
                _embed_cell(cell, samples, float(row.counts.get("population", len(samples))))
            _add(self.buckets.setdefault(row.bucket_start, {}), row.signal, cell)

    def _cell(self, aggregate: BucketAggregate) -> _Cell:
        spec = self.specs[aggregate.signal]
        cell = _Cell(count=float(aggregate.count), total=float(aggregate.total or 0.0))
        if spec.kind == "numeric" and spec.binning is not None:
            cell.dense = _dense(spec.binning.size, aggregate.counts)
        elif spec.kind == "categorical":
            cell.categories = dict(aggregate.counts)
        else:
            _embed_cell(
                cell, aggregate.samples, float(aggregate.counts.get("population", len(aggregate.samples)))
            )
        return cell


def _merge(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _missing(
    wanted: tuple[datetime, datetime], loaded: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of ``wanted`` that no loaded period covers."""
    gaps = [wanted]
    for start, end in loaded:
        next_gaps = []
        for a, b in gaps:
            if end <= a or start >= b:
                next_gaps.append((a, b))
                continue
            if a < start:
                next_gaps.append((a, start))
            if end < b:
                next_gaps.append((end, b))
        gaps = next_gaps
    return gaps


def _key(aggregate: BucketAggregate) -> tuple[str, str, str]:
    return aggregate.group.route, aggregate.group.prompt, aggregate.group.model


def _dense(size: int, counts: Mapping[str, float]) -> FloatArray:
    out = np.zeros(size)
    for index, count in counts.items():
        out[int(index)] += count
    return out


def _embed_cell(cell: _Cell, samples: Sequence[tuple[str, FloatArray]], population: float) -> None:
    if not samples:
        return
    weight = max(population, len(samples)) / len(samples)
    cell.vectors = [v for _, v in samples]
    cell.ids = [i for i, _ in samples]
    cell.weights = [weight] * len(samples)
    cell.population = max(population, len(samples))


def _add(into: dict[str, _Cell], signal: str, cell: _Cell) -> None:
    found = into.get(signal)
    if found is None:
        into[signal] = _Cell(
            cell.count,
            cell.total,
            None if cell.dense is None else cell.dense.copy(),
            dict(cell.categories),
            list(cell.vectors),
            list(cell.ids),
            list(cell.weights),
            cell.population,
        )
        return
    found.count += cell.count
    found.total += cell.total
    if cell.dense is not None:
        found.dense = cell.dense.copy() if found.dense is None else found.dense + cell.dense
    for key, value in cell.categories.items():
        found.categories[key] = found.categories.get(key, 0.0) + value
    found.vectors += cell.vectors
    found.ids += cell.ids
    found.weights += cell.weights
    found.population += cell.population


def _sum(buckets: Iterable[dict[str, _Cell]]) -> dict[str, _Cell]:
    out: dict[str, _Cell] = {}
    for cells in buckets:
        for signal, cell in cells.items():
            _add(out, signal, cell)
    return out


def _requests(cells: Mapping[str, _Cell]) -> int:
    # Every request has an error_rate observation; without that signal, the largest count.
    if "error_rate" in cells:
        return int(cells["error_rate"].count)
    return int(max((c.count for c in cells.values()), default=0))


def signal_data(spec: SignalSpec, cell: _Cell | None, *, max_embeddings: int, seed: int = 0) -> SignalData:
    """A window's cell as the detectors' input."""
    if spec.kind == "numeric":
        assert spec.binning is not None
        if cell is None or cell.dense is None:
            return NumericData(np.empty(0), np.empty(0), binned=True)
        nonzero = np.flatnonzero(cell.dense)
        return numeric_from_histogram(spec.binning, {str(i): float(cell.dense[i]) for i in nonzero})
    if spec.kind == "categorical":
        return CategoricalData(dict(cell.categories) if cell is not None else {})
    if cell is None or not cell.vectors:
        return EmbeddingData(np.empty((0, 0)))
    weights = np.asarray(cell.weights)
    index = np.arange(len(cell.vectors))
    if index.size > max_embeddings:
        # Buckets kept up to N vectors each, whatever their traffic: weight each vector by
        # the texts it stands for, so a busy hour counts as much as it should.
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(index.size, size=max_embeddings, replace=False, p=weights / weights.sum()))
    dims = {cell.vectors[i].shape[0] for i in index}
    if len(dims) > 1:
        # Vectors of another embedder (its setting changed): keep the most recent kind.
        latest = cell.vectors[int(index[-1])].shape[0]
        index = np.asarray([i for i in index if cell.vectors[i].shape[0] == latest])
    vectors = np.vstack([cell.vectors[i] for i in index])
    return EmbeddingData(vectors, [cell.ids[i] for i in index], round(cell.population))
