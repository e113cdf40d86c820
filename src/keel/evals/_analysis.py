"""What the statistics make of a run: every variant's estimates, the paired comparisons
the suite asks for, and the noise split where cases were repeated or judged repeatedly;
and the comparison of two stored runs case by case.

The statistics work on arrays; ``ScoreTable`` builds them from a run's cells: one
variant x metric is ``[cases, repeats]`` (NaN where a cell is missing, so a stopped run
still analyses what it finished) and, for a repeated judge, ``[cases, repeats, samples]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from keel.core import InvalidRequest
from keel.evals._results import Metric, PairComparison, RunResults
from keel.evals._stats import compare_paired, mean_ci, noise_split
from keel.evals._types import Estimate, NoiseSplit, Score

__all__ = ["ScoreTable", "analyse", "compare_runs", "compare_variants"]

Floats = NDArray[np.float64]


class ScoreTable:
    """A run's scores indexed by variant and metric, rows in ``case_ids`` order (by
    default the run's cases, then any case only the cells mention). Cells of cases not in
    ``case_ids`` are left out."""

    def __init__(self, results: RunResults, case_ids: Iterable[str] | None = None) -> None:
        if case_ids is None:
            ids = [case.id for case in results.cases]
            known = set(ids)
            for cell in results.cells:
                if cell.case_id not in known:
                    known.add(cell.case_id)
                    ids.append(cell.case_id)
        else:
            ids = list(case_ids)
        self.case_ids: list[str] = ids
        index = {case_id: i for i, case_id in enumerate(ids)}
        self.repeats: dict[str, int] = {}
        self._scores: dict[tuple[str, str], list[tuple[int, int, Score]]] = {}
        for cell in results.cells:
            row = index.get(cell.case_id)
            if row is None:
                continue
            self.repeats[cell.variant] = max(self.repeats.get(cell.variant, 0), cell.repeat + 1)
            for name, score in cell.scores.items():
                self._scores.setdefault((cell.variant, name), []).append((row, cell.repeat, score))

    def values(self, variant: str, metric: str) -> Floats:
        """``[cases, repeats]`` of score values, NaN where no cell scored."""
        out = np.full((len(self.case_ids), max(self.repeats.get(variant, 1), 1)), np.nan)
        for row, repeat, score in self._scores.get((variant, metric), ()):
            out[row, repeat] = score.value
        return out

    def samples(self, variant: str, metric: str) -> Floats | None:
        """``[cases, repeats, judge samples]`` when any score of this variant x metric has
        samples, else None. A score without samples (its call failed before the judge ran)
        counts as one sample: its value is still that generation's score."""
        scores = self._scores.get((variant, metric), ())
        width = max((len(score.samples) for _, _, score in scores), default=0)
        if width == 0:
            return None
        out = np.full((len(self.case_ids), max(self.repeats.get(variant, 1), 1), width), np.nan)
        for row, repeat, score in scores:
            taken = score.samples or (score.value,)
            out[row, repeat, : len(taken)] = taken
        return out

    def rows(self, case_ids: Iterable[str]) -> list[int]:
        wanted = set(case_ids)
        return [i for i, case_id in enumerate(self.case_ids) if case_id in wanted]


def _check_variants(results: RunResults, names: Iterable[str]) -> None:
    known = [variant.id for variant in results.variants]
    for name in names:
        if name not in known:
            raise InvalidRequest(
                f"{name!r} is not a variant of run {results.run_id} (variants: {', '.join(known)})"
            )


def _noise(table: ScoreTable, variant: str, metric: Metric) -> NoiseSplit | None:
    samples = table.samples(variant, metric.name)
    if samples is not None:
        return noise_split(samples, metric=metric.name)
    if table.repeats.get(variant, 1) > 1:
        return noise_split(table.values(variant, metric.name), metric=metric.name)
    return None


