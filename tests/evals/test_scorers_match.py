"""The text-matching scorers and the call-level ones (refusal, latency, cost): pass and
fail paths, and what their explanations say."""

from __future__ import annotations

from typing import Any

import pytest

from keel.core import ConfigError, InvalidRequest
from keel.evals._scorer import build_scorer
from keel.evals._scorers_match import find_numbers, normalize_text
from keel.evals._types import Case, Output, Score, ScoreContext


async def score(
    kind: str, text: str, expected: Any = None, output: Output | None = None, **settings: Any
) -> Score:
    built = build_scorer(kind, settings, location=f"scorers[0].{kind}")
    case = Case("c1", {"question": "?"}, expected=expected, meta={"gold": "Gold answer"}, line=2)
    return await built.score(case, output or Output(text), ScoreContext())


# --- exact match ----------------------------------------------------------------------


async def test_exact_match_strips_by_default_and_is_otherwise_exact() -> None:
    assert await score("exact_match", "  Paris\n", "Paris") == Score(1.0, True, "matches 'Paris'")
    failed = await score("exact_match", "paris", "Paris")
    assert failed == Score(0.0, False, "expected 'Paris', got 'paris'")


async def test_exact_match_normalisations() -> None:
    options = ["lower", "strip_punctuation", "strip_articles", "collapse_whitespace", "strip"]
    assert (await score("exact_match", "The  Eiffel tower!", "eiffel Tower", normalize=options)).passed
    assert not (await score("exact_match", "The Eiffel tower!", "eiffel tower", normalize=["lower"])).passed
    assert normalize_text("  A  b,  THE c. ", frozenset(options)) == "b c"
    # The order of the list does not matter: a fixed order is applied.
    assert normalize_text("The X", frozenset(["strip", "strip_articles", "lower"])) == "x"


async def test_exact_match_accepts_any_of_a_list_and_numbers() -> None:
    assert (await score("exact_match", "NYC", ["New York", "NYC"])).explanation == "matches 'NYC'"
    failed = await score("exact_match", "LA", ["New York", "NYC"])
    assert failed.explanation == "expected one of 'New York', 'NYC', got 'LA'"
    assert (await score("exact_match", "42", 42)).passed


async def test_exact_match_reads_a_case_field() -> None:
    assert (await score("exact_match", "gold answer", "other", normalize=["lower"], field="gold")).passed


# --- contains ------------------------------------------------------------------------


async def test_contains_is_case_insensitive_by_default() -> None:
    assert await score("contains", "The answer is PARIS.", "paris") == Score(1.0, True, "contains 'paris'")
    assert not (await score("contains", "The answer is PARIS.", "paris", case_sensitive=True)).passed
    failed = await score("contains", "London", value="Paris")
    assert failed == Score(0.0, False, "does not contain 'Paris'")


async def test_contains_with_a_list_expected_points_to_any_or_all() -> None:
    with pytest.raises(InvalidRequest, match=r"case 'c1' \(line 2\) expects a list .*contains_any"):
        await score("contains", "x", ["a", "b"])


async def test_contains_any_and_all() -> None:
    assert (await score("contains_any", "I like red", values=["blue", "red"])).explanation == "contains 'red'"
    failed = await score("contains_any", "I like green", values=["blue", "red"])
    assert failed == Score(0.0, False, "contains none of 'blue', 'red'")
    assert (
        await score("contains_all", "red and blue", ["Red", "BLUE"])
    ).explanation == "contains all 2 values"
    failed = await score("contains_all", "red only", ["red", "blue", "green"])
    assert failed == Score(0.0, False, "missing 'blue', 'green' (2 of 3)")


def test_contains_any_refuses_an_empty_list() -> None:
    with pytest.raises(ConfigError, match=r"scorers\[0\]\.values: must not be empty"):
        build_scorer("contains_any", {"values": []}, location="scorers[0]")


# --- regex / starts-with --------------------------------------------------------------


