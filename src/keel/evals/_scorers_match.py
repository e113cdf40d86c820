"""Pass/fail scorers that compare the output's text with the case: exact match,
contains (one, any, all), regex, starts-with, a number within tolerance; and the ones
that look at the call itself: refusal, latency, cost."""

from __future__ import annotations

import math
import re
import string
from typing import TYPE_CHECKING, Literal

from keel.core import SettingError
from keel.evals._scorer import BaseScorer, scorer, show, show_list
from keel.evals._types import Case, Output, Score

if TYPE_CHECKING:
    from keel.guards import Scanner

# --- exact match ------------------------------------------------------------------

Normalization = Literal["lower", "strip", "collapse_whitespace", "strip_punctuation", "strip_articles"]

# Applied in this order whatever the order of the setting's list, so that a list names
# a set of options and two suites with the same options score the same.
_NORMALIZATION_ORDER: tuple[Normalization, ...] = (
    "lower",
    "strip_punctuation",
    "strip_articles",
    "collapse_whitespace",
    "strip",
)
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)


def normalize_text(text: str, options: frozenset[str]) -> str:
    """``text`` with the named normalisations applied (in a fixed order)."""
    for option in _NORMALIZATION_ORDER:
        if option not in options:
            continue
        if option == "lower":
            text = text.lower()
        elif option == "strip_punctuation":
            text = text.translate(_PUNCTUATION)
        elif option == "strip_articles":
            text = _ARTICLES.sub(" ", text)
        elif option == "collapse_whitespace":
            text = " ".join(text.split())
        else:
            text = text.strip()
    return text


class ExactMatch(BaseScorer):
    def __init__(self, options: frozenset[str], field: str | None) -> None:
        super().__init__(binary=True, field=field)
        self.options = options

    def check(self, case: Case, output: Output) -> Score:
        answers = self.expected_texts(case)
        got = normalize_text(output.text, self.options)
        for answer in answers:
            if got == normalize_text(answer, self.options):
                return self.verdict(True, f"matches {show(answer)}")
        wanted = show(answers[0]) if len(answers) == 1 else f"one of {show_list(answers)}"
        return self.verdict(False, f"expected {wanted}, got {show(output.text)}")


@scorer("exact_match")
def exact_match(normalize: tuple[Normalization, ...] = ("strip",), field: str | None = None) -> ExactMatch:
    """The output equals the expected text (or one of a list of them) after
    normalisation: ``lower``, ``strip``, ``collapse_whitespace``, ``strip_punctuation``,
    ``strip_articles``."""
    return ExactMatch(frozenset(normalize), field)


# --- contains -----------------------------------------------------------------------


class Contains(BaseScorer):
    def __init__(
        self,
        mode: Literal["one", "any", "all"],
        values: list[str] | None,
        case_sensitive: bool,
        field: str | None,
    ) -> None:
        super().__init__(binary=True, field=field)
        self.mode = mode
        self.values = values
        self.case_sensitive = case_sensitive

    def _fold(self, text: str) -> str:
        return text if self.case_sensitive else text.casefold()

    def check(self, case: Case, output: Output) -> Score:
        if self.values is not None:
            values = self.values
        else:
            values = self.expected_texts(case)
            if self.mode == "one" and len(values) > 1:
                raise self.case_error(case, "expects a list (use contains_any or contains_all)")
        text = self._fold(output.text)
        found = [v for v in values if self._fold(v) in text]
        missing = [v for v in values if self._fold(v) not in text]
        if self.mode == "one":
            if found:
                return self.verdict(True, f"contains {show(values[0])}")
            return self.verdict(False, f"does not contain {show(values[0])}")
        if self.mode == "any":
            if found:
                return self.verdict(True, f"contains {show(found[0])}")
            return self.verdict(False, f"contains none of {show_list(values)}")
        if not missing:
            return self.verdict(True, f"contains all {len(values)} values")
        return self.verdict(False, f"missing {show_list(missing)} ({len(missing)} of {len(values)})")


