"""The paired tests on simulated runs with known effects: under no effect they reject at
about alpha, and with an effect as often as theory says.

Each check simulates many datasets of 60 cases with a fixed seed and compares the
rejection rate with its theoretical value within a binomial tolerance (99.9% two-sided:
a correct test fails it about once in a thousand seeds; the seeds are fixed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from keel.evals._power import mcnemar_power, paired_power
from keel.evals._stats import compare_paired

ALPHA = 0.05
CASES = 60


def tolerance(p: float, trials: int) -> float:
    return float(stats.norm.ppf(0.9995)) * math.sqrt(p * (1 - p) / trials)


def rejection_rate(
    datasets: list[tuple[np.ndarray, np.ndarray]], *, binary: bool, **options: object
) -> float:
    rejected = 0
    for base, cand in datasets:
        comparison = compare_paired(base, cand, metric="m", binary=binary, alpha=ALPHA, **options)  # type: ignore[arg-type]
        rejected += comparison.p_value < ALPHA
    return rejected / len(datasets)


def continuous(
    trials: int, effect: float, seed: int, sd: float = 0.15
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Graded scores: a case difficulty shared by both variants plus independent noise, so
    per-case differences have SD ``sd``."""
    generator = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        case = generator.normal(0.6, 0.2, CASES)
        noise = generator.normal(0, sd / math.sqrt(2), (2, CASES))
        out.append((case + noise[0], case + effect + noise[1]))
    return out


def pass_fail(
    trials: int, p_regress: float, p_improve: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pass/fail scores where each case regresses, improves or stays put with the given
    probabilities (baseline passes 70% of the cases that stay put)."""
    generator = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        u = generator.random(CASES)
        base = (generator.random(CASES) < 0.7).astype(float)
        regress = u < p_regress
        improve = (u >= p_regress) & (u < p_regress + p_improve)
        base[regress], base[improve] = 1.0, 0.0
        cand = base.copy()
        cand[regress], cand[improve] = 0.0, 1.0
        out.append((base, cand))
    return out


@pytest.mark.parametrize(("method", "resamples"), [("paired_t", 0), ("permutation", 999)])
def test_continuous_false_positive_rate_is_alpha(method: str, resamples: int) -> None:
    trials = 1000
    rate = rejection_rate(continuous(trials, 0.0, seed=1), binary=False, method=method, resamples=resamples)
    assert abs(rate - ALPHA) <= tolerance(ALPHA, trials)


def test_continuous_power_matches_theory() -> None:
    trials, sd = 1000, 0.15
    # The effect theory (normal approximation) gives 70% power: mid-range, where a wrong
    # power shows most.
    effect = (stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(0.7)) * sd / math.sqrt(CASES)
    theory = paired_power(effect, sd, CASES, alpha=ALPHA)
    assert theory == pytest.approx(0.7, abs=0.001)
    # The t-test's exact power (noncentral t) is a little below the normal approximation.
    critical = stats.t.ppf(1 - ALPHA / 2, CASES - 1)
    shift = effect * math.sqrt(CASES) / sd
    exact = stats.nct.sf(critical, CASES - 1, shift) + stats.nct.cdf(-critical, CASES - 1, shift)
    rate = rejection_rate(continuous(trials, -effect, seed=2, sd=sd), binary=False, method="paired_t")
    assert abs(rate - exact) <= tolerance(exact, trials)
    assert abs(rate - theory) <= tolerance(theory, trials) + abs(theory - exact)


def test_the_mde_is_detected_with_80_percent_power() -> None:
    trials, sd = 800, 0.15
    generator = np.random.default_rng(3)
    reference_base = generator.normal(0.6, 0.2, CASES)
    reference_cand = reference_base + generator.normal(0, sd, CASES)
    mde = compare_paired(reference_base, reference_cand, metric="m", binary=False, method="paired_t").mde
    # Simulate a drop of exactly the reported detectable size, at the true SD.
    true_mde = mde * sd / float(np.std(reference_cand - reference_base, ddof=1))
    rate = rejection_rate(continuous(trials, -true_mde, seed=4, sd=sd), binary=False, method="paired_t")
    assert abs(rate - 0.8) <= tolerance(0.8, trials) + 0.02  # 0.02: t vs normal approximation


def test_permutation_power_matches_theory() -> None:
    trials, sd = 600, 0.15
    effect = (stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(0.7)) * sd / math.sqrt(CASES)
    theory = paired_power(effect, sd, CASES, alpha=ALPHA)
    rate = rejection_rate(
        continuous(trials, effect, seed=5, sd=sd), binary=False, method="permutation", resamples=999
    )
    assert abs(rate - theory) <= tolerance(theory, trials) + 0.02


def test_mcnemar_false_positive_rate() -> None:
    trials = 2000
    rate = rejection_rate(pass_fail(trials, 0.1, 0.1, seed=6), binary=True)
    # The exact test is discrete, so its size is at most alpha; theory gives it exactly.
    size = mcnemar_power(0.1, 0.1, CASES, alpha=ALPHA)
    assert 0.02 < size <= ALPHA
    assert abs(rate - size) <= tolerance(size, trials)
    assert rate <= ALPHA + tolerance(ALPHA, trials)


def test_mcnemar_power_matches_theory() -> None:
    trials = 2000
    p_regress, p_improve = 0.18, 0.04
    rate = rejection_rate(pass_fail(trials, p_regress, p_improve, seed=7), binary=True)
    exact = mcnemar_power(p_regress, p_improve, CASES, alpha=ALPHA)
    assert 0.4 < exact < 0.9
    assert abs(rate - exact) <= tolerance(exact, trials)
    # Connor's normal approximation for paired proportions agrees roughly.
    psi, delta = p_regress + p_improve, p_regress - p_improve
    z = (delta * math.sqrt(CASES) - stats.norm.ppf(1 - ALPHA / 2) * math.sqrt(psi)) / math.sqrt(
        psi - delta**2
    )
    assert abs(rate - stats.norm.cdf(z)) < 0.1


def test_pass_fail_with_repeats_false_positive_rate() -> None:
    trials, repeats = 400, 3
    generator = np.random.default_rng(8)
    datasets = []
    for _ in range(trials):
        rate_by_case = generator.beta(2, 1, CASES)[:, None]
        base = (generator.random((CASES, repeats)) < rate_by_case).astype(float)
        cand = (generator.random((CASES, repeats)) < rate_by_case).astype(float)
        datasets.append((base, cand))
    rate = rejection_rate(datasets, binary=True, resamples=499)
    assert abs(rate - ALPHA) <= tolerance(ALPHA, trials)
