"""Agreement statistics against hand-computed and published reference values."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from keel.feedback import agreement, cohen_kappa, krippendorff_alpha

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
# observers, twelve units, missing values. Published: nominal 0.743, interval 0.849.
_A = [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None]
_B = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3]
_C = [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None]
_D = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]
UNITS = [[v for v in unit if v is not None] for unit in zip(_A, _B, _C, _D, strict=True)]


def test_krippendorff_alpha_matches_the_published_example() -> None:
    assert krippendorff_alpha(UNITS, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(UNITS, "interval") == pytest.approx(0.849, abs=5e-4)


def _alpha_by_coincidence_matrix(units: list[list[float]], interval: bool) -> float:
    """The textbook computation: a coincidence matrix o[c][k], its marginals, then
    alpha = 1 - (n - 1) * sum o·δ / sum n_c n_k δ."""
    values = sorted({v for unit in units for v in unit})
    o: Counter[tuple[float, float]] = Counter()
    for unit in units:
        if len(unit) < 2:
            continue
        for i, j in itertools.permutations(range(len(unit)), 2):
            o[(unit[i], unit[j])] += 1 / (len(unit) - 1)
    marginal = {c: sum(o[(c, k)] for k in values) for c in values}
    n = sum(marginal.values())

    def delta(c: float, k: float) -> float:
        return (c - k) ** 2 if interval else float(c != k)

    observed = sum(o[(c, k)] * delta(c, k) for c in values for k in values)
    expected = sum(marginal[c] * marginal[k] * delta(c, k) for c in values for k in values)
    return 1 - (n - 1) * observed / expected


@pytest.mark.parametrize("interval", [False, True])
def test_krippendorff_alpha_matches_the_coincidence_matrix_on_random_data(interval: bool) -> None:
    rng = random.Random(7)
    for _ in range(20):
        units = [[float(rng.randint(1, 4)) for _ in range(rng.randint(0, 4))] for _ in range(15)]
        expected = _alpha_by_coincidence_matrix(units, interval)
        got = krippendorff_alpha(units, "interval" if interval else "nominal")
        assert got == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_of_the_textbook_two_by_two_table() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5·0.6 + 0.5·0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_kappa_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    for _ in range(10):
        first = [rng.choice("abc") for _ in range(30)]
        second = [x if rng.random() < 0.6 else rng.choice("abc") for x in first]
        assert cohen_kappa(first, second) == pytest.approx(metrics.cohen_kappa_score(first, second))


def test_undefined_agreement_is_none() -> None:
    assert cohen_kappa(["up", "up"], ["up", "up"]) is None
    assert krippendorff_alpha([[3, 3], [3, 3]], "interval") is None
    assert krippendorff_alpha([[1], [2]], "nominal") is None  # nothing pairable


def test_agreement_picks_the_level_and_averages_pairwise_kappa() -> None:
    ratings = {
        "r1": {"ann": "up", "bob": "up", "cy": "down"},
        "r2": {"ann": "down", "bob": "down"},
        "r3": {"ann": "up", "cy": "up"},
        "r4": {"bob": "up", "cy": "down"},
    }
    report = agreement("thumbs", ratings)
    assert report.level == "nominal" and report.items == 4 and report.reviewers == 3
    pairs = [
        cohen_kappa(["up", "down"], ["up", "down"]),  # ann, bob on r1, r2
        cohen_kappa(["up", "up"], ["down", "up"]),  # ann, cy on r1, r3
        cohen_kappa(["up", "up"], ["down", "down"]),  # bob, cy on r1, r4
    ]
    defined = [k for k in pairs if k is not None]
    assert report.kappa == pytest.approx(sum(defined) / len(defined))
    assert report.alpha == pytest.approx(krippendorff_alpha([list(r.values()) for r in ratings.values()]))
    numeric = agreement("rating", {"r1": {"ann": 4, "bob": 5}, "r2": {"ann": 1, "bob": 2}})
    assert numeric.level == "interval" and numeric.kappa is None
    assert numeric.alpha == pytest.approx(krippendorff_alpha([[4, 5], [1, 2]], "interval"))