def compare_variants(
    table: ScoreTable,
    baseline: str,
    candidate: str,
    metrics: Sequence[Metric],
    *,
    alpha: float = 0.05,
    level: float = 0.95,
    seed: int = 0,
    candidate_table: ScoreTable | None = None,
    names: tuple[str, str] | None = None,
) -> PairComparison:
    """Every metric of ``candidate`` against ``baseline``, paired by the table's rows
    (``candidate_table`` when the candidate's scores come from another run with the same
    rows)."""
    other = candidate_table or table
    comparisons = tuple(
        compare_paired(
            table.values(baseline, metric.name),
            other.values(candidate, metric.name),
            metric=metric.name,
            binary=metric.binary,
            alpha=alpha,
            level=level,
            seed=seed,
        )
        for metric in metrics
    )
    base_name, cand_name = names or (baseline, candidate)
    return PairComparison(base_name, cand_name, comparisons)


def analyse(
    results: RunResults,
    *,
    pairs: Sequence[tuple[str, str]] = (),
    alpha: float = 0.05,
    level: float = 0.95,
    method: Literal["t", "bootstrap"] = "t",
    seed: int = 0,
) -> None:
    """Fill ``results.estimates`` (every variant x metric), ``results.comparisons`` (one
    per (baseline, candidate) pair of variant ids) and ``results.noise`` (per variant,
    the metrics that were repeated or judged repeatedly), replacing what was there."""
    _check_variants(results, (name for pair in pairs for name in pair))
    table = ScoreTable(results)
    results.estimates = {
        variant.id: {
            metric.name: _bounded(
                mean_ci(table.values(variant.id, metric.name), level=level, method=method, seed=seed), metric
            )
            for metric in results.metrics
        }
        for variant in results.variants
    }
    results.comparisons = [
        compare_variants(table, base, cand, results.metrics, alpha=alpha, level=level, seed=seed)
        for base, cand in pairs
    ]
    results.noise = {}
    for variant in results.variants:
        splits = [s for s in (_noise(table, variant.id, m) for m in results.metrics) if s is not None]
        if splits:
            results.noise[variant.id] = splits


def compare_runs(
    base: RunResults,
    cand: RunResults,
    *,
    alpha: float = 0.05,
    level: float = 0.95,
    seed: int = 0,
) -> list[PairComparison]:
    """Two stored runs compared case by case: variants with the same id are paired (when
    each run has exactly one variant, those two are, whatever their ids), on the metrics
    both runs have, over the cases present in both. Each side is named
    ``"<variant id> [<run id>]"``."""
    cand_ids = {variant.id for variant in cand.variants}
    pairs = [(v.id, v.id) for v in base.variants if v.id in cand_ids]
    if not pairs and len(base.variants) == 1 and len(cand.variants) == 1:
        pairs = [(base.variants[0].id, cand.variants[0].id)]
    if not pairs:
        raise InvalidRequest(
            f"runs {base.run_id} and {cand.run_id} have no variant in common "
            f"({', '.join(v.id for v in base.variants)} vs {', '.join(sorted(cand_ids))})"
        )
    cand_case_ids = {case.id for case in cand.cases}
    common = [case.id for case in base.cases if case.id in cand_case_ids]
    if not common:
        raise InvalidRequest(f"runs {base.run_id} and {cand.run_id} have no case id in common")
    cand_metrics = {metric.name: metric for metric in cand.metrics}
    metrics = [
        Metric(m.name, m.kind, m.binary and cand_metrics[m.name].binary, m.settings)
        for m in base.metrics
        if m.name in cand_metrics
    ]
    if not metrics:
        raise InvalidRequest(f"runs {base.run_id} and {cand.run_id} have no metric in common")
    base_table, cand_table = ScoreTable(base, common), ScoreTable(cand, common)
    return [
        compare_variants(
            base_table,
            b,
            c,
            metrics,
            alpha=alpha,
            level=level,
            seed=seed,
            candidate_table=cand_table,
            names=(f"{b} [{base.run_id}]", f"{c} [{cand.run_id}]"),
        )
        for b, c in pairs
    ]


def _bounded(estimate: Estimate, metric: Metric) -> Estimate:
    """A pass rate's interval held to [0, 1]: the t interval of a proportion near 0 or 1
    reaches past what a rate can be."""
    if not metric.binary:
        return estimate
    return replace(estimate, low=max(0.0, estimate.low), high=min(1.0, estimate.high))
