"""``llm_judge``: a model grades the output by a rubric, through the gateway.

The judge is asked for one JSON object ``{"score": ..., "reason": ...}``; a reply that
is not one is read with a ``SCORE: n`` fallback, and a reply neither way understood
scores 0 with that said in the explanation. With ``repeats`` the judge is asked several
times (at a temperature above 0) and each verdict is kept in ``Score.samples``, so the
statistics can separate the judge's noise from the model's.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.core import JSONObject, MissingPrerequisite, ProviderError, SettingError
from keel.evals._scorer import BaseScorer, as_text, one_line, scorer
from keel.evals._types import Case, Output, Score, ScoreContext

_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_PASS = {"pass", "passed", "yes", "true", "correct"}
_FAIL = {"fail", "failed", "no", "false", "incorrect"}


@dataclass(frozen=True, slots=True)
class Scale:
    """``pass_fail``, or a numeric range ``low-high`` normalised to 0..1."""

    name: str
    low: float = 0.0
    high: float = 1.0
    pass_fail: bool = False

    @classmethod
    def parse(cls, text: str) -> Scale:
        if text.strip().lower() in {"pass_fail", "pass/fail", "binary"}:
            return cls("pass_fail", pass_fail=True)
        m = _RANGE.match(text)
        if m is None or float(m.group(1)) >= float(m.group(2)):
            raise ValueError(f"unknown scale {text!r} (pass_fail, or a range such as 1-5)")
        return cls(text.strip(), float(m.group(1)), float(m.group(2)))

    def wanted(self) -> str:
        if self.pass_fail:
            return '"pass" or "fail"'
        return f"a number from {self.low:g} to {self.high:g}"

    def normalise(self, raw: Any) -> float | None:
        """The judge's score as 0..1, None when it is not a score on this scale."""
        if isinstance(raw, str):
            word = raw.strip().strip("*").strip().lower()
            if self.pass_fail and word in _PASS | _FAIL:
                return 1.0 if word in _PASS else 0.0
            try:
                raw = float(word)
            except ValueError:
                return None
        if isinstance(raw, bool):
            return (1.0 if raw else 0.0) if self.pass_fail else None
        if not isinstance(raw, int | float):
            return None
        if not self.low <= raw <= self.high:
            return None
        return (float(raw) - self.low) / (self.high - self.low)


