"""The values the evaluation harness passes between its parts.

A *case* is one row of a dataset; a *variant* is one (prompt, model) pair of the
suite's matrix; a *cell* is one case × variant × repeat, answered by one model call
(an ``Output``) and scored by every scorer (one ``Score`` each). The statistics work on
arrays of score values shaped ``[cases, repeats]`` (``[cases, repeats, judge_repeats]``
for a repeated judge) and give ``Estimate`` and ``Comparison`` values that the reports
render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from keel.core import JSONObject


@dataclass(frozen=True, slots=True)
class Case:
    """One dataset row. ``id`` is stable across runs (the row's ``id`` field, or a hash of
    its content); ``vars`` fill the prompt's template; ``expected`` is what the scorers
    compare with (the row's ``expected`` field, any JSON); ``tags`` mark cases a gate
    treats specially (``safety``); ``meta`` holds every other field of the row (scorers
    may read one by name); ``line`` is where the row is in its file, for errors."""

    id: str
    vars: Mapping[str, Any]
    expected: Any = None
    tags: frozenset[str] = frozenset()
    meta: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0
    # A chat history to send as-is when the suite has no prompt template (a dataset
    # exported from production holds the messages themselves).
    messages: tuple[JSONObject, ...] | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the model made: its function name and its arguments (parsed from
    the JSON string the API returns; ``None`` when they were not valid JSON)."""

    name: str
    arguments: Any
    raw_arguments: str


@dataclass(frozen=True, slots=True)
class Output:
    """What one model call answered. ``error`` is set (and ``text`` empty) when the call
    failed for good; scorers then score 0 without being asked."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    request_id: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    # Served from the eval cache (a previous identical cell): it cost nothing this run.
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one output. ``value`` is in [0, 1] for pass/fail scorers
    (1 = pass) and any number for graded ones; ``passed`` is None for graded scorers
    without a threshold. ``samples`` are a repeated judge's individual values (their mean
    is ``value``)."""

    value: float
    passed: bool | None
    explanation: str
    samples: tuple[float, ...] = ()

    def to_json(self) -> JSONObject:
        data: JSONObject = {"value": self.value, "passed": self.passed, "explanation": self.explanation}
        if self.samples:
            data["samples"] = list(self.samples)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Score:
        return cls(
            float(data["value"]),
            data.get("passed"),
            str(data.get("explanation", "")),
            tuple(float(v) for v in data.get("samples", ())),
        )


class ModelCaller(Protocol):
    """How a scorer reaches a model (the LLM judge) or the embedding endpoint: through
    the same gateway as the run, so judge calls are metered and logged too."""

    async def chat(self, model: str, messages: list[JSONObject], **params: Any) -> Output: ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """What a scorer may use besides the case and output: the gateway (``models``) and
    the embedding model to use when the scorer's settings name none."""

    models: ModelCaller | None = None
    embedding_model: str | None = None


class Scorer(Protocol):
    """A built scorer: ``kind`` is its registered name, ``settings`` the arguments it was
    built with (stored with each result so a score can be traced and rebuilt);
    ``binary`` says whether its values are pass/fail (0/1), which chooses McNemar over a
    permutation test when two variants are compared."""

    kind: str
    settings: Mapping[str, Any]
    binary: bool

    async def score(self, case: Case, output: Output, context: ScoreContext) -> Score: ...


Method = Literal["t", "bootstrap"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric's mean over cases with its confidence interval. With repeats the interval
    is clustered by case (repeats of one case are not independent evidence)."""

    mean: float
    low: float
    high: float
    n_cases: int
    n_repeats: int
    level: float
    method: str

    def to_json(self) -> JSONObject:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "n_cases": self.n_cases,
            "n_repeats": self.n_repeats,
            "level": self.level,
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate minus baseline on one metric, paired by case: ``effect`` with its
    interval, the test that gave ``p_value`` (``mcnemar``, ``permutation``,
    ``paired_bootstrap``, ``paired_t``), and ``mde``: the smallest drop this many cases can
    detect with 80% power at ``alpha`` (the power note)."""

    metric: str
    baseline_mean: float
    candidate_mean: float
    effect: float
    low: float
    high: float
    p_value: float
    test: str
    n_cases: int
    alpha: float
    mde: float
    # Pass/fail metrics: cases that passed in the baseline and failed in the candidate, and
    # the reverse (the discordant pairs McNemar's test counts).
    regressions: int = 0
    improvements: int = 0

    def to_json(self) -> JSONObject:
        return {
            "metric": self.metric,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
            "effect": self.effect,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "test": self.test,
            "n_cases": self.n_cases,
            "alpha": self.alpha,
            "mde": self.mde,
            "regressions": self.regressions,
            "improvements": self.improvements,
        }


@dataclass(frozen=True, slots=True)
class NoiseSplit:
    """Where a metric's variance comes from, as variances of one score: between cases,
    between generations of one case (generation noise), and between judge samples of one
    generation (judge noise). ``None`` when the design cannot separate that part (no
    repeats of that kind)."""

    metric: str
    between_cases: float
    generation: float | None
    judge: float | None

    def to_json(self) -> JSONObject:
        return {
            "metric": self.metric,
            "between_cases": self.between_cases,
            "generation": self.generation,
            "judge": self.judge,
        }
