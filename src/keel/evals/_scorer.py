"""``@scorer``: the registry of scorer factories, building a scorer from a suite's
settings, and the base class the built-in scorers share.

A factory is a function whose keyword arguments are the scorer's settings, typed;
``build_scorer`` validates the settings from the suite against that signature (so an
unknown scorer, an unknown setting or a wrong type is a ``ConfigError`` that names its
location) and calls it. The built-in scorers live in ``_scorers_*.py`` and register on
import; ``build_scorer`` and ``scorers`` import them first (``load_builtin_scorers``), so
callers need not.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from keel.core import InvalidRequest, Registry
from keel.evals._types import Case, Output, Score, ScoreContext, Scorer

ScorerFactory = Callable[..., Scorer]

_registry: Registry[ScorerFactory] = Registry("scorer")

_BUILTIN_MODULES = (
    "keel.evals._scorers_match",
    "keel.evals._scorers_json",
    "keel.evals._scorers_similarity",
    "keel.evals._scorers_judge",
    "keel.evals._scorers_custom",
)


def scorer(name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Register a scorer factory under ``name`` (``@scorer("exact_match")``)."""
    return _registry.register(name)


def load_builtin_scorers() -> None:
    """Import the built-in scorer modules (they register themselves). Lazy so that the
    scorer modules can import this one."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def scorers() -> list[str]:
    """Names of every registered scorer."""
    load_builtin_scorers()
    return _registry.names()


def build_scorer(kind: str, settings: Mapping[str, Any] | None = None, *, location: str = "") -> Scorer:
    """The scorer ``kind`` built with ``settings``. ``location`` names the scorer's entry
    in the suite (``scorers[2].regex``) and prefixes every problem
    (``scorers[2].regex.pattern: ...``)."""
    load_builtin_scorers()
    given = dict(settings) if isinstance(settings, Mapping) else settings
    built: Scorer = _registry.build(kind, given, location=location or f"scorer {kind}")
    if isinstance(built, BaseScorer):
        # A score is traced back to the settings as written in the suite, so that
        # ``build_scorer(kind, settings)`` rebuilds the same scorer.
        built.kind = kind
        built.settings = dict(given or {})
    return built


class BaseScorer:
    """Shared behaviour of the built-in scorers: an output whose call failed scores 0
    without being looked at; the expected value comes from the case (``expected``, or
    the case field named by ``field``). Subclasses implement ``check`` (synchronous) or
    override ``evaluate`` (a scorer that calls a model)."""

    kind: str
    settings: Mapping[str, Any]
    binary: bool

    def __init__(self, *, binary: bool, field: str | None = None) -> None:
        self.kind = ""
        self.settings = {}
        self.binary = binary
        self.field = field

    async def score(self, case: Case, output: Output, context: ScoreContext) -> Score:
        if output.error is not None:
            return Score(0.0, False if self.binary else None, f"call failed: {one_line(output.error)}")
        return await self.evaluate(case, output, context)

    async def evaluate(self, case: Case, output: Output, context: ScoreContext) -> Score:
        return self.check(case, output)

    def check(self, case: Case, output: Output) -> Score:
        raise NotImplementedError

    # --- helpers ---------------------------------------------------------------

    def expected(self, case: Case) -> Any:
        """What this case expects: ``case.expected``, or with ``field`` set the case's
        field of that name (its other columns, then its template variables)."""
        if self.field is None:
            value = case.expected
            what = "expected"
        else:
            what = self.field
            value = case.meta[self.field] if self.field in case.meta else case.vars.get(self.field)
        if value is None:
            raise self.case_error(case, f"has no {what!r}")
        return value

    def expected_texts(self, case: Case) -> list[str]:
        """The expected value as one or more texts (a list means any of several answers
        or references)."""
        value = self.expected(case)
        items = value if isinstance(value, list | tuple) else [value]
        texts = [as_text(item) for item in items if item is not None]
        if not texts:
            raise self.case_error(case, f"has an empty {self.field or 'expected'!r}")
        return texts

    def case_error(self, case: Case, problem: str) -> InvalidRequest:
        where = f"case {case.id!r}" + (f" (line {case.line})" if case.line else "")
        return InvalidRequest(f"{where} {problem} for scorer {self.kind or type(self).__name__}")

    def verdict(self, passed: bool, explanation: str) -> Score:
        return Score(1.0 if passed else 0.0, passed, explanation)

    def graded(self, value: float, threshold: float | None, explanation: str) -> Score:
        """A graded value, pass/fail against ``threshold`` when one is set."""
        if threshold is None:
            return Score(value, None, explanation)
        # With a threshold the metric is pass/fail: its value is 1 or 0 (what McNemar's
        # test and pass rates count); the graded value stays in the explanation.
        passed = value >= threshold
        return Score(1.0 if passed else 0.0, passed, f"{explanation} {'≥' if passed else '<'} {threshold:g}")


def as_text(value: Any) -> str:
    """A case value as text: strings as they are, other JSON values as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def show(value: Any, limit: int = 60) -> str:
    """A value quoted for an explanation, shortened to stay on one short line."""
    text = value if isinstance(value, str) else as_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # Strings are quoted, other JSON values written as JSON: 2 is not '2'.
    return repr(text) if isinstance(value, str) else text


def show_list(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(show(v, 40) for v in values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")
