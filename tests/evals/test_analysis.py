"""analyse and compare_runs on runs built by hand: the arrays they build from cells, and
that what they fill agrees with the statistics on those arrays."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pytest

from keel.core import InvalidRequest
from keel.evals._analysis import ScoreTable, analyse, compare_runs
from keel.evals._results import Cell, Metric, RunResults, Variant
from keel.evals._stats import compare_paired, mean_ci, noise_split
from keel.evals._types import Case, Output, Score


def build(
    values: Mapping[str, Mapping[str, np.ndarray]],
    *,
    binary: frozenset[str] = frozenset(),
    samples: Mapping[tuple[str, str], np.ndarray] | None = None,
    run_id: str = "run-1",
    case_ids: list[str] | None = None,
) -> RunResults:
    """A run from ``variant → metric → [cases, repeats]`` (NaN: no score, and no cell when
    every metric is NaN); ``samples`` give ``[cases, repeats, k]`` judge samples."""
    first = next(iter(values.values()))
    n_cases, n_repeats = np.atleast_2d(next(iter(first.values())).T).T.shape
    ids = case_ids or [f"c{i}" for i in range(n_cases)]
    metrics = sorted({m for by_metric in values.values() for m in by_metric})
    cells = []
    for variant, by_metric in values.items():
        arrays = {m: np.asarray(a, dtype=float).reshape(n_cases, -1) for m, a in by_metric.items()}
        for i, case_id in enumerate(ids):
            for r in range(n_repeats):
                scores = {}
                for m, a in arrays.items():
                    if r < a.shape[1] and not math.isnan(a[i, r]):
                        taken = tuple(
                            (samples or {}).get((variant, m), np.empty((n_cases, n_repeats, 0)))[i, r]
                        )
                        passed = bool(a[i, r] >= 1) if m in binary else None
                        scores[m] = Score(
                            float(a[i, r]), passed, "", tuple(v for v in taken if not math.isnan(v))
                        )
                if scores:
                    cells.append(Cell(case_id, variant, r, Output("answer"), scores))
    return RunResults(
        run_id=run_id,
        suite="suite",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        status="complete",
        cost_usd=0.0,
        variants=[Variant(v, v.split(" / ")[0], v, "demo") for v in values],
        metrics=[Metric(m, "kind", m in binary) for m in metrics],
        cases=[Case(case_id, {}) for case_id in ids],
        cells=cells,
    )


def scores(seed: int, n: int, repeats: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    ok = (generator.random((n, repeats)) < p).astype(float)
    graded = generator.normal(0.6, 0.15, (n, 1)) + generator.normal(0, 0.05, (n, repeats))
    return ok, graded


def test_estimates_comparisons_without_repeats() -> None:
    base_ok, base_graded = scores(1, 30, 1, 0.85)
    cand_ok, cand_graded = scores(2, 30, 1, 0.6)
    results = build(
        {"base": {"ok": base_ok, "rouge": base_graded}, "cand": {"ok": cand_ok, "rouge": cand_graded}},
        binary=frozenset({"ok"}),
    )
    analyse(results, pairs=[("base", "cand")])
    assert set(results.estimates) == {"base", "cand"}
    assert results.estimates["cand"]["ok"] == mean_ci(cand_ok)
    assert results.estimates["base"]["rouge"] == mean_ci(base_graded)
    [pair] = results.comparisons
    assert (pair.baseline, pair.candidate) == ("base", "cand")
    by_metric = {c.metric: c for c in pair.metrics}
    assert by_metric["ok"] == compare_paired(base_ok, cand_ok, metric="ok", binary=True)
    assert by_metric["ok"].test == "mcnemar"
    assert by_metric["rouge"].test == "permutation"
    assert results.noise == {}  # nothing was repeated
    assert results.summary_json()["comparisons"][0]["metrics"][0]["metric"] == "ok"


def test_bootstrap_estimates_and_replacing_what_was_there() -> None:
    ok, graded = scores(3, 20, 1, 0.7)
    results = build({"only": {"ok": ok, "rouge": graded}}, binary=frozenset({"ok"}))
    analyse(results, pairs=[("only", "only")])
    analyse(results, method="bootstrap", seed=5)
    assert results.comparisons == []
    assert results.estimates["only"]["rouge"] == mean_ci(graded, method="bootstrap", seed=5)


def test_repeats_and_missing_cells() -> None:
    base_ok, base_graded = scores(4, 25, 3, 0.8)
    cand_ok, cand_graded = scores(5, 25, 3, 0.8)
    cand_graded[2, 1] = np.nan  # one repeat unscored
    cand_ok[5, :] = cand_graded[5, :] = np.nan  # a case the candidate never reached
    results = build(
        {"base": {"ok": base_ok, "rouge": base_graded}, "cand": {"ok": cand_ok, "rouge": cand_graded}},
        binary=frozenset({"ok"}),
    )
    table = ScoreTable(results)
    np.testing.assert_array_equal(table.values("cand", "rouge"), cand_graded)
    analyse(results, pairs=[("base", "cand")])
    estimate = results.estimates["cand"]["rouge"]
    assert (estimate.n_cases, estimate.n_repeats) == (24, 3)
    assert "clustered" in estimate.method
    by_metric = {c.metric: c for c in results.comparisons[0].metrics}
    assert by_metric["ok"].test == "permutation"  # pass/fail with repeats
    assert by_metric["ok"].n_cases == 24
    assert by_metric["rouge"] == compare_paired(base_graded, cand_graded, metric="rouge", binary=False)
    assert [s.metric for s in results.noise["base"]] == ["ok", "rouge"]
    split = results.noise["cand"][1]
    assert split == noise_split(cand_graded, metric="rouge")
    assert split.generation is not None and split.judge is None


def test_judge_samples_split_judge_noise() -> None:
    generator = np.random.default_rng(6)
    samples = (
        generator.normal(0, 1, (40, 1, 1))
        + generator.normal(0, 0.4, (40, 2, 1))
        + generator.normal(0, 0.3, (40, 2, 3))
    )
    values = samples.mean(axis=2)
    values[0, 0] = 0.0  # a failed call: scored 0 without asking the judge
    samples[0, 0] = np.nan
    results = build({"v": {"judge": values}}, samples={("v", "judge"): samples})
    table = ScoreTable(results)
    built = table.samples("v", "judge")
    assert built is not None and built.shape == (40, 2, 3)
    assert built[0, 0, 0] == 0.0 and np.isnan(built[0, 0, 1:]).all()
    analyse(results)
    [split] = results.noise["v"]
    assert split.judge is not None and split.generation is not None
    assert split == noise_split(built, metric="judge")
    assert table.samples("v", "missing") is None


def test_unknown_variant_in_pairs() -> None:
    ok, _ = scores(7, 5, 1, 0.5)
    results = build({"a": {"ok": ok}, "b": {"ok": ok}})
    with pytest.raises(InvalidRequest, match="'c' is not a variant of run run-1"):
        analyse(results, pairs=[("a", "c")])


def test_compare_runs_pairs_same_variants_over_common_cases() -> None:
    base_ok, base_graded = scores(8, 30, 1, 0.9)
    cand_ok, cand_graded = scores(9, 30, 1, 0.5)
    base = build({"p / demo": {"ok": base_ok, "rouge": base_graded}, "q / demo": {"ok": base_ok}}, run_id="A")
    # The second run dropped the first 5 cases and added 3 new ones.
    ids = [f"c{i}" for i in range(5, 30)] + ["n0", "n1", "n2"]
    new_ok = np.concatenate([cand_ok[5:], np.ones((3, 1))])
    new_graded = np.concatenate([cand_graded[5:], np.ones((3, 1))])
    cand = build({"p / demo": {"ok": new_ok, "rouge": new_graded}}, run_id="B", case_ids=ids)
    [pair] = compare_runs(base, cand)
    assert (pair.baseline, pair.candidate) == ("p / demo [A]", "p / demo [B]")
    by_metric = {c.metric: c for c in pair.metrics}
    assert by_metric["rouge"].n_cases == 25
    assert by_metric["rouge"] == compare_paired(
        base_graded[5:], cand_graded[5:], metric="rouge", binary=False
    )
    assert by_metric["ok"].effect == pytest.approx(float(cand_ok[5:].mean() - base_ok[5:].mean()))


def test_compare_runs_pairs_single_variants_and_refuses_unrelated_runs() -> None:
    ok, graded = scores(10, 12, 1, 0.5)
    base = build({"old": {"ok": ok, "rouge": graded}}, run_id="A", binary=frozenset({"ok"}))
    cand = build({"new": {"ok": 1 - ok, "other": graded}}, run_id="B", binary=frozenset({"ok"}))
    [pair] = compare_runs(base, cand)
    assert (pair.baseline, pair.candidate) == ("old [A]", "new [B]")
    assert [c.metric for c in pair.metrics] == ["ok"]  # only the metric both have
    assert pair.metrics[0].test == "mcnemar"
    two = build({"x": {"ok": ok}, "y": {"ok": ok}}, run_id="C")
    with pytest.raises(InvalidRequest, match="no variant in common"):
        compare_runs(base, two)
    elsewhere = build({"old": {"ok": ok}}, run_id="D", case_ids=[f"z{i}" for i in range(12)])
    with pytest.raises(InvalidRequest, match="no case id in common"):
        compare_runs(base, elsewhere)
