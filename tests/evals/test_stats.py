"""The statistics against scipy: intervals, paired tests, McNemar, the power note and the
noise split's variance components."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from keel.core import InvalidRequest
from keel.evals._power import detectable_drop, mcnemar_p_value, power_note
from keel.evals._stats import compare_paired, mean_ci, noise_split


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- mean_ci --------------------------------------------------------------------------


def test_t_interval_matches_scipy() -> None:
    x = rng(1).normal(0.6, 0.2, 37)
    est = mean_ci(x, level=0.9)
    low, high = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    ci = stats.ttest_1samp(x, 0).confidence_interval(0.9)
    assert est.mean == pytest.approx(x.mean())
    assert (est.low, est.high) == pytest.approx((low, high), rel=1e-12)
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert (est.n_cases, est.n_repeats, est.level, est.method) == (37, 1, 0.9, "t")


def test_repeats_are_clustered_by_case_and_nan_ignored() -> None:
    generator = rng(2)
    case_effect = generator.normal(0, 1, (30, 1))
    values = case_effect + generator.normal(0, 0.3, (30, 4))
    values[3, 1:] = np.nan  # a case with one repeat scored
    values[7, :] = np.nan  # a case never scored
    means = np.array([np.nanmean(row) for row in values if not np.isnan(row).all()])
    est = mean_ci(values)
    low, high = stats.t.interval(0.95, len(means) - 1, loc=means.mean(), scale=stats.sem(means))
    assert est.n_cases == 29
    assert est.n_repeats == 4
    assert est.mean == pytest.approx(means.mean())
    assert (est.low, est.high) == pytest.approx((low, high))
    assert "clustered" in est.method
    # Treating the 4 repeats as independent would give a far narrower interval.
    naive = stats.sem(values[~np.isnan(values)])
    assert (high - low) / 2 > 2 * 1.96 * naive


@pytest.mark.parametrize("interval", ["bca", "percentile"])
def test_bootstrap_matches_scipy(interval: str) -> None:
    x = rng(3).exponential(1.0, 45)  # skewed, so BCa and percentile differ
    est = mean_ci(x, method="bootstrap", bootstrap=interval, seed=4)  # type: ignore[arg-type]
    ref = stats.bootstrap(
        (x,), np.mean, method="BCa" if interval == "bca" else "percentile", n_resamples=10_000, rng=5
    ).confidence_interval
    se = x.std(ddof=1) / math.sqrt(len(x))
    # Two independent 10,000-resample runs agree to a few hundredths of a standard error.
    assert est.low == pytest.approx(ref.low, abs=0.06 * se)
    assert est.high == pytest.approx(ref.high, abs=0.06 * se)
    assert est.method.startswith("bootstrap")


def test_cluster_bootstrap_resamples_cases() -> None:
    values = rng(6).normal(0, 1, (25, 1)) + rng(7).normal(0, 0.5, (25, 3))
    est = mean_ci(values, method="bootstrap", seed=1)
    ref = stats.bootstrap((values.mean(axis=1),), np.mean, n_resamples=10_000, rng=2).confidence_interval
    se = values.mean(axis=1).std(ddof=1) / 5
    assert (est.low, est.high) == pytest.approx((ref.low, ref.high), abs=0.06 * se)
    assert est.method == "bootstrap BCa (clustered by case)"


def test_bootstrap_is_reproducible_with_its_seed() -> None:
    x = rng(8).normal(size=30)
    assert mean_ci(x, method="bootstrap", seed=3) == mean_ci(x, method="bootstrap", seed=3)
    assert mean_ci(x, method="bootstrap", seed=3) != mean_ci(x, method="bootstrap", seed=4)


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_degenerate_inputs_do_not_crash(method: str) -> None:
    one = mean_ci(np.array([0.7]), method=method)  # type: ignore[arg-type]
    assert (one.mean, one.low, one.high, one.n_cases) == (0.7, 0.7, 0.7, 1)
    assert "no interval" in one.method
    constant = mean_ci(np.ones((10, 2)), method=method)  # type: ignore[arg-type]
    assert (constant.low, constant.high) == (1.0, 1.0)
    empty = mean_ci(np.full((3, 2), np.nan), method=method)  # type: ignore[arg-type]
    assert empty.n_cases == 0
    assert math.isnan(empty.mean)


# -- compare_paired -------------------------------------------------------------------


def paired(n: int, effect: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generator = rng(seed)
    case = generator.normal(0.5, 0.2, n)
    return case + generator.normal(0, 0.1, n), case + effect + generator.normal(0, 0.1, n)


def test_paired_t_matches_ttest_rel() -> None:
    base, cand = paired(30, -0.05, 10)
    c = compare_paired(base, cand, metric="score", binary=False, method="paired_t", level=0.9)
    ref = stats.ttest_rel(cand, base)
    ci = ref.confidence_interval(0.9)
    assert c.test == "paired_t"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert c.effect == pytest.approx(float(np.mean(cand - base)))
    assert (c.baseline_mean, c.candidate_mean) == pytest.approx((base.mean(), cand.mean()))


@pytest.mark.parametrize(("n", "seed"), [(8, 1), (12, 2), (16, 5)])
def test_permutation_is_exact_for_small_sets(n: int, seed: int) -> None:
    base, cand = paired(n, 0.04, seed)
    # Discrete scores make ties in the permutation distribution, which must count as ties.
    base, cand = np.round(base, 1), np.round(cand, 1)
    c = compare_paired(base, cand, metric="score", binary=False)
    ref = stats.permutation_test(
        (cand, base),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
    )
    assert c.test == "permutation"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_permutation_monte_carlo_for_larger_sets() -> None:
    base, cand = paired(50, 0.01, 4)
    c = compare_paired(base, cand, metric="score", binary=False, resamples=20_000)
    ref = stats.permutation_test(
        (cand, base),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=20_000,
        rng=1,
    )
    assert 0.005 < ref.pvalue < 0.5  # a p-value the comparison can resolve
    assert c.p_value == pytest.approx(ref.pvalue, abs=4 * math.sqrt(ref.pvalue / 20_000) + 1e-3)
    t = stats.ttest_rel(cand, base).confidence_interval()
    assert (c.low, c.high) == pytest.approx((t.low, t.high))


def test_paired_bootstrap() -> None:
    base, cand = paired(40, -0.03, 5)
    c = compare_paired(base, cand, metric="score", binary=False, method="paired_bootstrap", seed=2)
    d = cand - base
    ref = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=10_000, rng=3).confidence_interval
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert (c.low, c.high) == pytest.approx((ref.low, ref.high), abs=0.06 * se)
    assert c.p_value == pytest.approx(stats.ttest_rel(cand, base).pvalue, abs=0.02)


@pytest.mark.parametrize(
    ("regressions", "improvements", "both", "neither"), [(9, 2, 25, 4), (3, 3, 30, 4), (0, 7, 20, 3)]
)
def test_mcnemar_matches_binomtest(regressions: int, improvements: int, both: int, neither: int) -> None:
    base = np.array([1] * regressions + [0] * improvements + [1] * both + [0] * neither, dtype=float)
    cand = np.array([0] * regressions + [1] * improvements + [1] * both + [0] * neither, dtype=float)
    c = compare_paired(base, cand, metric="ok", binary=True)
    ref = stats.binomtest(improvements, regressions + improvements, 0.5).pvalue
    assert c.test == "mcnemar"
    assert (c.regressions, c.improvements) == (regressions, improvements)
    assert c.p_value == pytest.approx(ref, rel=1e-12)
    assert c.effect == pytest.approx((improvements - regressions) / len(base))
    assert c.low < c.effect < c.high


def test_binary_with_repeats_uses_the_permutation_test() -> None:
    generator = rng(9)
    base = (generator.random((30, 3)) < 0.8).astype(float)
    cand = (generator.random((30, 3)) < 0.6).astype(float)
    c = compare_paired(base, cand, metric="ok", binary=True)
    assert c.test == "permutation"
    d = cand.mean(axis=1) - base.mean(axis=1)
    assert (c.regressions, c.improvements) == (int((d < 0).sum()), int((d > 0).sum()))
    with pytest.raises(InvalidRequest, match="McNemar"):
        compare_paired(base, cand, metric="ok", binary=True, method="mcnemar")


def test_cases_missing_on_either_side_are_left_out() -> None:
    base = np.array([1.0, 0.5, np.nan, 0.2])
    cand = np.array([0.9, np.nan, 0.4, 0.1])
    c = compare_paired(base, cand, metric="m", binary=False, method="paired_t")
    assert c.n_cases == 2
    assert c.effect == pytest.approx(-0.1)
    with pytest.raises(InvalidRequest, match="one row per case"):
        compare_paired(base, cand[:3], metric="m", binary=False)


def test_a_mean_difference_of_exactly_zero_gives_p_one() -> None:
    # scipy.stats.permutation_test reads the float rounding of a zero mean (7e-18 here) as
    # an effect and answers 0.93; a mathematically zero difference is no evidence at all.
    base = np.array([0.5, 0.2, 0.7, 0.1, 0.3, 0.6])
    cand = np.array([0.6, 0.1, 0.9, 0.0, 0.1, 0.6])
    assert compare_paired(base, cand, metric="m", binary=False).p_value == 1.0


@pytest.mark.parametrize("method", ["auto", "permutation", "paired_bootstrap", "paired_t", "mcnemar"])
def test_identical_scores_give_p_one(method: str) -> None:
    values = (rng(11).random(30) < 0.7).astype(float)
    c = compare_paired(values, values.copy(), metric="m", binary=True, method=method)  # type: ignore[arg-type]
    assert c.p_value == 1.0
    assert c.effect == 0.0
    assert math.isfinite(c.mde) and c.mde > 0


def test_nothing_scored_and_single_case() -> None:
    empty = compare_paired(np.full(4, np.nan), np.full(4, np.nan), metric="m", binary=False)
    assert empty.n_cases == 0 and empty.p_value == 1.0 and math.isinf(empty.mde)
    one = compare_paired(np.array([0.2]), np.array([0.5]), metric="m", binary=False)
    assert one.n_cases == 1 and one.low == one.high == pytest.approx(0.3)


# -- power ----------------------------------------------------------------------------


def test_mde_is_the_normal_approximation() -> None:
    base, cand = paired(40, 0.0, 12)
    c = compare_paired(base, cand, metric="m", binary=False)
    sd = float(np.std(cand - base, ddof=1))
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(40)
    assert c.mde == pytest.approx(expected)
    assert detectable_drop(sd, 40, alpha=0.05) == pytest.approx(expected)
    # A sign-flip test on 5 cases cannot reach p < 0.05 at all (2 / 2⁵ = 0.0625).
    assert math.isinf(detectable_drop(sd, 5, alpha=0.05))


def test_mcnemar_mde_uses_discordance_and_a_conservative_fallback() -> None:
    base = np.array([1.0] * 30 + [0.0] * 10)
    cand = base.copy()
    cand[:4] = 0.0
    cand[30:33] = 1.0
    c = compare_paired(base, cand, metric="ok", binary=True)
    psi = 7 / 40
    assert c.mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(psi / 40))
    same = compare_paired(base, base.copy(), metric="ok", binary=True)
    independent = 2 * 0.75 * 0.25
    assert same.mde == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(independent / 40)
    )
    all_pass = compare_paired(np.ones(40), np.ones(40), metric="ok", binary=True)
    # Nothing varies: the floor is the fewest discordant pairs McNemar can call significant.
    assert all_pass.mde >= 6 / 40
    assert mcnemar_p_value(6, 0) < 0.05 <= mcnemar_p_value(5, 0)


def test_power_note() -> None:
    base = (rng(13).random(40) < 0.85).astype(float)
    cand = base.copy()
    cand[:3] = 1 - cand[:3]
    c = compare_paired(base, cand, metric="ok", binary=True)
    points = round(c.mde * 100)
    assert (
        power_note(c)
        == f"with 40 cases this run can detect a drop of ≥ {points} points (80% power, α = 0.05)"
    )
    graded = compare_paired(
        np.arange(10.0) * 3, np.arange(10.0) * 3 + rng(1).normal(0, 2, 10), metric="m", binary=False
    )
    assert "points" not in power_note(graded)
    tiny = compare_paired(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.1, 0.3]), metric="m", binary=False)
    assert power_note(tiny) == "with 3 cases this run cannot detect any drop at α = 0.05"


# -- noise split ----------------------------------------------------------------------


def nested(a: int, g: int, j: int, sds: tuple[float, float, float], seed: int) -> np.ndarray:
    generator = rng(seed)
    return (
        generator.normal(0, sds[0], (a, 1, 1))
        + generator.normal(0, sds[1], (a, g, 1))
        + generator.normal(0, sds[2], (a, g, j))
    )


def test_noise_split_matches_balanced_anova_mean_squares() -> None:
    y = nested(40, 3, 4, (1.0, 0.5, 0.3), 20)
    a, g, j = y.shape
    gen_means, case_means = y.mean(axis=2), y.mean(axis=(1, 2))
    ms_a = g * j * ((case_means - y.mean()) ** 2).sum() / (a - 1)
    ms_b = j * ((gen_means - case_means[:, None]) ** 2).sum() / (a * (g - 1))
    ms_e = ((y - gen_means[:, :, None]) ** 2).sum() / (a * g * (j - 1))
    split = noise_split(y, metric="judge")
    assert split.judge == pytest.approx(ms_e)
    assert split.generation == pytest.approx((ms_b - ms_e) / j)
    assert split.between_cases == pytest.approx((ms_a - ms_b) / (g * j))


def test_noise_split_recovers_known_components() -> None:
    y = nested(600, 4, 3, (0.8, 0.5, 0.3), 21)
    split = noise_split(y, metric="judge")
    assert split.between_cases == pytest.approx(0.64, rel=0.15)
    assert split.generation == pytest.approx(0.25, rel=0.1)
    assert split.judge == pytest.approx(0.09, rel=0.1)
    # Missing cells (failed generations, lost judge samples) leave an unbalanced design.
    holes = y.copy()
    holes[rng(22).random(y.shape) < 0.25] = np.nan
    unbalanced = noise_split(holes, metric="judge")
    assert unbalanced.between_cases == pytest.approx(0.64, rel=0.15)
    assert unbalanced.generation == pytest.approx(0.25, rel=0.12)
    assert unbalanced.judge == pytest.approx(0.09, rel=0.12)


def test_noise_split_says_what_the_design_cannot_separate() -> None:
    y = nested(500, 4, 3, (0.8, 0.5, 0.3), 23)
    generations = noise_split(y[:, :, 0], metric="m")
    assert generations.judge is None
    assert generations.generation == pytest.approx(0.25 + 0.09, rel=0.12)
    assert generations.between_cases == pytest.approx(0.64, rel=0.15)
    judges = noise_split(y[:, :1, :], metric="m")
    assert judges.generation is None
    assert judges.judge == pytest.approx(0.09, rel=0.12)
    assert judges.between_cases == pytest.approx(0.64 + 0.25, rel=0.15)
    single = noise_split(y[:, 0, 0], metric="m")
    assert (single.generation, single.judge) == (None, None)
    assert single.between_cases == pytest.approx(float(np.var(y[:, 0, 0], ddof=1)))


def test_negative_components_clip_to_zero() -> None:
    # Every case has the same mean: the between-case mean square is below the within one.
    values = np.array([[0.0, 1.0], [1.0, 0.0]] * 10)
    split = noise_split(values, metric="m")
    assert split.between_cases == 0.0
    assert split.generation == pytest.approx(0.5)
