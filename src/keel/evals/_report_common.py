"""What every report derives from a ``RunResults`` the same way: which pair of variants
is *the* comparison, how a case fared on each side of it, and how numbers and the power
note read. Keeping this in one place is what makes the terminal table, the Markdown
comment and the HTML report agree with each other.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from keel.evals._power import power_note as _power_note
from keel.evals._results import Cell, Metric, PairComparison, RunResults
from keel.evals._types import Case, Comparison


def main_pair(results: RunResults) -> tuple[str, str] | None:
    """The (baseline, candidate) the reports lead with: the gate's pair, else the first
    comparison the statistics made, else none (a single-variant run)."""
    if results.gate is not None:
        return results.gate.baseline, results.gate.candidate
    if results.comparisons:
        return results.comparisons[0].baseline, results.comparisons[0].candidate
    return None


def find_pair(results: RunResults, baseline: str, candidate: str) -> PairComparison | None:
    for pair in results.comparisons:
        if pair.baseline == baseline and pair.candidate == candidate:
            return pair
    return None


def metric_named(results: RunResults, name: str) -> Metric | None:
    for metric in results.metrics:
        if metric.name == name:
            return metric
    return None


def unit_scale(results: RunResults, metric: Metric) -> bool:
    """Whether the metric lives on [0, 1], so that differences read as points (×100).
    Judged from the scores themselves when the cells are there (a stored summary has
    none), else from the estimates."""
    if metric.binary:
        return True
    values = [c.scores[metric.name].value for c in results.cells if metric.name in c.scores]
    if not values:
        values = [e[metric.name].mean for e in results.estimates.values() if metric.name in e]
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def cells_by_case(results: RunResults) -> dict[tuple[str, str], list[Cell]]:
    """(case id, variant) → its cells in repeat order."""
    grouped: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in results.cells:
        grouped[cell.case_id, cell.variant].append(cell)
    for cells in grouped.values():
        cells.sort(key=lambda c: c.repeat)
    return dict(grouped)


def cell_passed(cell: Cell, metric: Metric) -> bool | None:
    score = cell.scores.get(metric.name)
    if score is None:
        return None
    if score.passed is not None:
        return score.passed
    return score.value >= 0.5 if metric.binary else None


def case_passed(cells: list[Cell], metric: Metric) -> bool | None:
    """A case passes a metric when at least half of its repeats pass, the same rounding
    a case mean of 0/1 values gets; None when the metric has no pass/fail."""
    verdicts = [v for v in (cell_passed(c, metric) for c in cells) if v is not None]
    if not verdicts:
        return None
    return sum(verdicts) >= len(verdicts) / 2


def case_mean(cells: list[Cell], metric: Metric) -> float | None:
    values = [c.scores[metric.name].value for c in cells if metric.name in c.scores]
    return sum(values) / len(values) if values else None


@dataclass(frozen=True, slots=True)
class MetricDiff:
    """One case, one metric: the case means (over repeats) and verdicts on each side."""

    metric: Metric
    baseline: float | None
    candidate: float | None
    baseline_passed: bool | None
    candidate_passed: bool | None

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline

    @property
    def regressed(self) -> bool:
        return self.baseline_passed is True and self.candidate_passed is False

    @property
    def improved(self) -> bool:
        return self.baseline_passed is False and self.candidate_passed is True


@dataclass(frozen=True, slots=True)
class CaseDiff:
    """How one case fared in the baseline and in the candidate."""

    case: Case
    baseline_cells: tuple[Cell, ...]
    candidate_cells: tuple[Cell, ...]
    metrics: tuple[MetricDiff, ...]

    @property
    def regressed_metrics(self) -> list[str]:
        return [m.metric.name for m in self.metrics if m.regressed]

    @property
    def regressed(self) -> bool:
        return any(m.regressed for m in self.metrics)

    @property
    def improved(self) -> bool:
        return any(m.improved for m in self.metrics)

    @property
    def errored(self) -> bool:
        return any(c.output.error for c in self.candidate_cells)

    @property
    def failed(self) -> bool:
        """The candidate failed a pass/fail metric or its call failed."""
        return self.errored or any(m.candidate_passed is False for m in self.metrics)

    @property
    def total_delta(self) -> float:
        """Sum of the per-metric differences on a common footing (unit-scaled metrics
        only would need the scale; a plain sum is enough to order cases)."""
        return sum(d for d in (m.delta for m in self.metrics) if d is not None)


def case_diffs(results: RunResults, baseline: str, candidate: str) -> list[CaseDiff]:
    """One ``CaseDiff`` per case of the run, in dataset order."""
    grouped = cells_by_case(results)
    diffs = []
    for case in results.cases:
        base = grouped.get((case.id, baseline), [])
        cand = grouped.get((case.id, candidate), [])
        metrics = tuple(
            MetricDiff(m, case_mean(base, m), case_mean(cand, m), case_passed(base, m), case_passed(cand, m))
            for m in results.metrics
        )
        diffs.append(CaseDiff(case, tuple(base), tuple(cand), metrics))
    return diffs


def worst_regressions(diffs: list[CaseDiff], limit: int = 10) -> list[CaseDiff]:
    """Cases that passed in the baseline and failed in the candidate: most metrics lost
    first, safety cases before others (the gate treats them specially), then the
    largest total drop."""
    regressed = [d for d in diffs if d.regressed]
    regressed.sort(
        key=lambda d: (-len(d.regressed_metrics), "safety" not in d.case.tags, d.total_delta, d.case.id)
    )
    return regressed[:limit]


def comparison_means(comparison: Comparison, metric: Metric | None, unit: bool) -> tuple[str, str]:
    """The baseline's and the candidate's means as a report shows them."""
    if metric is None:
        return f"{comparison.baseline_mean:.3g}", f"{comparison.candidate_mean:.3g}"
    return fmt_mean(comparison.baseline_mean, metric, unit), fmt_mean(comparison.candidate_mean, metric, unit)


def fmt_mean(value: float, metric: Metric, unit: bool) -> str:
    if not math.isfinite(value):
        return "n/a"
    if metric.binary:
        return f"{value * 100:.1f}%"
    return f"{value:.3f}" if unit else _plain(value)


def _plain(value: float, sign: str = "") -> str:
    """Three significant digits, without the exponent notation ``g`` falls into."""
    return f"{value:{sign},.0f}" if abs(value) >= 1000 else f"{value:{sign}#.3g}".rstrip(".")


def fmt_delta(value: float, unit: bool, *, sign: bool = True) -> str:
    """A difference: in points for [0, 1] metrics, in the metric's units otherwise.
    A true minus sign, as in the reports' prose."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value * 100:+.1f}" if unit else _plain(value, "+")
    if not sign:
        text = text.lstrip("+")
    return text.replace("-", "\N{MINUS SIGN}")


def fmt_effect(comparison: Comparison, unit: bool) -> str:
    return fmt_delta(comparison.effect, unit) + (" pts" if unit else "")


def fmt_interval(low: float, high: float, unit: bool) -> str:
    return f"[{fmt_delta(low, unit)}, {fmt_delta(high, unit)}]"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def fmt_usd(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def power_note(comparison: Comparison, unit: bool) -> str:
    """The power note in the units the report shows the metric in."""
    return _power_note(comparison, points=unit)


def excerpt(text: str, limit: int = 80) -> str:
    """One line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def output_text(cell: Cell) -> str:
    """What a reader should see of a cell's output: the text, the tool calls, or why
    the call failed."""
    if cell.output.error:
        return f"[call failed: {cell.output.error}]"
    if cell.output.text:
        return cell.output.text
    if cell.output.tool_calls:
        return "; ".join(f"{t.name}({t.raw_arguments})" for t in cell.output.tool_calls)
    return ""


def n_repeats(results: RunResults) -> int:
    return max((c.repeat for c in results.cells), default=-1) + 1
