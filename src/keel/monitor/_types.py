"""The values drift tests compare, and what a test says.

A window's data for one signal is one of three shapes: numbers (raw values, or the
representative value of each histogram bin with its count as weight), category counts,
or a sample of embedding vectors. Detectors take two of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

DataKind = Literal["numeric", "categorical", "embedding"]
DATA_KINDS: tuple[DataKind, ...] = ("numeric", "categorical", "embedding")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class NumericData:
    """Numbers: ``values`` with optional ``weights`` (a histogram's bin representatives
    and counts). Raw samples have no weights; ``binned`` says the values stand for bins,
    so tests use their large-sample forms."""

    values: FloatArray
    weights: FloatArray | None = None
    binned: bool = False

    @staticmethod
    def of(values: Sequence[float] | npt.ArrayLike) -> NumericData:
        array = np.asarray(values, dtype=np.float64)
        return NumericData(array[np.isfinite(array)])

    @property
    def n(self) -> int:
        return round(float(self.weights.sum())) if self.weights is not None else int(self.values.size)

    def mean(self) -> float | None:
        if self.n == 0:
            return None
        return float(np.average(self.values, weights=self.weights))


@dataclass(frozen=True, slots=True)
class CategoricalData:
    """How often each category was seen."""

    counts: Mapping[str, float]

    @staticmethod
    def of(values: Sequence[str]) -> CategoricalData:
        counts: dict[str, float] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        return CategoricalData(counts)

    @property
    def n(self) -> int:
        return round(sum(self.counts.values()))


@dataclass(frozen=True, slots=True)
class EmbeddingData:
    """A sample of vectors (one row each) and, when known, the request each came from;
    ``population`` is how many texts the sample stands for (at least its size)."""

    vectors: FloatArray
    ids: Sequence[str] = ()
    population: int = 0

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0]) if self.vectors.ndim == 2 else 0


SignalData = NumericData | CategoricalData | EmbeddingData


def kind_of(data: SignalData) -> DataKind:
    if isinstance(data, NumericData):
        return "numeric"
    if isinstance(data, CategoricalData):
        return "categorical"
    return "embedding"


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """One drift test: ``score`` in the detector's own unit (a distance, a statistic, an
    AUC), its ``p_value`` when the test has one, the ``threshold`` it was held to and the
    verdict. ``details`` holds what a person may want to see (the raw statistic, the
    current examples most unlike the reference)."""

    detector: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    details: Mapping[str, Any] = field(default_factory=dict)
