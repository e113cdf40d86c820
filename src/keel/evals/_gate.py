"""The suite's ``gate:`` section and its verdict on a run.

    gate:
      baseline: "support@production"     # variant selectors (the suite resolves them)
      candidate: "support@candidate"
      alpha: 0.05
      rules:
        - metric: accuracy
          max_drop: 0.02       # fail if the candidate is lower by more than 0.02 with p < alpha
        - metric: accuracy
          min: 0.8             # fail if the candidate's mean is below 0.8
        - metric: safe
          tag: safety
          all_pass: true       # fail if any case tagged 'safety' fails 'safe' (any repeat)

Higher scores are better for every metric. ``tag`` limits any rule to the cases carrying
it. A drop fails the gate only when it is both larger than allowed and significant: a
run too small to tell says so in the check's detail (the power note), and passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from keel.core import ConfigError, ConfigProblem, InvalidRequest
from keel.evals._analysis import ScoreTable
from keel.evals._power import power_note
from keel.evals._results import GateCheck, GateVerdict, Metric, RunResults
from keel.evals._stats import compare_paired, mean_ci
from keel.evals._types import Comparison, Estimate, Score

__all__ = ["GateRule", "GateSettings", "check_gate", "evaluate_gate", "parse_gate"]

_KINDS = ("max_drop", "min", "all_pass")
# Failing cases listed by name in a check's detail; the rest are counted.
_LISTED = 10


class GateRule(BaseModel):
    """One rule: a metric and exactly one of ``max_drop``, ``min`` or ``all_pass``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(min_length=1)
    max_drop: float | None = Field(default=None, ge=0)
    min: float | None = None
    all_pass: bool | None = None
    tag: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> GateRule:
        given = [name for name in _KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(f"a rule needs exactly one of max_drop, min, all_pass{got}")
        if self.all_pass is False:
            raise ValueError("all_pass must be true (leave the rule out to not check it)")
        return self

    def text(self, alpha: float) -> str:
        """The rule as a sentence (``GateCheck.rule``)."""
        where = f" on cases tagged {self.tag!r}" if self.tag else ""
        if self.max_drop is not None:
            return f"{self.metric} must not drop by more than {self.max_drop:g}{where} (p < {alpha:g})"
        if self.min is not None:
            return f"{self.metric} must be at least {self.min:g}{where}"
        return f"every case{f' tagged {self.tag!r}' if self.tag else ''} must pass {self.metric}"


class GateSettings(BaseModel):
    """The ``gate:`` section. ``baseline`` and ``candidate`` are variant selectors the
    suite resolves; a baseline is needed only by ``max_drop`` rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: str | None = None
    candidate: str | None = None
    alpha: float = Field(default=0.05, gt=0, lt=1)
    rules: list[GateRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _baseline_for_drops(self) -> GateSettings:
        if self.baseline is None and any(rule.max_drop is not None for rule in self.rules):
            raise ValueError("a max_drop rule compares with a baseline: set baseline")
        return self


def _where(location: str, loc: Iterable[int | str]) -> str:
    out = location
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_gate(data: Mapping[str, Any], *, location: str = "gate") -> GateSettings:
    """The gate section validated, or a ``ConfigError`` whose problems say where
    (``gate.rules[1].max_drop``)."""
    try:
        return GateSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message: str = error["msg"]
            if error["type"] == "extra_forbidden":
                allowed = GateRule.model_fields if "rules" in loc else GateSettings.model_fields
                message = f"unknown key {loc[-1]!r} (allowed: {', '.join(allowed)})"
            elif error["type"] == "missing":
                message = f"missing required key {loc[-1]!r}"
            elif error["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            problems.append(ConfigProblem(_where(location, loc), message))
        raise ConfigError(problems) from None


def check_gate(settings: GateSettings, metric_names: Iterable[str], *, location: str = "") -> None:
    """Every rule names one of the suite's metrics, or a ``ConfigError`` with a problem
    per rule that does not, located ``rules[1].metric`` under ``location``."""
    names = list(metric_names)
    prefix = f"{location}." if location else ""
    problems = [
        ConfigProblem(
            f"{prefix}rules[{i}].metric",
            f"unknown metric {rule.metric!r} (the suite's metrics: {', '.join(names) or 'none'})",
        )
        for i, rule in enumerate(settings.rules)
        if rule.metric not in names
    ]
    if problems:
        raise ConfigError(problems)


# -- evaluation -----------------------------------------------------------------------


def _stored_comparison(results: RunResults, baseline: str, candidate: str, metric: str) -> Comparison | None:
    for pair in results.comparisons:
        if pair.baseline == baseline and pair.candidate == candidate:
            for comparison in pair.metrics:
                if comparison.metric == metric:
                    return comparison
    return None


def _tagged(results: RunResults, tag: str | None) -> list[str]:
    return [case.id for case in results.cases if tag is None or tag in case.tags]


def _drop_check(
    rule: GateRule, settings: GateSettings, results: RunResults, metric: Metric, baseline: str, candidate: str
) -> GateCheck:
    assert rule.max_drop is not None
    text = rule.text(settings.alpha)
    comparison = None if rule.tag else _stored_comparison(results, baseline, candidate, metric.name)
    if comparison is None:
        table = ScoreTable(results, _tagged(results, rule.tag))
        comparison = compare_paired(
            table.values(baseline, metric.name),
            table.values(candidate, metric.name),
            metric=metric.name,
            binary=metric.binary,
            alpha=settings.alpha,
        )
    c = comparison
    if c.n_cases == 0:
        return GateCheck(text, False, "no case was scored on both baseline and candidate")
    significant = c.p_value < settings.alpha
    dropped = c.effect < -rule.max_drop
    detail = (
        f"{c.baseline_mean:.4g} → {c.candidate_mean:.4g}: effect {c.effect:+.4g} "
        f"(CI {c.low:+.4g} to {c.high:+.4g}), p = {c.p_value:.3g} ({c.test}), {c.n_cases} cases"
    )
    if metric.binary:
        detail += f", {c.regressions} regressed, {c.improvements} improved"
    if dropped and not significant:
        detail += f"; the drop is not significant at α = {settings.alpha:g}"
    if not dropped or not significant:
        detail += f"; {power_note(c)}"
    return GateCheck(text, not (dropped and significant), detail)


def _min_check(rule: GateRule, settings: GateSettings, results: RunResults, candidate: str) -> GateCheck:
    assert rule.min is not None
    text = rule.text(settings.alpha)
    estimate: Estimate | None = None
    if rule.tag is None:
        estimate = results.estimates.get(candidate, {}).get(rule.metric)
    if estimate is None:
        table = ScoreTable(results, _tagged(results, rule.tag))
        estimate = mean_ci(table.values(candidate, rule.metric))
    if estimate.n_cases == 0:
        return GateCheck(text, False, "no case was scored")
    detail = (
        f"mean {estimate.mean:.4g} ({estimate.level:.0%} CI {estimate.low:.4g} to {estimate.high:.4g}), "
        f"{estimate.n_cases} cases"
    )
    return GateCheck(text, estimate.mean >= rule.min, detail)


def _fails(score: Score) -> bool:
    """A score fails when its scorer said so, or, for a scorer that gives no verdict,
    when it is below full marks."""
    return score.passed is False or (score.passed is None and score.value < 1)


def _all_pass_check(rule: GateRule, settings: GateSettings, results: RunResults, candidate: str) -> GateCheck:
    text = rule.text(settings.alpha)
    case_ids = _tagged(results, rule.tag)
    if not case_ids:
        what = f"tagged {rule.tag!r}" if rule.tag else "in the run"
        return GateCheck(text, False, f"no case is {what}")
    wanted = set(case_ids)
    failed: dict[str, list[int]] = {}
    scored: set[str] = set()
    for cell in results.cells:
        if cell.variant != candidate or cell.case_id not in wanted:
            continue
        score = cell.scores.get(rule.metric)
        if score is None:
            continue
        scored.add(cell.case_id)
        if _fails(score):
            failed.setdefault(cell.case_id, []).append(cell.repeat)
    unscored = [case_id for case_id in case_ids if case_id not in scored]
    parts = []
    if failed:
        listed = [
            f"{case_id} (repeat{'s' if len(reps) > 1 else ''} {', '.join(map(str, sorted(reps)))})"
            for case_id, reps in list(failed.items())[:_LISTED]
        ]
        more = f" and {len(failed) - _LISTED} more" if len(failed) > _LISTED else ""
        parts.append(f"{len(failed)} of {len(case_ids)} cases failed: {', '.join(listed)}{more}")
    if unscored:
        more = f" and {len(unscored) - _LISTED} more" if len(unscored) > _LISTED else ""
        parts.append(f"{len(unscored)} not scored: {', '.join(unscored[:_LISTED])}{more}")
    if not parts:
        return GateCheck(text, True, f"all {len(case_ids)} cases passed")
    return GateCheck(text, False, "; ".join(parts))


def evaluate_gate(
    settings: GateSettings, results: RunResults, baseline: str | None, candidate: str
) -> GateVerdict:
    """The gate's verdict on ``candidate`` (and ``baseline``, variant ids already
    resolved from the settings' selectors). Uses the run's stored comparisons and
    estimates when present (``analyse`` fills them), computing what is missing; rules on
    a tag are computed on the tagged cases."""
    metrics = {metric.name: metric for metric in results.metrics}
    check_gate(settings, metrics)
    variants = [variant.id for variant in results.variants]
    for role, name in (("candidate", candidate), ("baseline", baseline)):
        if name is not None and name not in variants:
            raise InvalidRequest(
                f"gate {role} {name!r} is not a variant of this run (variants: {', '.join(variants)})"
            )
    checks = []
    for rule in settings.rules:
        if rule.max_drop is not None:
            if baseline is None:
                raise InvalidRequest(f"gate rule {rule.text(settings.alpha)!r} needs a baseline variant")
            checks.append(_drop_check(rule, settings, results, metrics[rule.metric], baseline, candidate))
        elif rule.min is not None:
            checks.append(_min_check(rule, settings, results, candidate))
        else:
            checks.append(_all_pass_check(rule, settings, results, candidate))
    return GateVerdict(baseline or "", candidate, tuple(checks))
