"""The gate: its settings' validation (with locations), the metric check a suite load
runs, and the verdict on runs built by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import yaml

from keel.core import ConfigError, InvalidRequest
from keel.evals._analysis import analyse
from keel.evals._gate import GateSettings, check_gate, evaluate_gate, parse_gate
from keel.evals._results import Cell, Metric, PairComparison, RunResults, Variant
from keel.evals._types import Case, Comparison, Output, Score

GATE = """
baseline: "support@production"
candidate: "support@candidate"
alpha: 0.05
rules:
  - metric: accuracy
    max_drop: 0.02
  - metric: accuracy
    min: 0.8
  - metric: safe
    tag: safety
    all_pass: true
"""


def settings(text: str = GATE) -> GateSettings:
    return parse_gate(yaml.safe_load(text))


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_gate(data)
    return [(p.location, p.message) for p in info.value.problems]


# -- settings -------------------------------------------------------------------------


def test_parse_the_documented_gate() -> None:
    gate = settings()
    assert (gate.baseline, gate.candidate, gate.alpha) == ("support@production", "support@candidate", 0.05)
    assert [r.text(gate.alpha) for r in gate.rules] == [
        "accuracy must not drop by more than 0.02 (p < 0.05)",
        "accuracy must be at least 0.8",
        "every case tagged 'safety' must pass safe",
    ]


def test_a_rule_needs_exactly_one_kind() -> None:
    both = {
        "baseline": "b",
        "rules": [{"metric": "m", "min": 0.5}, {"metric": "m", "min": 0.5, "max_drop": 0.1}],
    }
    assert problems(both) == [
        ("gate.rules[1]", "a rule needs exactly one of max_drop, min, all_pass (got max_drop and min)")
    ]
    assert problems({"rules": [{"metric": "m"}]}) == [
        ("gate.rules[0]", "a rule needs exactly one of max_drop, min, all_pass")
    ]
    [(where, message)] = problems({"rules": [{"metric": "m", "all_pass": False}]})
    assert where == "gate.rules[0]" and "all_pass must be true" in message


def test_unknown_keys_bad_values_and_missing_keys_are_located() -> None:
    [(where, message)] = problems({"rules": [{"metric": "m", "min": 0.5, "maxdrop": 0.1}]})
    assert where == "gate.rules[0].maxdrop"
    assert message.startswith("unknown key 'maxdrop' (allowed: metric, max_drop, min, all_pass, tag)")
    [(where, message)] = problems({"baseline": "b", "rules": [{"metric": "m", "max_drop": -0.1}]})
    assert where == "gate.rules[0].max_drop"
    assert "greater than or equal to 0" in message
    assert problems({"alpha": 0.05}) == [("gate.rules", "missing required key 'rules'")]
    [(where, _)] = problems({"rules": []})
    assert where == "gate.rules"
    [(where, _)] = problems({"rules": [{"metric": "m", "min": 1}], "treshold": 1})
    assert where == "gate.treshold"


def test_max_drop_needs_a_baseline() -> None:
    assert problems({"rules": [{"metric": "m", "max_drop": 0.1}]}) == [
        ("gate", "a max_drop rule compares with a baseline: set baseline")
    ]
    assert parse_gate({"rules": [{"metric": "m", "min": 0.5}]}).baseline is None


def test_check_gate_names_the_unknown_metrics() -> None:
    check_gate(settings(), ["accuracy", "safe"])
    with pytest.raises(ConfigError) as info:
        check_gate(settings(), ["accuracy", "rouge"])
    [problem] = info.value.problems
    assert problem.location == "rules[2].metric"
    assert problem.message == "unknown metric 'safe' (the suite's metrics: accuracy, rouge)"
    with pytest.raises(ConfigError, match=r"gate\.rules\[2\]\.metric"):
        check_gate(settings(), ["accuracy"], location="gate")


# -- verdict --------------------------------------------------------------------------

N = 60


def run(
    accuracy: dict[str, np.ndarray],
    safe: dict[str, np.ndarray] | None = None,
    *,
    safety_cases: int = 5,
) -> RunResults:
    """Variants by id with pass/fail ``accuracy`` ``[cases, repeats]``; ``safe`` passes
    everywhere unless given. The first ``safety_cases`` cases are tagged ``safety``."""
    cells = []
    for variant, acc in accuracy.items():
        acc = acc.reshape(N, -1)
        safe_values = (safe or {}).get(variant, np.ones_like(acc)).reshape(N, -1)
        for i in range(N):
            for r in range(acc.shape[1]):
                scores = {"accuracy": Score(float(acc[i, r]), bool(acc[i, r]), "")}
                if not np.isnan(safe_values[i, r]):
                    scores["safe"] = Score(float(safe_values[i, r]), bool(safe_values[i, r]), "")
                cells.append(Cell(f"c{i}", variant, r, Output("answer"), scores))
    return RunResults(
        run_id="r",
        suite="s",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        status="complete",
        cost_usd=0.0,
        variants=[Variant(v, v, v, "demo") for v in accuracy],
        metrics=[Metric("accuracy", "exact_match", True), Metric("safe", "refusal", True)],
        cases=[
            Case(f"c{i}", {}, tags=frozenset({"safety"}) if i < safety_cases else frozenset())
            for i in range(N)
        ],
        cells=cells,
    )


def passing(p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(N) < p).astype(float)


def test_a_worse_candidate_fails_and_an_equivalent_one_passes() -> None:
    base = passing(0.9, 1)
    worse = base.copy()
    worse[np.flatnonzero(base)[:15]] = 0.0  # 15 regressions, no improvement
    results = run({"base": base, "worse": worse, "same": base.copy()})
    analyse(results, pairs=[("base", "worse"), ("base", "same")])
    gate = settings()
    bad = evaluate_gate(gate, results, "base", "worse")
    assert not bad.passed
    drop, minimum, safety = bad.checks
    assert not drop.passed
    assert "p = 6.1e-05 (mcnemar), 60 cases, 15 regressed, 0 improved" in drop.detail
    assert "effect -0.25" in drop.detail
    assert minimum.passed is bool(worse.mean() >= 0.8)
    assert safety.passed and safety.detail == "all 5 cases passed"
    good = evaluate_gate(gate, results, "base", "same")
    assert good.passed
    assert "this run can detect a drop of ≥" in good.checks[0].detail
    assert good.to_json()["passed"] is True
    assert (good.baseline, good.candidate) == ("base", "same")


def test_a_drop_that_is_not_significant_passes_with_the_power_note() -> None:
    base = passing(0.9, 2)
    cand = base.copy()
    cand[np.flatnonzero(base)[:3]] = 0.0  # 5 points lower, but 3 discordant pairs prove nothing
    results = run({"base": base, "cand": cand})
    verdict = evaluate_gate(settings(), results, "base", "cand")  # not analysed: computed here
    drop = verdict.checks[0]
    assert drop.passed
    assert "not significant at α = 0.05" in drop.detail
    assert "with 60 cases this run can detect a drop of ≥" in drop.detail


def test_the_gate_uses_the_stored_comparison() -> None:
    base = passing(0.9, 3)
    results = run({"base": base, "cand": base.copy()})
    stored = Comparison("accuracy", 0.9, 0.5, -0.4, -0.5, -0.3, 0.001, "mcnemar", 60, 0.05, 0.1, 24, 0)
    results.comparisons = [PairComparison("base", "cand", (stored,))]
    [drop] = evaluate_gate(
        parse_gate({"baseline": "b", "rules": [{"metric": "accuracy", "max_drop": 0.1}]}),
        results,
        "base",
        "cand",
    ).checks
    assert not drop.passed
    assert "effect -0.4" in drop.detail


def test_min_rule() -> None:
    accuracy = passing(0.75, 4)
    results = run({"cand": accuracy})
    gate = parse_gate({"rules": [{"metric": "accuracy", "min": 0.8}, {"metric": "accuracy", "min": 0.5}]})
    low, high = evaluate_gate(gate, results, None, "cand").checks
    assert not low.passed and high.passed
    assert (
        low.detail.startswith(f"mean {accuracy.mean():.4g} (")
        and "95% CI" in low.detail
        and low.detail.endswith("60 cases")
    )


def test_safety_cases_must_all_pass_in_every_repeat() -> None:
    acc = np.ones((N, 3))
    safe = np.ones((N, 3))
    safe[2, 1] = 0.0  # one repeat of a safety case fails
    safe[30, :] = 0.0  # an untagged case failing does not count
    results = run({"cand": acc}, {"cand": safe})
    gate = parse_gate({"rules": [{"metric": "safe", "tag": "safety", "all_pass": True}]})
    [check] = evaluate_gate(gate, results, None, "cand").checks
    assert not check.passed
    assert check.detail == "1 of 5 cases failed: c2 (repeat 1)"
    everything = parse_gate({"rules": [{"metric": "safe", "all_pass": True}]})
    [check] = evaluate_gate(everything, results, None, "cand").checks
    assert check.detail == "2 of 60 cases failed: c2 (repeat 1), c30 (repeats 0, 1, 2)"


def test_unscored_and_missing_safety_cases_fail() -> None:
    safe = np.ones(N)
    safe[1] = np.nan  # the run stopped before scoring it
    results = run({"cand": np.ones(N)}, {"cand": safe})
    gate = parse_gate({"rules": [{"metric": "safe", "tag": "safety", "all_pass": True}]})
    [check] = evaluate_gate(gate, results, None, "cand").checks
    assert not check.passed and check.detail == "1 not scored: c1"
    untagged = run({"cand": np.ones(N)}, safety_cases=0)
    [check] = evaluate_gate(gate, untagged, None, "cand").checks
    assert not check.passed and check.detail == "no case is tagged 'safety'"


def test_a_tag_limits_a_drop_rule_to_its_cases() -> None:
    base = np.ones(N)
    cand = np.ones(N)
    cand[:20] = 0.0  # every safety case regresses
    results = run({"base": base, "cand": cand}, safety_cases=20)
    analyse(results, pairs=[("base", "cand")])
    gate = parse_gate({"baseline": "b", "rules": [{"metric": "accuracy", "tag": "safety", "max_drop": 0.5}]})
    [check] = evaluate_gate(gate, results, "base", "cand").checks
    assert check.rule == "accuracy must not drop by more than 0.5 on cases tagged 'safety' (p < 0.05)"
    assert not check.passed
    assert "20 cases" in check.detail and "effect -1" in check.detail


def test_bad_variants_and_metrics() -> None:
    results = run({"base": np.ones(N), "cand": np.ones(N)})
    with pytest.raises(InvalidRequest, match="gate candidate 'nope' is not a variant"):
        evaluate_gate(settings(), results, "base", "nope")
    with pytest.raises(InvalidRequest, match="needs a baseline variant"):
        evaluate_gate(settings(), results, None, "cand")
    unknown = parse_gate({"rules": [{"metric": "bleu", "min": 0.5}]})
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        evaluate_gate(unknown, results, None, "cand")
