"""The drift detectors against scipy's implementations, their verdicts on same and
shifted distributions, the default choice, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from keel.core import ConfigError, InvalidRequest
from keel.monitor import (
    Binning,
    CategoricalData,
    EmbeddingData,
    NumericData,
    build_detector,
    default_detector,
    detectors,
    run_detector,
)
from keel.monitor._binning import numeric_from_histogram
from keel.monitor._types import SignalData

rng = np.random.default_rng(7)


def test_every_detector_is_registered() -> None:
    assert set(detectors()) >= {
        "ks",
        "wasserstein",
        "psi",
        "chi_square",
        "jensen_shannon",
        "mmd",
        "domain_classifier",
    }


def test_ks_on_raw_values_is_scipys() -> None:
    a, b = rng.normal(size=300), rng.normal(0.2, 1.1, size=250)
    found = build_detector("ks").test(NumericData.of(a), NumericData.of(b))
    expected = stats.ks_2samp(a, b)
    assert found.score == pytest.approx(expected.statistic)
    assert found.p_value == pytest.approx(expected.pvalue)
    assert found.drifted == (expected.pvalue < 0.05)


def test_ks_on_histograms_is_scipys_asymptotic_test() -> None:
    # Integer data: a histogram with one bin per integer loses nothing.
    a, b = rng.poisson(20, size=5000).astype(float), rng.poisson(21, size=4000).astype(float)
    binning = Binning.linear(-0.5, 60.5, 1.0)
    ha = numeric_from_histogram(binning, {str(k): v for k, v in binning.histogram(a).items()})
    hb = numeric_from_histogram(binning, {str(k): v for k, v in binning.histogram(b).items()})
    found = build_detector("ks").test(ha, hb)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert found.score == pytest.approx(expected.statistic)
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)
    assert found.drifted


def test_wasserstein_is_scipys_raw_and_weighted() -> None:
    a, b = rng.exponential(2.0, size=400), rng.exponential(2.5, size=300)
    raw = build_detector("wasserstein", {"normalize": False}).test(NumericData.of(a), NumericData.of(b))
    assert raw.score == pytest.approx(stats.wasserstein_distance(a, b))
    normalized = build_detector("wasserstein").test(NumericData.of(a), NumericData.of(b))
    assert normalized.score == pytest.approx(stats.wasserstein_distance(a, b) / a.std())
    values = np.array([1.0, 2.0, 5.0, 9.0])
    wa, wb = np.array([3.0, 1.0, 4.0, 2.0]), np.array([1.0, 5.0, 1.0, 3.0])
    weighted = build_detector("wasserstein", {"normalize": False}).test(
        NumericData(values, wa, binned=True), NumericData(values, wb, binned=True)
    )
    assert weighted.score == pytest.approx(stats.wasserstein_distance(values, values, wa, wb))


def test_chi_square_is_scipys_contingency_test() -> None:
    ref = CategoricalData({"en": 700, "de": 200, "fr": 100})
    cur = CategoricalData({"en": 600, "de": 250, "fr": 120, "es": 30})
    found = build_detector("chi_square").test(ref, cur)
    table = np.array([[200, 700, 0, 100], [250, 600, 30, 120]])  # sorted: de en es fr
    expected = stats.chi2_contingency(table, correction=False)
    assert found.score == pytest.approx(expected.statistic)
    assert found.p_value == pytest.approx(expected.pvalue)
    assert found.drifted
    assert found.details["moved"][0]["category"] in {"en", "es"}


def test_jensen_shannon_is_scipys_base_2_distance() -> None:
    ref = CategoricalData({"ok": 990, "upstream_error": 10})
    cur = CategoricalData({"ok": 900, "upstream_error": 60, "timeout": 40})
    found = build_detector("jensen_shannon").test(ref, cur)
    expected = distance.jensenshannon([990, 0, 10], [900, 40, 60], base=2)
    assert found.score == pytest.approx(expected)
    assert 0 <= found.score <= 1


def test_psi_of_categories_is_the_textbook_formula() -> None:
    ref, cur = CategoricalData({"a": 50, "b": 50}), CategoricalData({"a": 80, "b": 20})
    found = build_detector("psi").test(ref, cur)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert found.score == pytest.approx(expected)
    assert found.drifted


def test_psi_of_numbers_uses_reference_quantile_bins() -> None:
    a = rng.normal(size=5000)
    same = build_detector("psi").test(NumericData.of(a), NumericData.of(rng.normal(size=5000)))
    moved = build_detector("psi").test(NumericData.of(a), NumericData.of(rng.normal(1.0, size=5000)))
    assert same.score < 0.02 and not same.drifted
    assert moved.score > 0.5 and moved.drifted


def _mmd2_brute_force(x: np.ndarray, y: np.ndarray, bandwidth2: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / bandwidth2)
        return out

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def test_mmd_is_the_unbiased_estimate_with_a_permutation_p_value() -> None:
    x, y = rng.normal(size=(60, 5)), rng.normal(0.8, size=(50, 5))
    found = build_detector("mmd").test(EmbeddingData(x), EmbeddingData(y))
    bandwidth2 = found.details["bandwidth"] ** 2
    assert found.score == pytest.approx(_mmd2_brute_force(x, y, bandwidth2))
    assert found.drifted and found.p_value is not None and found.p_value < 0.05
    same = build_detector("mmd").test(EmbeddingData(x), EmbeddingData(rng.normal(size=(50, 5))))
    assert not same.drifted


def test_domain_classifier_separates_shifted_embeddings_and_names_examples() -> None:
    x = rng.normal(size=(300, 32))
    y = rng.normal(size=(300, 32))
    y[:, 0] += 1.0
    ids = [f"req{i}" for i in range(300)]
    found = build_detector("domain_classifier").test(EmbeddingData(x), EmbeddingData(y, ids))
    assert found.score > 0.65 and found.drifted
    assert len(found.details["examples"]) == 5 and all(
        e["id"].startswith("req") for e in found.details["examples"]
    )
    same = build_detector("domain_classifier").test(
        EmbeddingData(x), EmbeddingData(rng.normal(size=(300, 32)))
    )
    assert 0.4 < same.score < 0.58 and not same.drifted


@pytest.mark.parametrize("name", ["ks", "chi_square"])
def test_significance_tests_false_alarm_rate_is_at_most_alpha(name: str) -> None:
    local = np.random.default_rng(11)
    alarms = 0
    trials = 300
    for _ in range(trials):
        ref: SignalData
        cur: SignalData
        if name == "ks":
            ref, cur = NumericData.of(local.lognormal(size=200)), NumericData.of(local.lognormal(size=200))
        else:
            p = [0.6, 0.3, 0.1]
            ref = CategoricalData.of(list(local.choice(["a", "b", "c"], size=200, p=p)))
            cur = CategoricalData.of(list(local.choice(["a", "b", "c"], size=200, p=p)))
        alarms += build_detector(name).test(ref, cur).drifted
    # alpha 0.05, plus two standard errors of 300 trials for the randomness of the test itself.
    assert alarms / trials <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / trials)


def test_default_detector_by_kind_and_sample_size() -> None:
    assert default_detector("numeric", 500, 5000) == "ks"
    assert default_detector("numeric", 5000, 5000) == "wasserstein"
    assert default_detector("categorical", 100, 100) == "chi_square"
    assert default_detector("categorical", 2000, 1500) == "jensen_shannon"
    assert default_detector("embedding", 200, 200) == "mmd"
    assert default_detector("embedding", 2000, 2000) == "domain_classifier"


def test_unknown_detector_and_bad_settings_are_located_config_errors() -> None:
    with pytest.raises(ConfigError) as unknown:
        build_detector("nope", location="monitor.signals.latency_ms")
    assert "unknown detector 'nope'" in str(unknown.value.problems[0])
    with pytest.raises(ConfigError) as bad:
        build_detector("ks", {"alpha": 2.0}, location="monitor.signals.latency_ms")
    assert bad.value.problems[0].location == "monitor.signals.latency_ms.alpha"
    with pytest.raises(ConfigError) as extra:
        build_detector("ks", {"threshold": 0.1}, location="monitor.signals.latency_ms")
    assert extra.value.problems[0].location == "monitor.signals.latency_ms.threshold"


def test_a_detector_refuses_data_of_another_kind() -> None:
    with pytest.raises(InvalidRequest, match="does not test categorical"):
        run_detector(build_detector("ks"), CategoricalData({"a": 1}), CategoricalData({"a": 2}))