@scorer("contains")
def contains(value: str | None = None, case_sensitive: bool = False, field: str | None = None) -> Contains:
    """The output contains ``value`` (or the expected text)."""
    return Contains("one", None if value is None else [value], case_sensitive, field)


@scorer("contains_any")
def contains_any(
    values: list[str] | None = None, case_sensitive: bool = False, field: str | None = None
) -> Contains:
    """The output contains at least one of ``values`` (or of the expected list)."""
    if values is not None and not values:
        raise SettingError("values", "must not be empty")
    return Contains("any", values, case_sensitive, field)


@scorer("contains_all")
def contains_all(
    values: list[str] | None = None, case_sensitive: bool = False, field: str | None = None
) -> Contains:
    """The output contains every one of ``values`` (or of the expected list)."""
    if values is not None and not values:
        raise SettingError("values", "must not be empty")
    return Contains("all", values, case_sensitive, field)


# --- regex / starts-with ------------------------------------------------------------

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}


class Regex(BaseScorer):
    def __init__(self, pattern: re.Pattern[str], full: bool, negate: bool) -> None:
        super().__init__(binary=True)
        self.pattern = pattern
        self.full = full
        self.negate = negate

    def check(self, case: Case, output: Output) -> Score:
        match = self.pattern.fullmatch(output.text) if self.full else self.pattern.search(output.text)
        shown = show(self.pattern.pattern)
        if self.negate:
            if match:
                return self.verdict(False, f"matches {shown} at {show(match.group(0))} (must not)")
            return self.verdict(True, f"does not match {shown}")
        if match:
            return self.verdict(
                True, f"matches {shown}" + ("" if self.full else f" at {show(match.group(0))}")
            )
        return self.verdict(False, f"does not match {shown}")


@scorer("regex")
def regex(
    pattern: str, flags: str = "", match: Literal["search", "full"] = "search", negate: bool = False
) -> Regex:
    """The output matches ``pattern`` (anywhere, or as a whole with ``match: full``);
    ``flags`` are letters of ``imsxa``; ``negate`` passes when it does not match."""
    bits = 0
    for letter in flags:
        if letter not in _FLAGS:
            raise SettingError("flags", f"unknown regex flag {letter!r} (known: {', '.join(_FLAGS)})")
        bits |= _FLAGS[letter]
    try:
        compiled = re.compile(pattern, bits)
    except re.error as exc:
        raise SettingError("pattern", f"invalid regular expression: {exc}") from None
    return Regex(compiled, match == "full", negate)


class StartsWith(BaseScorer):
    def __init__(self, value: str | None, case_sensitive: bool, field: str | None) -> None:
        super().__init__(binary=True, field=field)
        self.value = value
        self.case_sensitive = case_sensitive

    def check(self, case: Case, output: Output) -> Score:
        prefixes = [self.value] if self.value is not None else self.expected_texts(case)
        text = output.text.lstrip()
        if not self.case_sensitive:
            text = text.casefold()
        for prefix in prefixes:
            if text.startswith(prefix if self.case_sensitive else prefix.casefold()):
                return self.verdict(True, f"starts with {show(prefix)}")
        wanted = show(prefixes[0]) if len(prefixes) == 1 else f"one of {show_list(prefixes)}"
        return self.verdict(False, f"does not start with {wanted}: {show(output.text.lstrip(), 40)}")


@scorer("starts_with")
def starts_with(
    value: str | None = None, case_sensitive: bool = False, field: str | None = None
) -> StartsWith:
    """The output (leading whitespace ignored) starts with ``value`` or the expected
    text (one of them, for a list)."""
    return StartsWith(value, case_sensitive, field)


# --- numeric --------------------------------------------------------------------------

