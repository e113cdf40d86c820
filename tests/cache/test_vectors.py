from __future__ import annotations

import numpy as np
import pytest

from keel.cache._vectors import LoadedPartitions, VectorIndex, unit_vector


def v(*values: float) -> np.ndarray:
    vector = unit_vector(values)
    assert vector is not None
    return vector


def test_unit_vector() -> None:
    assert np.allclose(v(3, 4), [0.6, 0.8])
    assert unit_vector([0.0, 0.0]) is None
    assert unit_vector([float("nan"), 1.0]) is None


def test_best_above_threshold_only() -> None:
    index = VectorIndex(2)
    index.add("east", v(1, 0))
    index.add("north", v(0, 1))
    key, similarity = index.best(v(1, 0.1), 0.9) or ("", 0.0)
    assert key == "east" and similarity == pytest.approx(1 / np.sqrt(1.01))
    assert index.best(v(1, 1), 0.9) is None  # 0.707 to both
    assert index.best(v(1, 0), 1.0) == ("east", 1.0)  # identical passes the top threshold
    assert index.best(v(1, 0, 0), 0.5) is None  # another embedding model's vector


def test_removal_growth_and_compaction_keep_answers_right() -> None:
    index = VectorIndex(3)
    rng = np.random.default_rng(0)
    vectors = {f"k{i}": v(*rng.normal(size=3)) for i in range(200)}
    for key, vector in vectors.items():
        index.add(key, vector)
    for i in range(150):
        index.remove(f"k{i}")
    assert len(index) == 50 and "k0" not in index and "k199" in index
    for key in ("k150", "k177", "k199"):
        assert index.best(vectors[key], 0.9999) == (key, pytest.approx(1.0))
    found = index.best(vectors["k3"], 0.9999)
    assert found is None or found[0] != "k3"
    index.add("k150", -vectors["k150"])  # re-adding a key replaces its vector
    assert index.best(vectors["k150"], 0.9999) is None


async def test_loaded_partitions_reload_after_refresh() -> None:
    now = [0.0]
    rows: list[tuple[str, bytes]] = [("a", v(1, 0).tobytes())]
    loads: list[str] = []

    async def load(partition: str) -> list[tuple[str, bytes]]:
        loads.append(partition)
        return list(rows) if partition == "p" else []

    partitions = LoadedPartitions(load, refresh=5.0, clock=lambda: now[0])
    index = await partitions.get("p")
    assert index is not None and "a" in index
    rows.append(("b", v(0, 1).tobytes()))  # another process adds b
    partitions.add("p", "c", v(1, 1))  # this process adds c: seen at once
    index = await partitions.get("p")
    assert index is not None and "c" in index and "b" not in index and loads == ["p"]
    now[0] = 6.0
    index = await partitions.get("p")
    assert index is not None and "b" in index and loads == ["p", "p"]
    assert await partitions.get("empty") is None
