"""The statistics of a run: a metric's mean with its interval, a paired comparison of two
variants, and the split of a metric's variance into case, generation and judge noise.

Inputs are arrays of score values shaped ``[cases]`` or ``[cases, repeats]`` (NaN marks a
cell that was not scored). Repeats of one case are not independent evidence, so every
method first averages a case's repeats and then treats the case means as the sample:
intervals are clustered by case, and a bootstrap resamples whole cases.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from keel.core import InvalidRequest
from keel.evals._power import (
    detectable_drop,
    mcnemar_detectable_drop,
    mcnemar_p_value,
    power_note,
)
from keel.evals._types import Comparison, Estimate, NoiseSplit

__all__ = ["compare_paired", "mean_ci", "noise_split", "power_note"]

Floats = NDArray[np.float64]
CompareMethod = Literal["auto", "permutation", "paired_bootstrap", "paired_t", "mcnemar"]

# Largest case count whose 2ⁿ sign flips are enumerated exactly (65,536 rows).
EXACT_PERMUTATION_MAX = 16
# Resampled rows are built in chunks of about this many values to bound memory.
_CHUNK_VALUES = 2_000_000


def _as_2d(values: ArrayLike, name: str = "values") -> Floats:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        return array[:, None]
    if array.ndim != 2:
        raise InvalidRequest(f"{name} must be shaped [cases] or [cases, repeats], got {array.shape}")
    return array


def _case_means(array: Floats) -> tuple[Floats, int]:
    """Each scored case's mean over its repeats (unscored cases dropped) and the largest
    number of repeats any case has."""
    counts = (~np.isnan(array)).sum(axis=1)
    scored = array[counts > 0]
    if scored.size == 0:
        return np.empty(0), 0
    return np.nanmean(scored, axis=1), int(counts.max())


def _t_halfwidth(x: Floats, level: float) -> float:
    n = len(x)
    sd = float(np.std(x, ddof=1))
    if sd == 0:
        return 0.0
    return float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)


def _bootstrap_means(x: Floats, rng: np.random.Generator, resamples: int) -> Floats:
    n = len(x)
    out = np.empty(resamples)
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        out[start : start + rows] = x[rng.integers(0, n, size=(rows, n))].mean(axis=1)
    return out


def _bca_bounds(x: Floats, boot: Floats, level: float) -> tuple[float, float]:
    """Efron's bias-corrected and accelerated percentile bounds for the mean (as in
    ``scipy.stats.bootstrap``: bias from the share of resamples below the estimate,
    acceleration from the jackknife)."""
    n = len(x)
    theta = float(x.mean())
    share = (np.count_nonzero(boot < theta) + np.count_nonzero(boot <= theta)) / (2 * len(boot))
    z0 = float(special.ndtri(share))
    jack = (x.sum() - x) / (n - 1)
    u = (n - 1) * (jack.mean() - jack)
    denominator = float((u**2).sum()) ** 1.5
    accel = float((u**3).sum()) / (6 * denominator) if denominator > 0 else 0.0
    z_low = float(special.ndtri((1 - level) / 2))
    quantiles = []
    for z in (z_low, -z_low):
        quantiles.append(float(special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))))
    low, high = np.quantile(boot, quantiles)
    return float(low), float(high)


def mean_ci(
    values: ArrayLike,
    *,
    level: float = 0.95,
    method: Literal["t", "bootstrap"] = "t",
    seed: int = 0,
    resamples: int = 10_000,
    bootstrap: Literal["bca", "percentile"] = "bca",
) -> Estimate:
    """A metric's mean over cases with a ``level`` confidence interval.

    ``values`` is ``[cases]`` or ``[cases, repeats]``; NaN cells are ignored and a case
    with none scored is left out. The mean is the mean of case means (each case weighs
    the same however many repeats it has). ``t``: a t interval over the case means;
    ``bootstrap``: cases are resampled with their repeats (a cluster bootstrap), BCa or
    percentile bounds. With one scored case (or no spread) the interval is the mean
    itself and ``method`` says so; with none the mean is NaN.
    """
    array = _as_2d(values)
    means, repeats = _case_means(array)
    n = len(means)
    clustered = " (clustered by case)" if repeats > 1 else ""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0, level, "no scored cases")
    mean = float(means.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1, repeats, level, "one case: no interval")
    if method == "t":
        half = _t_halfwidth(means, level)
        return Estimate(mean, mean - half, mean + half, n, repeats, level, f"t{clustered}")
    if method != "bootstrap":
        raise InvalidRequest(f"unknown interval method {method!r} (use 't' or 'bootstrap')")
    name = f"bootstrap {'BCa' if bootstrap == 'bca' else 'percentile'}{clustered}"
    if np.ptp(means) == 0:
        return Estimate(mean, mean, mean, n, repeats, level, name)
    boot = _bootstrap_means(means, np.random.default_rng(seed), resamples)
    if bootstrap == "bca":
        low, high = _bca_bounds(means, boot, level)
    else:
        low, high = (float(q) for q in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
    return Estimate(mean, low, high, n, repeats, level, name)


# -- paired comparison ----------------------------------------------------------------


def _sign_flip_p(d: Floats, rng: np.random.Generator, resamples: int) -> float:
    """Two-sided sign-flip permutation p-value of the mean difference: exact over all 2ⁿ
    flips for small ``n``, else Monte Carlo with the +1 correction that keeps it valid.
    Sums are compared with a relative tolerance so that ties in the data count as ties."""
    n = len(d)
    observed = abs(float(d.sum()))
    tolerance = 1e-9 * float(np.abs(d).sum())
    if observed <= tolerance:
        return 1.0
    if n <= EXACT_PERMUTATION_MAX:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        sums = (1 - 2 * bits) @ d
        return float(np.mean(np.abs(sums) >= observed - tolerance))
    hits = 0
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        signs = rng.integers(0, 2, size=(rows, n)) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tolerance))
    return (hits + 1) / (resamples + 1)


def _t_p(d: Floats) -> float:
    n = len(d)
    mean = float(d.mean())
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    if not sd > 0:
        # No spread: identical differences are either all zero (no evidence of change)
        # or a perfectly consistent shift.
        return 1.0 if mean == 0 or n < 2 else 0.0
    t = mean / (sd / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def _bootstrap_p(d: Floats, boot: Floats) -> float:
    """Bootstrap test of a zero mean difference: how often the resampled mean strays from
    the observed mean by at least the observed distance from zero (the null-centred
    bootstrap), with the +1 correction."""
    observed = abs(float(d.mean()))
    if observed == 0:
        return 1.0
    extreme = np.count_nonzero(np.abs(boot - d.mean()) >= observed * (1 - 1e-12))
    return (int(extreme) + 1) / (len(boot) + 1)


def _agresti_min(regressions: int, improvements: int, n: int, level: float) -> tuple[float, float]:
    """Interval for a difference of paired proportions: Wald after adding ½ to every cell
    of the 2x2 table (Agresti & Min 2005), which keeps a sensible width when few or no
    cases are discordant."""
    b, c, m = regressions + 0.5, improvements + 0.5, n + 2.0
    diff = (c - b) / m
    var = ((b + c) - (c - b) ** 2 / m) / m**2
    half = float(stats.norm.ppf((1 + level) / 2)) * math.sqrt(max(var, 0.0))
    return max(-1.0, diff - half), min(1.0, diff + half)


def compare_paired(
    baseline: ArrayLike,
    candidate: ArrayLike,
    *,
    metric: str,
    binary: bool,
    alpha: float = 0.05,
    level: float = 0.95,
    method: CompareMethod = "auto",
    seed: int = 0,
    resamples: int = 10_000,
) -> Comparison:
    """Candidate minus baseline on one metric, paired by case.

    Both arrays are ``[cases]`` or ``[cases, repeats]`` with rows aligned by case; a case
    unscored on either side is left out. The effect is the mean of per-case differences
    of case means. ``auto`` chooses McNemar's exact test for a pass/fail metric with one
    0/1 value per case on each side, and otherwise a sign-flip permutation test (exact
    over all flips for up to 16 cases, else ``resamples`` Monte Carlo flips).

    Intervals: McNemar gives the Agresti-Min interval for paired proportions; the
    permutation test and ``paired_t`` give a t interval on the per-case differences
    (deterministic, and by the central limit theorem well calibrated for the case counts
    a gate is worth running on); ``paired_bootstrap`` resamples cases for a percentile
    interval and a null-centred bootstrap p-value. Differences that are all zero give
    p = 1. ``mde`` is the smallest drop detectable with 80% power (see ``_power``).
    For a pass/fail metric ``regressions`` / ``improvements`` count the cases whose pass
    rate fell / rose (with one score per case: McNemar's discordant pairs).
    """
    base, cand = _as_2d(baseline, "baseline"), _as_2d(candidate, "candidate")
    if base.shape[0] != cand.shape[0]:
        raise InvalidRequest(
            f"baseline and candidate of {metric!r} must have one row per case each "
            f"(got {base.shape[0]} and {cand.shape[0]})"
        )
    scored = (~np.isnan(base)).any(axis=1) & (~np.isnan(cand)).any(axis=1)
    base, cand = base[scored], cand[scored]
    n = int(scored.sum())
    one_each = bool(((~np.isnan(base)).sum(axis=1) <= 1).all() and ((~np.isnan(cand)).sum(axis=1) <= 1).all())
    finite = np.concatenate([base[~np.isnan(base)], cand[~np.isnan(cand)]])
    zero_one = bool(np.isin(finite, (0.0, 1.0)).all())
    test = method
    if method == "auto":
        test = "mcnemar" if binary and one_each and zero_one else "permutation"
    elif method == "mcnemar" and not (one_each and zero_one):
        raise InvalidRequest(f"McNemar's test on {metric!r} needs one 0/1 score per case on each side")
    elif method not in ("mcnemar", "permutation", "paired_bootstrap", "paired_t"):
        raise InvalidRequest(f"unknown comparison method {method!r}")
    if n == 0:
        return Comparison(
            metric, math.nan, math.nan, math.nan, math.nan, math.nan, 1.0, test, 0, alpha, math.inf
        )

    b_means, c_means = np.nanmean(base, axis=1), np.nanmean(cand, axis=1)
    d = c_means - b_means
    base_mean, cand_mean, effect = float(b_means.mean()), float(c_means.mean()), float(d.mean())
    regressions = int(np.count_nonzero(d < 0)) if binary else 0
    improvements = int(np.count_nonzero(d > 0)) if binary else 0

    def result(low: float, high: float, p: float, mde: float) -> Comparison:
        p = min(1.0, max(0.0, p))
        return Comparison(
            metric, base_mean, cand_mean, effect, low, high, p, test, n, alpha, mde, regressions, improvements
        )

    if test == "mcnemar":
        low, high = _agresti_min(regressions, improvements, n, level)
        mde = mcnemar_detectable_drop(
            (regressions + improvements) / n,
            n,
            alpha=alpha,
            baseline_mean=base_mean,
            candidate_mean=cand_mean,
        )
        return result(low, high, mcnemar_p_value(regressions, improvements), mde)

    mde = detectable_drop(_difference_sd(d, b_means, c_means), n, alpha=alpha, permutation=test != "paired_t")
    rng = np.random.default_rng(seed)
    if test == "paired_bootstrap":
        if n == 1 or np.ptp(d) == 0:
            return result(effect, effect, _t_p(d), mde)
        boot = _bootstrap_means(d, rng, resamples)
        low, high = (float(q) for q in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
        return result(low, high, _bootstrap_p(d, boot), mde)
    half = _t_halfwidth(d, level) if n > 1 else 0.0
    p = _t_p(d) if test == "paired_t" else _sign_flip_p(d, rng, resamples)
    return result(effect - half, effect + half, p, mde)


def _difference_sd(d: Floats, base: Floats, cand: Floats) -> float:
    """SD of per-case differences for the detectable drop. When every difference is the
    same the observed SD (0) would claim any drop is detectable, so the SD that unrelated
    baseline and candidate scores would give is used instead; NaN when no score varies."""
    if len(d) < 2:
        return math.nan
    sd = float(np.std(d, ddof=1))
    if sd > 0:
        return sd
    independent = math.sqrt(float(np.var(base, ddof=1) + np.var(cand, ddof=1)))
    return independent if independent > 0 else math.nan


# -- noise split -----------------------------------------------------------------------


def _one_way(groups: list[Floats]) -> tuple[float, float]:
    """Method-of-moments variance components of a one-way random-effects ANOVA with
    unequal group sizes: (between groups, within groups), negatives clipped to 0 and NaN
    when there are too few groups or replicates to estimate one."""
    if not groups:
        return math.nan, math.nan
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    a, total = len(groups), float(sizes.sum())
    grand = float(np.concatenate(groups).mean())
    ss_within = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    ss_between = sum(len(g) * (float(g.mean()) - grand) ** 2 for g in groups)
    df_within = total - a
    within = ss_within / df_within if df_within > 0 else math.nan
    if a < 2:
        return math.nan, within
    ms_between = ss_between / (a - 1)
    if math.isnan(within):
        return max(ms_between, 0.0), within
    n0 = (total - float((sizes**2).sum()) / total) / (a - 1)
    return max((ms_between - within) / n0, 0.0), within


def _nested(cases: list[list[Floats]]) -> tuple[float, float, float]:
    """Method-of-moments components of a two-level nested random-effects ANOVA (judge
    samples within generations within cases), unbalanced: (cases, generations, judges).
    The coefficients of the expected mean squares are Searle's for unequal sizes."""
    a = len(cases)
    n_ij = [np.array([len(g) for g in gens], dtype=np.float64) for gens in cases]
    n_i = np.array([s.sum() for s in n_ij])
    total = float(n_i.sum())
    gens_total = sum(len(gens) for gens in cases)
    grand = float(np.concatenate([np.concatenate(gens) for gens in cases]).mean())
    case_means = [float(np.concatenate(gens).mean()) for gens in cases]
    ss_a = sum(float(n) * (m - grand) ** 2 for n, m in zip(n_i, case_means, strict=True))
    ss_b = sum(
        len(g) * (float(g.mean()) - m) ** 2 for gens, m in zip(cases, case_means, strict=True) for g in gens
    )
    ss_e = sum(float(((g - g.mean()) ** 2).sum()) for gens in cases for g in gens)
    df_b, df_e = gens_total - a, total - gens_total
    judge = ss_e / df_e if df_e > 0 else math.nan
    k = float(sum((s**2).sum() / n for s, n in zip(n_ij, n_i, strict=True)))
    generation = math.nan
    if df_b > 0 and df_e > 0:
        generation = max((ss_b / df_b - judge) / ((total - k) / df_b), 0.0)
    between = math.nan
    if a > 1 and not math.isnan(generation):
        c2 = (k - float(sum((s**2).sum() for s in n_ij)) / total) / (a - 1)
        c3 = (total - float((n_i**2).sum()) / total) / (a - 1)
        between = max((ss_a / (a - 1) - judge - c2 * generation) / c3, 0.0)
    return between, generation, judge


def _groups(rows: Floats) -> list[Floats]:
    return [row[~np.isnan(row)] for row in rows if (~np.isnan(row)).any()]


def noise_split(values: ArrayLike, *, metric: str) -> NoiseSplit:
    """Where a metric's variance comes from, from ``[cases, gen_repeats]`` or ``[cases,
    gen_repeats, judge_repeats]`` (NaN = missing): variance components of a (nested)
    random-effects ANOVA by the method of moments, negatives clipped to 0.

    A part the design cannot separate is None: with one generation per case there is no
    generation part (``between_cases`` then includes generation noise), with one judge
    sample per generation no judge part. ``between_cases`` is NaN with fewer than two
    cases.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InvalidRequest(
            f"noise split of {metric!r} needs [cases, repeats(, judge samples)], got {array.shape}"
        )
    present = ~np.isnan(array)
    generations = int(present.any(axis=2).sum(axis=1).max(initial=0))
    judges = int(present.sum(axis=2).max(initial=0))
    if judges <= 1:
        # One judge sample at most: a generation's value is that sample.
        between, within = _one_way(_groups(np.fmax.reduce(array, axis=2)))
        if generations <= 1:
            return NoiseSplit(metric, between, None, None)
        return NoiseSplit(metric, between, within, None)
    cases = [gens for gens in (_groups(case) for case in array) if gens]
    if not cases:
        return NoiseSplit(metric, math.nan, None, None)
    if generations <= 1:
        between, within = _one_way([gens[0] for gens in cases])
        return NoiseSplit(metric, between, None, within)
    between, generation, judge = _nested(cases)
    return NoiseSplit(metric, between, generation, judge)
