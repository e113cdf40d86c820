"""``@scorer`` and ``build_scorer``: the registry, settings validation with locations,
the shared behaviour of the base class (failed calls, the expected value, missing
fields)."""

from __future__ import annotations

from typing import Any

import pytest

from keel.core import ConfigError, InvalidRequest, SettingError
from keel.evals._scorer import BaseScorer, build_scorer, scorer, scorers
from keel.evals._types import Case, Output, Score, ScoreContext

CTX = ScoreContext()

BUILTIN = {
    "exact_match",
    "contains",
    "contains_any",
    "contains_all",
    "regex",
    "starts_with",
    "numeric",
    "refusal",
    "latency",
    "cost",
    "json_valid",
    "json_schema",
    "json_field",
    "tool_call",
    "levenshtein",
    "rouge_l",
    "bleu",
    "embedding_similarity",
    "llm_judge",
    "python",
}


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in exc.value.problems]


def test_every_builtin_scorer_is_registered() -> None:
    assert set(scorers()) >= BUILTIN


def test_unknown_scorer_names_the_location_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("exact_mach", {}, location="scorers[0]")
    [(location, message)] = problems(exc)
    assert location == "scorers[0]"
    assert "unknown scorer 'exact_mach'" in message
    assert "exact_match" in message
    assert "scorers[0]" in str(exc.value)


def test_unknown_setting_names_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("exact_match", {"normalise": ["lower"]}, location="scorers[1].exact_match")
    assert problems(exc) == [("scorers[1].exact_match.normalise", "unknown setting for scorer 'exact_match'")]


def test_wrong_type_and_bad_choice_name_the_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("latency", {"max_ms": "fast"}, location="scorers[3].latency")
    [(location, message)] = problems(exc)
    assert location == "scorers[3].latency.max_ms"
    assert "number" in message
    with pytest.raises(ConfigError) as exc:
        build_scorer("exact_match", {"normalize": ["lower", "shout"]}, location="s")
    assert problems(exc)[0][0] == "s.normalize.1"


def test_missing_required_setting() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("regex", None, location="scorers[2].regex")
    assert problems(exc) == [("scorers[2].regex.pattern", "required setting for scorer 'regex'")]


def test_bad_regex_is_a_config_error_at_the_pattern() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("regex", {"pattern": "(unclosed"}, location="scorers[2].regex")
    [(location, message)] = problems(exc)
    assert location == "scorers[2].regex.pattern"
    assert "invalid regular expression" in message


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="settings must be a mapping"):
        build_scorer("contains", ["x"], location="scorers[0]")  # type: ignore[arg-type]


def test_default_location_names_the_scorer() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("regex", {"pattern": "a", "flags": "q"})
    assert problems(exc)[0][0] == "scorer regex.flags"


def test_built_scorer_keeps_its_kind_and_settings() -> None:
    settings = {"normalize": ["lower", "strip"]}
    built = build_scorer("exact_match", settings, location="x")
    assert built.kind == "exact_match"
    assert built.settings == settings
    assert built.binary is True
    graded = build_scorer("rouge_l", {}, location="x")
    assert graded.binary is False
    assert build_scorer("rouge_l", {"threshold": 0.5}, location="x").binary is True


class _Echo(BaseScorer):
    def __init__(self, field: str | None) -> None:
        super().__init__(binary=True, field=field)

    def check(self, case: Case, output: Output) -> Score:
        return self.verdict(True, f"expected {self.expected(case)!r}")


@scorer("test_echo_expected")
def _echo(field: str | None = None) -> _Echo:
    return _Echo(field)


@scorer("test_checks_value")
def _checks_value(limit: int = 1) -> _Echo:
    if limit < 0:
        raise SettingError("limit", "must be ≥ 0")
    return _Echo(None)


async def test_a_registered_third_party_scorer_builds_and_checks_its_settings() -> None:
    built = build_scorer("test_echo_expected", {"field": "answer"}, location="scorers[0]")
    case = Case("c1", {"answer": "from vars"}, meta={"answer": "from meta"}, line=3)
    score = await built.score(case, Output("x"), CTX)
    assert score.explanation == "expected 'from meta'"
    case2 = Case("c2", {"answer": "from vars"})
    assert (await built.score(case2, Output("x"), CTX)).explanation == "expected 'from vars'"
    with pytest.raises(ConfigError) as exc:
        build_scorer("test_checks_value", {"limit": -1}, location="scorers[4].test_checks_value")
    assert problems(exc) == [("scorers[4].test_checks_value.limit", "must be ≥ 0")]


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        scorer("exact_match")(lambda: _Echo(None))


async def test_a_failed_call_scores_zero_without_looking() -> None:
    built = build_scorer("exact_match", {}, location="x")
    # No expected value: the base never asks for it when the call failed.
    score = await built.score(Case("c1", {}), Output("", error="upstream timeout after 30s"), CTX)
    assert score == Score(0.0, False, "call failed: upstream timeout after 30s")
    graded = build_scorer("levenshtein", {}, location="x")
    score = await graded.score(Case("c1", {}), Output("", error="boom"), CTX)
    assert (score.value, score.passed) == (0.0, None)


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("exact_match", {}),
        ("contains", {}),
        ("contains_any", {}),
        ("starts_with", {}),
        ("numeric", {}),
        ("json_field", {"path": "a"}),
        ("json_schema", {}),
        ("tool_call", {}),
        ("levenshtein", {}),
        ("rouge_l", {}),
        ("bleu", {}),
    ],
)
async def test_missing_expected_names_the_case_line_and_scorer(kind: str, settings: dict[str, Any]) -> None:
    built = build_scorer(kind, settings, location="x")
    with pytest.raises(InvalidRequest) as exc:
        await built.score(Case("c7", {"q": "?"}, line=7), Output("answer"), CTX)
    assert exc.value.message == f"case 'c7' (line 7) has no 'expected' for scorer {kind}"


async def test_missing_field_names_the_field() -> None:
    built = build_scorer("exact_match", {"field": "gold"}, location="x")
    with pytest.raises(InvalidRequest, match=r"case 'c2' \(line 12\) has no 'gold' for scorer exact_match"):
        await built.score(Case("c2", {}, expected="x", line=12), Output("x"), CTX)