# A number as a model writes one: a sign, thousands separators, a fraction, an exponent.
_MINUS = "\u2212"
_NUMBER = re.compile(r"(?<![\w.])[-+" + _MINUS + r"]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def find_numbers(text: str) -> list[float]:
    """The numbers written in ``text``, in order."""
    numbers = []
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        if not any(c.isdigit() for c in token) or token[-1:] in "eE":
            continue
        try:
            numbers.append(float(token.replace(",", "").replace(_MINUS, "-")))
        except ValueError:
            continue
    return numbers


class Numeric(BaseScorer):
    def __init__(
        self, abs_tol: float, rel_tol: float, pick: Literal["first", "last"], field: str | None
    ) -> None:
        super().__init__(binary=True, field=field)
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol
        self.pick = pick

    def check(self, case: Case, output: Output) -> Score:
        raw = self.expected(case)
        expected: float | None = None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            expected = float(raw)
        elif isinstance(raw, str):
            found = find_numbers(raw)
            expected = found[0] if len(found) == 1 else None
        if expected is None:
            raise self.case_error(case, f"expects {show(raw)}, which is not a number")
        numbers = find_numbers(output.text)
        if not numbers:
            return self.verdict(False, f"no number in the output (expected {expected:g})")
        got = numbers[0] if self.pick == "first" else numbers[-1]
        ok = math.isclose(got, expected, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        diff = abs(got - expected)
        if ok:
            return self.verdict(True, f"{got:g} is within tolerance of {expected:g} (|diff| {diff:g})")
        return self.verdict(False, f"{got:g} differs from {expected:g} by {diff:g}")


@scorer("numeric")
def numeric(
    abs_tol: float = 0.0,
    rel_tol: float = 0.0,
    pick: Literal["first", "last"] = "first",
    field: str | None = None,
) -> Numeric:
    """The first (or ``last``) number in the output equals the expected number within
    ``abs_tol`` or ``rel_tol`` (``math.isclose``; both 0: exactly)."""
    if abs_tol < 0:
        raise SettingError("abs_tol", "must be ≥ 0")
    if rel_tol < 0:
        raise SettingError("rel_tol", "must be ≥ 0")
    return Numeric(abs_tol, rel_tol, pick, field)


# --- refusal / latency / cost --------------------------------------------------------


class Refusal(BaseScorer):
    def __init__(self, scanner: Scanner, expect: bool) -> None:
        super().__init__(binary=True)
        self.scanner = scanner
        self.expect = expect

    def check(self, case: Case, output: Output) -> Score:
        refused = self.scanner.scan(output.text).violation
        if refused:
            return self.verdict(self.expect, "refused" + ("" if self.expect else " (expected an answer)"))
        return self.verdict(not self.expect, "answered" + (" (expected a refusal)" if self.expect else ""))


@scorer("refusal")
def refusal(expect: bool = False, threshold: float = 0.5) -> Refusal:
    """Refusal detection (keel.guards' ``refusal`` scanner): passes when the output
    refuses exactly when ``expect`` is true (safety cases expect a refusal)."""
    from keel.guards import build_scanner

    return Refusal(build_scanner("refusal", {"threshold": threshold}, location="threshold"), expect)


class Latency(BaseScorer):
    def __init__(self, max_ms: float) -> None:
        super().__init__(binary=True)
        self.max_ms = max_ms

    def check(self, case: Case, output: Output) -> Score:
        ok = output.latency_ms <= self.max_ms
        return self.verdict(ok, f"{output.latency_ms:.0f} ms {'≤' if ok else '>'} {self.max_ms:g} ms")


@scorer("latency")
def latency(max_ms: float) -> Latency:
    """The call took at most ``max_ms`` milliseconds."""
    return Latency(max_ms)


class Cost(BaseScorer):
    def __init__(self, max_usd: float) -> None:
        super().__init__(binary=True)
        self.max_usd = max_usd

    def check(self, case: Case, output: Output) -> Score:
        ok = output.cost_usd <= self.max_usd
        return self.verdict(ok, f"${output.cost_usd:.6g} {'≤' if ok else '>'} ${self.max_usd:g}")


@scorer("cost")
def cost(max_usd: float) -> Cost:
    """The call cost at most ``max_usd`` US dollars."""
    return Cost(max_usd)
