"""``@detector``: drift tests, the registry they live in, and the default choice.

Numbers: Kolmogorov–Smirnov (``ks``, a p-value), Wasserstein distance divided by the
reference's standard deviation (``wasserstein``), population stability index (``psi``).
Categories: chi-square test of homogeneity (``chi_square``), Jensen–Shannon distance
(``jensen_shannon``, base 2, 0..1), ``psi``. Embeddings (``_detectors_embedding``):
``mmd`` and ``domain_classifier``.

The default follows Evidently's rule: with up to 1,000 observations on the smaller side
a significance test (KS, chi-square), above that a distance with a fixed threshold,
because with a million requests every test is "significant" and the question is how far
the distribution moved, not whether it moved at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
from scipy import stats
from scipy.spatial import distance

from keel.core import InvalidRequest, Registry, SettingError
from keel.monitor._types import (
    CategoricalData,
    DataKind,
    DetectorResult,
    FloatArray,
    NumericData,
    SignalData,
    kind_of,
)


class Detector(Protocol):
    name: str
    kinds: tuple[DataKind, ...]

    def test(self, reference: Any, current: Any) -> DetectorResult: ...


DetectorFactory = Callable[..., Detector]

_registry: Registry[DetectorFactory] = Registry("detector")
_BUILTIN_MODULES = ("keel.monitor._detectors", "keel.monitor._detectors_embedding")

# Above this many observations on the smaller side, distances replace significance tests.
LARGE_SAMPLE = 1000


def detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Register a detector factory under ``name`` (``@detector("ks")``); its keyword
    arguments are its settings (``alpha``, ``threshold`` ...)."""
    return _registry.register(name)


def detectors() -> list[str]:
    _load_builtins()
    return _registry.names()


