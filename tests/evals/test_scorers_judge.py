"""``llm_judge`` with a fake model caller: JSON verdicts, the ``SCORE: n`` fallback,
unparseable replies, repeats kept as samples, the prompt it sends, failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from keel.core import ConfigError, JSONObject, MissingPrerequisite, ProviderError
from keel.evals._scorer import build_scorer
from keel.evals._scorers_judge import Scale, parse_verdict, render_input
from keel.evals._types import Case, Output, Score, ScoreContext


class FakeJudge:
    """Answers chat calls with the given replies in turn; records what it was sent."""

    def __init__(self, replies: Sequence[str | Output]) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, list[JSONObject], dict[str, Any]]] = []

    async def chat(self, model: str, messages: list[JSONObject], **params: Any) -> Output:
        self.sent.append((model, messages, params))
        reply = self.replies[(len(self.sent) - 1) % len(self.replies)]
        return reply if isinstance(reply, Output) else Output(reply)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the judge does not embed")


CASE = Case("c9", {"question": "What is the capital of France?"}, expected="Paris", line=9)


async def judge(
    replies: Sequence[str | Output], text: str = "Paris.", case: Case = CASE, **settings: Any
) -> tuple[Score, FakeJudge]:
    fake = FakeJudge(replies)
    settings = {"model": "judge-model", "rubric": "Is the answer correct?", **settings}
    built = build_scorer("llm_judge", settings, location="scorers[0].llm_judge")
    return await built.score(case, Output(text), ScoreContext(models=fake)), fake


async def test_json_verdict_pass_fail() -> None:
    result, fake = await judge(['{"score": "pass", "reason": "It names Paris."}'])
    assert result == Score(1.0, True, "judge: 1 — It names Paris.")
    failed, _ = await judge(['Sure. {"score": "fail", "reason": "Wrong city."}'])
    assert failed == Score(0.0, False, "judge: 0 — Wrong city.")
    [(model, messages, params)] = fake.sent
    assert model == "judge-model"
    assert params == {"temperature": 0.0, "max_tokens": 400}
    assert '"pass" or "fail"' in str(messages[0]["content"])


async def test_numeric_scale_is_normalised() -> None:
    result, fake = await judge(['```json\n{"score": 4, "reason": "Mostly right"}\n```'], scale="1-5")
    assert result.value == pytest.approx(0.75)
    assert result.passed is None
    assert "a number from 1 to 5" in str(fake.sent[0][1][0]["content"])
    thresholded, _ = await judge(['{"score": 4}'], scale="1-5", threshold=0.8)
    assert (thresholded.value, thresholded.passed) == (0.75, False)


async def test_fallback_score_line() -> None:
    reply = "The answer is right but terse.\nSCORE: 5\nREASON: correct city"
    result, _ = await judge([reply], scale="1-5")
    assert result == Score(1.0, None, "judge: 1 — correct city")
    verdict, _ = await judge(["**Verdict:** FAIL"])
    assert verdict.value == 0.0
    assert verdict.passed is False


async def test_unparseable_reply_scores_zero_and_says_so() -> None:
    result, _ = await judge(["I think it is probably fine?"])
    assert result.value == 0.0
    assert result.passed is False
    assert result.explanation == (
        "judge: not understood — 1 of 1 replies not understood, e.g. 'I think it is probably fine?'"
    )
    out_of_range, _ = await judge(['{"score": 9}'], scale="1-5")
    assert out_of_range.value == 0.0
    assert "not understood" in out_of_range.explanation


async def test_repeats_are_kept_as_samples() -> None:
    replies = ['{"score": 5, "reason": "great"}', '{"score": 3}', "no idea", '{"score": 4}']
    result, fake = await judge(replies, scale="1-5", repeats=4)
    assert result.samples == (1.0, 0.5, 0.0, 0.75)
    assert result.value == pytest.approx(0.5625)
    assert result.explanation.startswith("judge mean 0.562 over 4 samples (1, 0.5, 0, 0.75) — great — 1 of 4")
    assert len(fake.sent) == 4
    # Several samples are drawn above temperature 0, or they would all be the same.
    assert {p["temperature"] for _, _, p in fake.sent} == {0.7}
    majority, _ = await judge(['{"score": "pass"}', '{"score": "fail"}', '{"score": "pass"}'], repeats=3)
    assert majority.passed is True
    assert majority.samples == (1.0, 0.0, 1.0)


async def test_rubric_placeholders_and_appended_sections() -> None:
    rubric = 'Question: {question}\nAnswer: {output}\nReference: {expected}\nReply like {"score": "pass"}'
    _, fake = await judge(['{"score": "pass"}'], rubric=rubric)
    user = fake.sent[0][1][1]["content"]
    assert user == (
        "Question: What is the capital of France?\nAnswer: Paris.\nReference: Paris\n"
        'Reply like {"score": "pass"}'
    )
    _, fake = await judge(['{"score": "pass"}'], rubric="Grade it. {unknown} stays.")
    user = str(fake.sent[0][1][1]["content"])
    assert user.startswith("Grade it. {unknown} stays.\n\n[Input]\nWhat is the capital of France?")
    assert "[Response]\nParis." in user
    assert user.endswith("[Reference answer]\nParis")


async def test_expected_placeholder_without_expected_names_the_case() -> None:
    from keel.core import InvalidRequest

    with pytest.raises(InvalidRequest, match=r"case 'c1' \(line 3\) has no 'expected' for scorer llm_judge"):
        await judge(
            ['{"score": "pass"}'],
            case=Case("c1", {"q": "x"}, line=3),
            rubric="Compare {output} to {expected}",
        )


def test_render_input_prefers_the_last_user_message() -> None:
    chat = Case(
        "c1",
        {},
        messages=(
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]},
        ),
    )
    assert render_input(chat) == "second"
    assert render_input(Case("c2", {"a": 1, "b": "x"})) == "a: 1\nb: x"


async def test_a_failed_judge_call_is_an_error_not_a_zero() -> None:
    with pytest.raises(ProviderError, match=r"judge model 'judge-model' failed on case 'c9' \(line 9\): 503"):
        await judge([Output("", error="503 no deployment")])


async def test_needs_a_model_caller() -> None:
    built = build_scorer("llm_judge", {"model": "m", "rubric": "r"}, location="x")
    with pytest.raises(MissingPrerequisite, match="needs a model gateway"):
        await built.score(CASE, Output("x"), ScoreContext())


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"scale": "stars"}, "scale", "unknown scale 'stars'"),
        ({"scale": "5-1"}, "scale", "unknown scale"),
        ({"repeats": 0}, "repeats", "at least 1"),
        ({"rubric": "  "}, "rubric", "must not be empty"),
        ({"threshold": 4}, "threshold", "between 0 and 1"),
    ],
)
def test_bad_settings(settings: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("llm_judge", {"model": "m", "rubric": "r", **settings}, location="scorers[5].llm_judge")
    [problem] = exc.value.problems
    assert problem.location == f"scorers[5].llm_judge.{where}"
    assert message in problem.message


def test_binary_only_for_pass_fail_or_a_threshold() -> None:
    assert build_scorer("llm_judge", {"model": "m", "rubric": "r"}, location="x").binary is True
    assert (
        build_scorer("llm_judge", {"model": "m", "rubric": "r", "scale": "1-10"}, location="x").binary
        is False
    )


def test_parse_verdict_variants() -> None:
    five = Scale.parse("1-5")
    assert parse_verdict('{"rating": "3", "explanation": "ok"}', five) == (0.5, "ok")
    assert parse_verdict("{not json} then SCORE = 2", five) == (0.25, "")
    assert parse_verdict('{"reason": "no score"}', five) == (None, "")
    pass_fail = Scale.parse("pass_fail")
    assert parse_verdict('{"score": true}', pass_fail)[0] == 1.0
    assert parse_verdict('{"score": 0}', pass_fail)[0] == 0.0
    assert parse_verdict("verdict: yes", pass_fail)[0] == 1.0
    assert parse_verdict('{"score": true}', five)[0] is None
