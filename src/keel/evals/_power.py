"""Power: how large a drop a run of this size can detect, and the power note reports print.

The detectable drop (``Comparison.mde``) is the effect a two-sided test at ``alpha`` finds
with 80% power, from the normal approximation ``(z_{1-α/2} + z_{power}) · sd / √n`` where
``sd`` is the standard deviation of the per-case differences. Two floors keep it honest
for small sets: a sign-flip permutation test on ``n`` cases cannot reach a p-value below
``2 / 2ⁿ``, and McNemar's exact test needs a minimum number of discordant pairs before
any split of them is significant; below those floors no drop is detectable (``inf``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from keel.evals._types import Comparison

__all__ = [
    "detectable_drop",
    "mcnemar_detectable_drop",
    "mcnemar_min_discordant",
    "mcnemar_p_value",
    "mcnemar_power",
    "paired_power",
    "power_note",
]

POWER = 0.8


def _z(q: float) -> float:
    return float(stats.norm.ppf(q))


def detectable_drop(
    sd: float, n: int, *, alpha: float, power: float = POWER, permutation: bool = True
) -> float:
    """The smallest drop a two-sided paired test on ``n`` cases detects with ``power``
    (normal approximation); ``inf`` when ``n`` is too small for the test (a sign-flip
    permutation test when ``permutation``) to reach ``alpha`` at all, ``nan`` when
    ``sd`` is unknown."""
    if n < 2 or (permutation and 2.0 / 2.0**n >= alpha):
        return math.inf
    if not math.isfinite(sd):
        return math.nan
    return (_z(1 - alpha / 2) + _z(power)) * sd / math.sqrt(n)


def paired_power(effect: float, sd: float, n: int, *, alpha: float) -> float:
    """Power of a two-sided paired test to detect ``effect`` given the SD of per-case
    differences (normal approximation, both tails counted)."""
    if sd <= 0:
        return 1.0 if effect != 0 else alpha
    shift = abs(effect) * math.sqrt(n) / sd
    z = _z(1 - alpha / 2)
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


def mcnemar_p_value(regressions: int, improvements: int) -> float:
    """McNemar's exact test: a two-sided binomial test that the discordant pairs split
    evenly (p = 1 when there are none)."""
    k = regressions + improvements
    if k == 0:
        return 1.0
    return min(1.0, 2.0 * float(stats.binom.cdf(min(regressions, improvements), k, 0.5)))


def mcnemar_min_discordant(alpha: float) -> int:
    """The fewest discordant pairs that can be significant (all of them one way)."""
    return max(1, math.ceil(math.log2(2.0 / alpha) + 1e-12))


def mcnemar_power(p_regress: float, p_improve: float, n: int, *, alpha: float) -> float:
    """Exact power (rejection probability at ``p < alpha``) of McNemar's exact test on
    ``n`` cases when a case regresses with probability ``p_regress`` and improves with
    ``p_improve``: the number of discordant pairs is binomial, and given it the split is
    binomial too, so the sum over both is exact (no simulation)."""
    discordance = p_regress + p_improve
    if discordance <= 0 or n <= 0:
        return 0.0
    share = p_regress / discordance
    ks = np.arange(n + 1)
    p_k = stats.binom.pmf(ks, n, discordance)
    total = 0.0
    for k in range(1, n + 1):
        if p_k[k] < 1e-15:
            continue
        b = np.arange(k + 1)
        p_values = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, k - b), k, 0.5))
        total += float(p_k[k] * stats.binom.pmf(b, k, share)[p_values < alpha].sum())
    return total


def mcnemar_detectable_drop(
    discordance: float,
    n: int,
    *,
    alpha: float,
    baseline_mean: float,
    candidate_mean: float,
    power: float = POWER,
) -> float:
    """The detectable drop of a pass/fail metric: ``(z_{1-α/2} + z_{power}) · √(ψ / n)``
    with ``ψ`` the observed rate of discordant cases (McNemar's variance near no effect).

    With no discordant case observed the rate is unknown, and assuming it is zero would
    claim any drop is detectable. Then ``ψ`` is taken as the larger of the rate that
    independent failures would give, ``p_b(1 − p_c) + p_c(1 − p_b)`` (paired variants
    usually agree more than that, so it overstates ψ), and ``3 / n`` (the rule-of-three
    upper bound on a rate never seen in ``n`` cases). Either way the drop is at least
    the fewest discordant pairs that can be significant, over ``n``."""
    if n < 1:
        return math.inf
    if discordance <= 0:
        independent = baseline_mean * (1 - candidate_mean) + candidate_mean * (1 - baseline_mean)
        discordance = max(independent, 3.0 / n)
    floor = mcnemar_min_discordant(alpha) / n
    if floor > 1:
        return math.inf
    return max((_z(1 - alpha / 2) + _z(power)) * math.sqrt(discordance / n), floor)


def _in_unit_range(c: Comparison) -> bool:
    means = (c.baseline_mean, c.candidate_mean)
    return all(math.isfinite(m) and 0.0 <= m <= 1.0 for m in means)


def _amount(value: float, points: bool) -> str:
    if points:
        scaled = value * 100
        text = f"{scaled:.0f}" if scaled >= 5 else f"{scaled:.1f}"
        return f"{text} points"
    return f"{value:.3g}"


def power_note(c: Comparison, *, points: bool | None = None) -> str:
    """One sentence on what this comparison could detect: "with 40 cases this run can
    detect a drop of ≥ 9 points (80% power, α = 0.05)". ``points`` (percentage points)
    is used when both means lie in [0, 1] unless told otherwise."""
    use_points = _in_unit_range(c) if points is None else points
    cases = f"{c.n_cases} case" + ("" if c.n_cases == 1 else "s")
    if math.isinf(c.mde):
        return f"with {cases} this run cannot detect any drop at α = {c.alpha:g}"
    if math.isnan(c.mde):
        return f"with {cases} and no variation in the scores, the detectable drop cannot be estimated"
    return (
        f"with {cases} this run can detect a drop of ≥ {_amount(c.mde, use_points)} "
        f"({POWER:.0%} power, α = {c.alpha:g})"
    )
