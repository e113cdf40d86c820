"""The semantic index: unit vectors of one partition in a numpy matrix, searched with one
matrix-vector product (cosine similarity of unit vectors is their dot product)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
E = TypeVar("E")

# float32 rounding: an identical text may score 0.99999994 against a threshold of 1.0.
_TOLERANCE = 1e-6


def unit_vector(values: Sequence[float] | Vector) -> Vector | None:
    """``values`` scaled to length 1 as float32; None for a zero or non-finite vector."""
    vector = np.asarray(values, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return vector / np.float32(norm)


def vector_from_bytes(data: bytes) -> Vector:
    return np.frombuffer(data, dtype=np.float32)


class VectorIndex:
    """Keys and their unit vectors. Removing a key zeroes its row (a zero row scores 0,
    below every threshold, which is > 0); the matrix is compacted when half is holes."""

    __slots__ = ("_keys", "_matrix", "_rows", "dim")

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix: Vector = np.zeros((16, dim), dtype=np.float32)
        self._keys: list[str | None] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, key: str, vector: Vector) -> None:
        row = self._rows.get(key)
        if row is None:
            if len(self._keys) == self._matrix.shape[0]:
                self._compact()
            row = len(self._keys)
            self._keys.append(key)
            self._rows[key] = row
        self._matrix[row] = vector

    def remove(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is None:
            return
        self._keys[row] = None
        self._matrix[row] = 0.0
        if len(self._keys) > 32 and len(self._rows) * 2 < len(self._keys):
            self._compact()

    def best(self, vector: Vector, threshold: float) -> tuple[str, float] | None:
        """The most similar key, if its similarity is at least ``threshold``."""
        if not self._rows or vector.shape != (self.dim,):
            return None
        similarities = self._matrix[: len(self._keys)] @ vector
        row = int(np.argmax(similarities))
        similarity = float(similarities[row])
        key = self._keys[row]
        if key is None or similarity < threshold - _TOLERANCE:
            return None
        return key, min(similarity, 1.0)

    def _compact(self) -> None:
        live = [row for row, key in enumerate(self._keys) if key is not None]
        # Room to double after growing; half empty after compacting.
        matrix = np.zeros((max(16, len(live) * 2), self.dim), dtype=np.float32)
        matrix[: len(live)] = self._matrix[live]
        self._keys = [self._keys[row] for row in live]
        self._rows = {key: row for row, key in enumerate(self._keys) if key is not None}
        self._matrix = matrix


PartitionLoader = Callable[[str], Awaitable[list[tuple[str, bytes]]]]


class LoadedPartitions:
    """Indexes of partitions kept in a shared backend (database, Redis), loaded into
    memory on first use and reloaded after ``refresh`` seconds, so that a lookup does not
    move every vector of a partition over the network. Entries this process adds show at
    once; other processes' after the next reload. At most ``max_partitions`` are held
    (least recently used dropped)."""

    def __init__(
        self,
        load: PartitionLoader,
        *,
        refresh: float,
        max_partitions: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.refresh = refresh
        self._max_partitions = max_partitions
        self._clock = clock
        self._held: OrderedDict[str, tuple[float, VectorIndex | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[VectorIndex | None]] = {}

    async def get(self, partition: str) -> VectorIndex | None:
        held = self._held.get(partition)
        if held is not None and self._clock() - held[0] < self.refresh:
            self._held.move_to_end(partition)
            return held[1]
        task = self._loading.get(partition)
        if task is None:
            task = asyncio.ensure_future(self._reload(partition))
            self._loading[partition] = task
            task.add_done_callback(lambda _: self._loading.pop(partition, None))
        return await asyncio.shield(task)

    async def _reload(self, partition: str) -> VectorIndex | None:
        loaded_at = self._clock()
        rows = await self._load(partition)
        index: VectorIndex | None = None
        for key, data in rows:
            vector = vector_from_bytes(data)
            if index is None:
                index = VectorIndex(vector.shape[0])
            if vector.shape == (index.dim,):  # rows of an earlier embedding model are ignored
                index.add(key, vector)
        self._held[partition] = (loaded_at, index)
        self._held.move_to_end(partition)
        while len(self._held) > self._max_partitions:
            self._held.popitem(last=False)
        return index

    async def nearest(
        self,
        partition: str,
        vector: Vector,
        threshold: float,
        get: Callable[[str], Awaitable[E | None]],
    ) -> tuple[E, float] | None:
        """The most similar live entry at or above ``threshold``: ``get`` fetches an
        entry by key; one that has expired or been evicted since the partition was read
        is dropped from the index and the next best is tried."""
        index = await self.get(partition)
        while index is not None and len(index):
            found = index.best(vector, threshold)
            if found is None:
                return None
            key, similarity = found
            entry = await get(key)
            if entry is not None:
                return entry, similarity
            index.remove(key)
        return None

    def add(self, partition: str, key: str, vector: Vector) -> None:
        held = self._held.get(partition)
        if held is None:
            return  # loaded with this entry when first needed
        loaded_at, index = held
        if index is None or index.dim != vector.shape[0]:
            index = VectorIndex(vector.shape[0])
            self._held[partition] = (loaded_at, index)
        index.add(key, vector)

    def remove(self, partition: str, key: str) -> None:
        held = self._held.get(partition)
        if held is not None and held[1] is not None:
            held[1].remove(key)