_SYSTEM = (
    "You are a strict, impartial evaluator. Grade the response according to the rubric. "
    'Answer with one JSON object and nothing else: {{"score": {wanted}, "reason": "<one sentence>"}}'
)
_FALLBACK = re.compile(
    r"(?i)\b(?:score|verdict|rating|grade)\b[*_\s]*[:=][*_\s\"']*"
    r"(?P<value>pass(?:ed)?|fail(?:ed)?|yes|no|true|false|-?\d+(?:\.\d+)?)\b"
)
_REASON = re.compile(r"(?im)^[\W_]*(?:reason|explanation|rationale)[\W_]*[:=]\s*(?P<reason>.+)$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def parse_verdict(reply: str, scale: Scale) -> tuple[float | None, str]:
    """``(value in 0..1, reason)`` read from a judge's reply; value None when the reply
    has no score on ``scale``."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", reply):
        try:
            data, _ = decoder.raw_decode(reply, m.start())
        except ValueError:
            continue
        if isinstance(data, dict):
            raw = next((data[k] for k in ("score", "verdict", "rating") if k in data), None)
            if raw is not None:
                reason = data.get("reason") or data.get("explanation") or ""
                return scale.normalise(raw), one_line(str(reason))
    # The last "SCORE: n" line: a judge that reasons first concludes at the end.
    matches = list(_FALLBACK.finditer(reply))
    if matches:
        reason_line = _REASON.search(reply)
        value = scale.normalise(matches[-1].group("value"))
        return value, one_line(reason_line.group("reason") if reason_line else "")
    return None, ""


def render_input(case: Case) -> str:
    """What the judged model was asked: the last user message of a chat case, else the
    case's template variables."""
    if case.messages:
        for message in reversed(case.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    texts = [
                        p.get("text", "")
                        for p in content
                        if isinstance(p, Mapping) and p.get("type") == "text"
                    ]
                    return "\n".join(str(t) for t in texts)
                return "" if content is None else str(content)
    if len(case.vars) == 1:
        return as_text(next(iter(case.vars.values())))
    return "\n".join(f"{key}: {as_text(value)}" for key, value in case.vars.items())


class LLMJudge(BaseScorer):
    def __init__(
        self,
        model: str,
        rubric: str,
        scale: Scale,
        repeats: int,
        temperature: float,
        max_tokens: int,
        threshold: float | None,
        field: str | None,
    ) -> None:
        super().__init__(binary=scale.pass_fail or threshold is not None, field=field)
        self.model = model
        self.rubric = rubric
        self.scale = scale
        self.repeats = repeats
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.threshold = threshold
        self.placeholders = set(_PLACEHOLDER.findall(rubric))

    def messages(self, case: Case, output: Output) -> list[JSONObject]:
        values: dict[str, str] = {name: as_text(value) for name, value in case.vars.items()}
        values["input"] = render_input(case)
        values["output"] = output.text
        if "expected" in self.placeholders or self.field is not None or case.expected is not None:
            values["expected"] = as_text(self.expected(case))
        # Only known names are replaced, so JSON examples in a rubric stay as written.
        prompt = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.rubric)
        if "output" not in self.placeholders:
            prompt += f"\n\n[Input]\n{values['input']}\n\n[Response]\n{output.text}"
            if "expected" in values and "expected" not in self.placeholders:
                prompt += f"\n\n[Reference answer]\n{values['expected']}"
        return [
            {"role": "system", "content": _SYSTEM.format(wanted=self.scale.wanted())},
            {"role": "user", "content": prompt},
        ]

    async def evaluate(self, case: Case, output: Output, context: ScoreContext) -> Score:
        if context.models is None:
            raise MissingPrerequisite("scorer llm_judge needs a model gateway to call its judge")
        messages = self.messages(case, output)
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        replies = await asyncio.gather(
            *(context.models.chat(self.model, messages, **params) for _ in range(self.repeats))
        )
        failed = next((r for r in replies if r.error is not None), None)
        if failed is not None:
            # A judge that cannot be reached says nothing about the output: scoring 0
            # would read as a regression, so the run reports it instead.
            where = f"case {case.id!r}" + (f" (line {case.line})" if case.line else "")
            raise ProviderError(
                f"judge model {self.model!r} failed on {where}: {one_line(str(failed.error))}"
            )
        samples: list[float] = []
        reasons: list[str] = []
        not_understood: list[str] = []
        for reply in replies:
            value, reason = parse_verdict(reply.text, self.scale)
            if value is None:
                not_understood.append(reply.text)
                samples.append(0.0)
            else:
                samples.append(value)
                if reason:
                    reasons.append(reason)
        value = sum(samples) / len(samples)
        return self._score(value, samples, reasons, not_understood)

    def _score(
        self, value: float, samples: list[float], reasons: list[str], not_understood: list[str]
    ) -> Score:
        if self.threshold is not None:
            passed: bool | None = value >= self.threshold
        elif self.scale.pass_fail:
            # With repeats, a majority of the judge's verdicts.
            passed = value >= 0.5
        else:
            passed = None
        if len(samples) == 1:
            head = "judge: " + ("not understood" if not_understood else f"{value:.3g}")
        else:
            shown = ", ".join(f"{s:.3g}" for s in samples)
            head = f"judge mean {value:.3g} over {len(samples)} samples ({shown})"
        parts = [head]
        if reasons:
            parts.append(reasons[0])
        if not_understood:
            reply = one_line(not_understood[0], 80)
            parts.append(f"{len(not_understood)} of {len(samples)} replies not understood, e.g. {reply!r}")
        explanation = " — ".join(parts)
        return Score(value, passed, explanation, tuple(samples) if len(samples) > 1 else ())


@scorer("llm_judge")
def llm_judge(
    model: str,
    rubric: str,
    scale: str = "pass_fail",
    repeats: int = 1,
    temperature: float | None = None,
    max_tokens: int = 400,
    threshold: float | None = None,
    field: str | None = None,
) -> LLMJudge:
    """A judge ``model`` grades the output by ``rubric`` (``{input}``, ``{output}``,
    ``{expected}`` and the case's variables are filled in; without ``{output}`` the input,
    response and reference are appended). ``scale``: ``pass_fail`` or a range such as
    ``1-5`` (normalised to 0..1). ``repeats`` judge samples (mean is the value);
    ``temperature`` defaults to 0 for one sample and 0.7 for several."""
    try:
        parsed = Scale.parse(scale)
    except ValueError as exc:
        raise SettingError("scale", str(exc)) from None
    if repeats < 1:
        raise SettingError("repeats", "must be at least 1")
    if not rubric.strip():
        raise SettingError("rubric", "must not be empty")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise SettingError("threshold", "must be between 0 and 1 (the normalised scale)")
    if temperature is None:
        temperature = 0.0 if repeats == 1 else 0.7
    return LLMJudge(model, rubric, parsed, repeats, temperature, max_tokens, threshold, field)