def build_detector(name: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Detector:
    """The detector ``name`` with ``settings``; an unknown name or setting is a
    ``ConfigError`` at ``location`` (``monitor.signals.latency_ms``)."""
    _load_builtins()
    built: Detector = _registry.build(name, dict(settings or {}), location=location or f"detector {name}")
    return built


def default_detector(kind: DataKind, n_reference: int, n_current: int) -> str:
    """The detector used when a signal names none."""
    large = min(n_reference, n_current) > LARGE_SAMPLE
    if kind == "numeric":
        return "wasserstein" if large else "ks"
    if kind == "categorical":
        return "jensen_shannon" if large else "chi_square"
    return "domain_classifier" if min(n_reference, n_current) > 500 else "mmd"


def run_detector(found: Detector, reference: SignalData, current: SignalData) -> DetectorResult:
    kind = kind_of(reference)
    if kind_of(current) != kind:
        raise InvalidRequest("reference and current data are of different kinds")
    if kind not in found.kinds:
        raise InvalidRequest(f"detector {found.name!r} does not test {kind} signals")
    return found.test(reference, current)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


# --- numbers ---------------------------------------------------------------------


def _sorted(data: NumericData) -> tuple[FloatArray, FloatArray]:
    order = np.argsort(data.values, kind="stable")
    weights = data.weights if data.weights is not None else np.ones(data.values.size)
    return data.values[order], weights[order]


def cdfs(reference: NumericData, current: NumericData) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Both empirical CDFs at every distinct value of either sample (weights counted)."""
    rv, rw = _sorted(reference)
    cv, cw = _sorted(current)
    points = np.unique(np.concatenate([rv, cv]))
    r_cum = np.concatenate([[0.0], np.cumsum(rw)])
    c_cum = np.concatenate([[0.0], np.cumsum(cw)])
    f_ref = r_cum[np.searchsorted(rv, points, side="right")] / r_cum[-1]
    f_cur = c_cum[np.searchsorted(cv, points, side="right")] / c_cum[-1]
    return points, f_ref, f_cur


def _weighted_std(data: NumericData) -> float:
    mean = np.average(data.values, weights=data.weights)
    return float(np.sqrt(np.average((data.values - mean) ** 2, weights=data.weights)))


class KolmogorovSmirnov:
    name = "ks"
    kinds: tuple[DataKind, ...] = ("numeric",)

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def test(self, reference: NumericData, current: NumericData) -> DetectorResult:
        if reference.weights is None and current.weights is None and not (reference.binned or current.binned):
            found = stats.ks_2samp(reference.values, current.values)
            statistic, p_value = float(found.statistic), float(found.pvalue)
        else:
            # Histograms: the largest CDF gap at the bin edges, and Smirnov's asymptotic
            # distribution (scipy's ``method="asymp"``), since counts are large here.
            _, f_ref, f_cur = cdfs(reference, current)
            statistic = float(np.max(np.abs(f_ref - f_cur)))
            n, m = sorted((float(reference.n), float(current.n)), reverse=True)
            p_value = float(stats.kstwo.sf(statistic, np.round(n * m / (n + m))))
        return DetectorResult(
            self.name, statistic, p_value, self.alpha, p_value < self.alpha, {"compare": "p_value"}
        )


class Wasserstein:
    name = "wasserstein"
    kinds: tuple[DataKind, ...] = ("numeric",)

    def __init__(self, threshold: float, normalize: bool) -> None:
        self.threshold = threshold
        self.normalize = normalize

    def test(self, reference: NumericData, current: NumericData) -> DetectorResult:
        points, f_ref, f_cur = cdfs(reference, current)
        raw = float(np.sum(np.abs(f_ref - f_cur)[:-1] * np.diff(points)))
        score = raw
        if self.normalize:
            # In units of the reference's spread, so one threshold fits milliseconds and
            # tokens alike; a constant reference makes any move infinitely large.
            spread = _weighted_std(reference)
            score = raw / spread if spread > 0 else (0.0 if raw == 0 else float("inf"))
        return DetectorResult(
            self.name,
            score,
            None,
            self.threshold,
            score > self.threshold,
            {"distance": raw, "compare": "score"},
        )


def _psi(expected: FloatArray, actual: FloatArray, epsilon: float) -> float:
    p = np.maximum(expected / expected.sum(), epsilon)
    q = np.maximum(actual / actual.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


class PopulationStability:
    name = "psi"
    kinds: tuple[DataKind, ...] = ("numeric", "categorical")

    def __init__(self, threshold: float, bins: int, epsilon: float) -> None:
        self.threshold = threshold
        self.bins = bins
        self.epsilon = epsilon

    def test(self, reference: SignalData, current: SignalData) -> DetectorResult:
        if isinstance(reference, CategoricalData) and isinstance(current, CategoricalData):
            keys = sorted(set(reference.counts) | set(current.counts))
            expected = np.array([reference.counts.get(k, 0.0) for k in keys], dtype=np.float64)
            actual = np.array([current.counts.get(k, 0.0) for k in keys], dtype=np.float64)
        else:
            assert isinstance(reference, NumericData) and isinstance(current, NumericData)
            expected, actual = self._numeric_bins(reference, current)
        score = _psi(expected, actual, self.epsilon)
        return DetectorResult(
            self.name, score, None, self.threshold, score > self.threshold, {"compare": "score"}
        )

    def _numeric_bins(self, reference: NumericData, current: NumericData) -> tuple[FloatArray, FloatArray]:
        # Bins of equal reference mass (quantiles), as PSI is usually defined.
        rv, rw = _sorted(reference)
        cum = np.cumsum(rw) / rw.sum()
        quantiles = np.arange(1, self.bins) / self.bins
        cuts = np.unique(rv[np.minimum(np.searchsorted(cum, quantiles, side="left"), rv.size - 1)])
        cv, cw = _sorted(current)
        expected = np.bincount(np.searchsorted(cuts, rv, side="right"), rw, minlength=cuts.size + 1)
        actual = np.bincount(np.searchsorted(cuts, cv, side="right"), cw, minlength=cuts.size + 1)
        return expected.astype(np.float64), actual.astype(np.float64)


# --- categories ------------------------------------------------------------------


def _table(reference: CategoricalData, current: CategoricalData) -> tuple[list[str], FloatArray]:
    keys = sorted(k for k in set(reference.counts) | set(current.counts))
    table = np.array(
        [[reference.counts.get(k, 0.0) for k in keys], [current.counts.get(k, 0.0) for k in keys]],
        dtype=np.float64,
    )
    keep = table.sum(axis=0) > 0
    return [k for k, kept in zip(keys, keep, strict=True) if kept], table[:, keep]


class ChiSquare:
    name = "chi_square"
    kinds: tuple[DataKind, ...] = ("categorical",)

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def test(self, reference: CategoricalData, current: CategoricalData) -> DetectorResult:
        keys, table = _table(reference, current)
        if table.shape[1] < 2:
            # One category on both sides: nothing can have moved.
            return DetectorResult(self.name, 0.0, 1.0, self.alpha, False, {"compare": "p_value"})
        found = stats.chi2_contingency(table, correction=False)
        p_value = float(found.pvalue)
        return DetectorResult(
            self.name,
            float(found.statistic),
            p_value,
            self.alpha,
            p_value < self.alpha,
            {"dof": int(found.dof), "compare": "p_value", "moved": _moved(keys, table)},
        )


class JensenShannon:
    name = "jensen_shannon"
    kinds: tuple[DataKind, ...] = ("categorical",)

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def test(self, reference: CategoricalData, current: CategoricalData) -> DetectorResult:
        keys, table = _table(reference, current)
        score = float(distance.jensenshannon(table[0], table[1], base=2)) if table.shape[1] > 1 else 0.0
        return DetectorResult(
            self.name,
            score,
            None,
            self.threshold,
            score > self.threshold,
            {"compare": "score", "moved": _moved(keys, table)},
        )


def _moved(keys: list[str], table: FloatArray) -> list[dict[str, Any]]:
    """The categories whose share changed most (what a person looks at first)."""
    share = table / table.sum(axis=1, keepdims=True)
    change = share[1] - share[0]
    order = np.argsort(-np.abs(change))[:5]
    return [
        {"category": keys[i], "reference": float(share[0, i]), "current": float(share[1, i])} for i in order
    ]


@detector("ks")
def ks(alpha: float = 0.05) -> KolmogorovSmirnov:
    """Two-sample Kolmogorov–Smirnov test; drift when p < alpha."""
    check_unit("alpha", alpha)
    return KolmogorovSmirnov(alpha)


@detector("wasserstein")
def wasserstein(threshold: float = 0.1, normalize: bool = True) -> Wasserstein:
    """Earth mover's distance, in reference standard deviations; drift above threshold."""
    return Wasserstein(threshold, normalize)


@detector("psi")
def psi(threshold: float = 0.2, bins: int = 10, epsilon: float = 1e-4) -> PopulationStability:
    """Population stability index over reference-quantile bins (numbers) or categories."""
    if bins < 2:
        raise ValueError("psi needs at least 2 bins")
    return PopulationStability(threshold, bins, epsilon)


@detector("chi_square")
def chi_square(alpha: float = 0.05) -> ChiSquare:
    """Chi-square test of homogeneity of the two category counts; drift when p < alpha."""
    check_unit("alpha", alpha)
    return ChiSquare(alpha)


@detector("jensen_shannon")
def jensen_shannon(threshold: float = 0.1) -> JensenShannon:
    """Jensen–Shannon distance (base 2, 0..1); drift above threshold."""
    return JensenShannon(threshold)


def check_unit(setting: str, value: float) -> None:
    if not 0 < value < 1:
        raise SettingError(setting, f"{setting} must be between 0 and 1")
