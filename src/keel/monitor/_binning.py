"""Fixed histogram bins per numeric signal, and sparse histograms over them.

A bucket's numeric signal is stored as counts per bin index (``{"17": 40, ...}``): bins
are fixed per signal, so the histograms of any number of buckets add up into a window's
histogram without rereading a single request. Bin 0 holds values below the first edge,
the last bin values at or above the last edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from keel.monitor._types import FloatArray, NumericData


@dataclass(frozen=True)
class Binning:
    """Bin edges (increasing). ``len(edges) + 1`` bins, 0 and the last open-ended."""

    edges: FloatArray
    # The value that stands for the underflow bin (0 for log bins of non-negative data).
    low: float

    @staticmethod
    def log(lo: float, hi: float, per_decade: int = 32) -> Binning:
        """Geometric bins from 10**lo to 10**hi: relative resolution per bin about
        ``10 ** (1 / per_decade)`` (7 % at 32), whatever the scale of the data; anything
        below 10**lo (zero, typically) is its own bin, standing for 0."""
        count = round((hi - lo) * per_decade) + 1
        return Binning(np.logspace(lo, hi, count), 0.0)

    @staticmethod
    def linear(lo: float, hi: float, width: float) -> Binning:
        count = round((hi - lo) / width) + 1
        return Binning(np.linspace(lo, hi, count), lo)

    @staticmethod
    def symlog(per_decade: int = 24, lo: int = -4, hi: int = 12) -> Binning:
        """Signed geometric bins for numbers of unknown scale and sign (prediction
        features): ±10**lo .. ±10**hi, with one bin around zero."""
        positive = np.logspace(lo, hi, (hi - lo) * per_decade + 1)
        return Binning(np.concatenate([-positive[::-1], positive]), float(-(10.0**hi)))

    @property
    def size(self) -> int:
        return int(self.edges.size + 1)

    def index(self, values: FloatArray) -> np.ndarray:
        """The bin of each value (NaN must be removed first)."""
        return np.searchsorted(self.edges, values, side="right")

    def representatives(self) -> FloatArray:
        """The value each bin stands for: the geometric (log bins) or arithmetic middle,
        the first edge's neighbour for the open ends."""
        e = self.edges
        middle = np.sqrt(e[:-1] * e[1:]) if e[0] > 0 else (e[:-1] + e[1:]) / 2
        return np.concatenate([[self.low], middle, [e[-1]]])

    def histogram(self, values: FloatArray) -> dict[int, int]:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return {}
        counts = np.bincount(self.index(finite), minlength=self.size)
        nonzero = np.flatnonzero(counts)
        return {int(i): int(counts[i]) for i in nonzero}


def add_counts(into: dict[str, float], counts: Mapping[str, float], sign: float = 1.0) -> None:
    """``into += sign * counts``, dropping keys that reach zero (sliding windows subtract)."""
    for key, value in counts.items():
        total = into.get(key, 0.0) + sign * value
        if abs(total) < 1e-9:
            into.pop(key, None)
        else:
            into[key] = total


def numeric_from_histogram(binning: Binning, counts: Mapping[str, float]) -> NumericData:
    """A window's histogram as weighted values for the detectors."""
    if not counts:
        return NumericData(np.empty(0), np.empty(0), binned=True)
    index = np.fromiter((int(k) for k in counts), dtype=np.int64, count=len(counts))
    weight = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    order = np.argsort(index)
    reps = binning.representatives()
    return NumericData(reps[index[order]], weight[order], binned=True)


def mean_of(binning: Binning, counts: Mapping[str, float]) -> float | None:
    data = numeric_from_histogram(binning, counts)
    return data.mean()


def stringify(counts: Mapping[int, float] | Iterable[tuple[int, float]]) -> dict[str, float]:
    items = counts.items() if isinstance(counts, Mapping) else counts
    return {str(k): v for k, v in items if not math.isclose(v, 0.0)}
