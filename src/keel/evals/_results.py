"""A run's results as the reports see them: the variants, the metrics, every cell, and
what the statistics made of them (estimates, comparisons, noise split, gate verdict).
``RunResults.to_json`` is the JSON output and what the store keeps as the run's summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keel.core import JSONObject
from keel.evals._types import Case, Comparison, Estimate, NoiseSplit, Output, Score


@dataclass(frozen=True, slots=True)
class Variant:
    """One (prompt, model) pair of the matrix. ``id`` names it in tables and in the gate
    (``support-answer@production / demo``); ``prompt_version`` is what the prompt
    resolved to for this run (``support-answer#3``, or ``inline:<hash>``)."""

    id: str
    prompt: str
    prompt_version: str
    model: str

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "prompt_version": self.prompt_version,
            "model": self.model,
        }


@dataclass(frozen=True, slots=True)
class Metric:
    """A scorer as a metric: its name in the suite, the registered kind, the settings it
    was built with, and whether it is pass/fail."""

    name: str
    kind: str
    binary: bool
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> JSONObject:
        return {"name": self.name, "kind": self.kind, "binary": self.binary, "settings": dict(self.settings)}


@dataclass(frozen=True, slots=True)
class Cell:
    """One case × variant × repeat: the output and its scores by metric name."""

    case_id: str
    variant: str
    repeat: int
    output: Output
    scores: Mapping[str, Score]


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One rule of the gate: its text (``accuracy must not drop by more than 0.02 (p <
    0.05)``), whether it held, and the numbers that decided it."""

    rule: str
    passed: bool
    detail: str

    def to_json(self) -> JSONObject:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GateVerdict:
    baseline: str
    candidate: str
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> JSONObject:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class PairComparison:
    """Candidate vs baseline variant on every metric."""

    baseline: str
    candidate: str
    metrics: tuple[Comparison, ...]

    def to_json(self) -> JSONObject:
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "metrics": [c.to_json() for c in self.metrics],
        }


@dataclass(slots=True)
class RunResults:
    """Everything a report shows about one run (or a comparison of two stored runs)."""

    run_id: str
    suite: str
    created_at: datetime
    status: str  # running | complete | stopped (cost cap, interrupted) | failed
    cost_usd: float
    variants: list[Variant]
    metrics: list[Metric]
    cases: list[Case]
    cells: list[Cell]
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # variant → metric → estimate
    comparisons: list[PairComparison] = field(default_factory=list)
    noise: dict[str, list[NoiseSplit]] = field(default_factory=dict)  # variant → per metric
    gate: GateVerdict | None = None
    note: str = ""

    def cell(self, case_id: str, variant: str, repeat: int = 0) -> Cell | None:
        for cell in self.cells:
            if cell.case_id == case_id and cell.variant == variant and cell.repeat == repeat:
                return cell
        return None

    def summary_json(self) -> JSONObject:
        """Everything but the cells: what ``keel eval list/show`` read back."""
        return {
            "run_id": self.run_id,
            "suite": self.suite,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "cost_usd": self.cost_usd,
            "variants": [v.to_json() for v in self.variants],
            "metrics": [m.to_json() for m in self.metrics],
            "n_cases": len(self.cases),
            "estimates": {
                variant: {metric: e.to_json() for metric, e in by_metric.items()}
                for variant, by_metric in self.estimates.items()
            },
            "comparisons": [c.to_json() for c in self.comparisons],
            "noise": {variant: [n.to_json() for n in splits] for variant, splits in self.noise.items()},
            "gate": self.gate.to_json() if self.gate is not None else None,
            "note": self.note,
        }

    def to_json(self) -> JSONObject:
        data = self.summary_json()
        data["cases"] = [
            {
                "id": c.id,
                "vars": dict(c.vars),
                "expected": c.expected,
                "tags": sorted(c.tags),
                "line": c.line,
            }
            for c in self.cases
        ]
        data["cells"] = [
            {
                "case_id": cell.case_id,
                "variant": cell.variant,
                "repeat": cell.repeat,
                "output": {
                    "text": cell.output.text,
                    "tool_calls": [
                        {"name": t.name, "arguments": t.arguments} for t in cell.output.tool_calls
                    ],
                    "latency_ms": cell.output.latency_ms,
                    "cost_usd": cell.output.cost_usd,
                    "input_tokens": cell.output.input_tokens,
                    "output_tokens": cell.output.output_tokens,
                    "request_id": cell.output.request_id,
                    "error": cell.output.error,
                    "cached": cell.output.cached,
                },
                "scores": {name: s.to_json() for name, s in cell.scores.items()},
            }
            for cell in self.cells
        ]
        return data