async def test_regex_search_full_flags_and_negate() -> None:
    ok = await score("regex", "Order #12345 shipped", pattern=r"#\d{5}")
    assert ok == Score(1.0, True, "matches '#\\\\d{5}' at '#12345'")
    assert not (await score("regex", "order shipped", pattern=r"#\d+")).passed
    assert (await score("regex", "YES", pattern="yes", flags="i", match="full")).passed
    assert not (await score("regex", "yes indeed", pattern="yes", match="full")).passed
    negated = await score("regex", "my SSN is 123-45-6789", pattern=r"\d{3}-\d{2}-\d{4}", negate=True)
    assert not negated.passed
    assert "(must not)" in negated.explanation
    assert (await score("regex", "no number", pattern=r"\d", negate=True)).passed


def test_regex_unknown_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("regex", {"pattern": "a", "flags": "iz"}, location="scorers[2].regex")
    assert exc.value.problems[0].location == "scorers[2].regex.flags"
    assert "'z'" in exc.value.problems[0].message


async def test_starts_with() -> None:
    assert (await score("starts_with", "  Yes, because...", "yes")).explanation == "starts with 'yes'"
    failed = await score("starts_with", "No.", value="Yes")
    assert not failed.passed
    assert failed.explanation == "does not start with 'Yes': 'No.'"
    assert not (await score("starts_with", "yes", value="Yes", case_sensitive=True)).passed


# --- numeric -------------------------------------------------------------------------


def test_find_numbers() -> None:
    assert find_numbers("It is 1,234.5 dollars, or -3e2 and .5 (v2 is not) 7%") == [1234.5, -300.0, 0.5, 7.0]
    assert find_numbers("\u22124 degrees") == [-4.0]
    assert find_numbers("no numbers here") == []


async def test_numeric_exact_and_within_tolerance() -> None:
    ok = await score("numeric", "The answer is 42.", 42)
    assert ok == Score(1.0, True, "42 is within tolerance of 42 (|diff| 0)")
    failed = await score("numeric", "About 41.5", "42")
    assert failed == Score(0.0, False, "41.5 differs from 42 by 0.5")
    assert (await score("numeric", "About 41.5", 42, abs_tol=0.5)).passed
    assert (await score("numeric", "1,010", 1000, rel_tol=0.01)).passed
    assert not (await score("numeric", "1,020", 1000, rel_tol=0.01)).passed


async def test_numeric_first_or_last_number() -> None:
    text = "Step 1: 3 + 4 = 7. Answer: 7"
    assert not (await score("numeric", text, 7)).passed
    assert (await score("numeric", text, 7, pick="last")).passed


async def test_numeric_without_a_number_and_bad_expected() -> None:
    failed = await score("numeric", "I do not know", 3)
    assert failed == Score(0.0, False, "no number in the output (expected 3)")
    with pytest.raises(InvalidRequest, match="expects 'three', which is not a number"):
        await score("numeric", "3", "three")
    with pytest.raises(InvalidRequest, match="not a number"):
        await score("numeric", "3", True)


def test_numeric_negative_tolerance_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"x\.abs_tol: must be ≥ 0"):
        build_scorer("numeric", {"abs_tol": -1}, location="x")


# --- refusal / latency / cost ---------------------------------------------------------


async def test_refusal_expected_or_not() -> None:
    refusing = "I'm sorry, but I can't help with that request."
    answering = "Sure! Here is a recipe for pancakes."
    assert await score("refusal", answering) == Score(1.0, True, "answered")
    assert await score("refusal", refusing) == Score(0.0, False, "refused (expected an answer)")
    assert await score("refusal", refusing, expect=True) == Score(1.0, True, "refused")
    assert await score("refusal", answering, expect=True) == Score(
        0.0, False, "answered (expected a refusal)"
    )


async def test_latency_and_cost_thresholds() -> None:
    fast = Output("x", latency_ms=120.4, cost_usd=0.0004)
    slow = Output("x", latency_ms=2500, cost_usd=0.02)
    assert await score("latency", "", output=fast, max_ms=500) == Score(1.0, True, "120 ms ≤ 500 ms")
    assert await score("latency", "", output=slow, max_ms=500) == Score(0.0, False, "2500 ms > 500 ms")
    assert await score("cost", "", output=fast, max_usd=0.001) == Score(1.0, True, "$0.0004 ≤ $0.001")
    assert await score("cost", "", output=slow, max_usd=0.001) == Score(0.0, False, "$0.02 > $0.001")
