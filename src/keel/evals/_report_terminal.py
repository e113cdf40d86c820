"""The terminal report: Rich tables of the estimates and comparisons, the power notes,
the gate verdict, cost and status; and the table of ``keel eval list``.

Everything the model wrote or the suite named is passed to Rich as ``Text``, never as
markup, so a ``[bold]`` in an output or a case id cannot restyle the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from keel.evals._report_common import (
    comparison_means,
    fmt_effect,
    fmt_interval,
    fmt_mean,
    fmt_p,
    fmt_usd,
    main_pair,
    metric_named,
    n_repeats,
    power_note,
    unit_scale,
)
from keel.evals._results import PairComparison, RunResults

_PASS = Text("✓", style="bold green")
_FAIL = Text("✗", style="bold red")


def render_terminal(results: RunResults, console: Console) -> None:
    """Print the whole run: header, estimates, each comparison, noise, gate, cost."""
    _header(results, console)
    _estimates(results, console)
    ordered = sorted(results.comparisons, key=lambda p: (p.baseline, p.candidate) != main_pair(results))
    for pair in ordered:
        _comparison(results, pair, console)
    _noise(results, console)
    _gate(results, console)
    _footer(results, console)


def _header(results: RunResults, console: Console) -> None:
    title = Text.assemble(("Eval ", "bold"), (results.suite, "bold cyan"), "  run ", (results.run_id, "dim"))
    console.print(title)
    repeats = n_repeats(results)
    console.print(
        Text(
            f"{len(results.cases)} cases × {len(results.variants)} variants"
            + (f", up to {repeats} repeats" if repeats > 1 else "")
            + f" · {results.created_at:%Y-%m-%d %H:%M} · status {results.status}"
        )
    )
    if results.note:
        console.print(Text(results.note, style="yellow"))


def _estimates(results: RunResults, console: Console) -> None:
    table = Table(title="Metrics (mean [95% CI])", title_justify="left")
    table.add_column("variant", overflow="fold")
    for metric in results.metrics:
        table.add_column(Text(metric.name + (" (pass/fail)" if metric.binary else "")), justify="right")
    for variant in results.variants:
        row: list[Text] = [Text(variant.id)]
        for metric in results.metrics:
            estimate = results.estimates.get(variant.id, {}).get(metric.name)
            if estimate is None:
                row.append(Text("–", style="dim"))
                continue
            unit = unit_scale(results, metric)
            row.append(
                Text(
                    f"{fmt_mean(estimate.mean, metric, unit)} "
                    f"[{fmt_mean(estimate.low, metric, unit)}, {fmt_mean(estimate.high, metric, unit)}]"
                )
            )
        table.add_row(*row)
    console.print(table)


def _comparison(results: RunResults, pair: PairComparison, console: Console) -> None:
    table = Table(title=f"{pair.candidate} vs {pair.baseline}", title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("baseline", "right"),
        ("candidate", "right"),
        ("effect", "right"),
        ("95% CI", "right"),
        ("p", "right"),
        ("test", "left"),
        ("regr. / impr.", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    notes: list[Text] = []
    for comparison in pair.metrics:
        metric = metric_named(results, comparison.metric)
        unit = unit_scale(results, metric) if metric is not None else False
        significant = comparison.p_value < comparison.alpha
        style = ("bold red" if comparison.effect < 0 else "bold green") if significant else ""
        base, cand = comparison_means(comparison, metric, unit)
        table.add_row(
            Text(comparison.metric),
            Text(base),
            Text(cand),
            Text(fmt_effect(comparison, unit), style=style),
            Text(fmt_interval(comparison.low, comparison.high, unit)),
            Text(fmt_p(comparison.p_value), style=style),
            Text(comparison.test),
            Text(
                f"{comparison.regressions} / {comparison.improvements}"
                if metric is not None and metric.binary
                else "–"
            ),
        )
        notes.append(Text.assemble((f"{comparison.metric}: ", "bold"), power_note(comparison, unit)))
    console.print(table)
    for note in notes:
        console.print(Text("  ") + note, style="dim")


def _noise(results: RunResults, console: Console) -> None:
    rows = [
        (variant, split)
        for variant, splits in results.noise.items()
        for split in splits
        if split.generation is not None or split.judge is not None
    ]
    if not rows:
        return
    table = Table(title="Noise (standard deviation of one score)", title_justify="left")
    for name in ("variant", "metric", "between cases", "generation", "judge"):
        table.add_column(name, justify="left" if name in ("variant", "metric") else "right")
    for variant, split in rows:
        table.add_row(
            Text(variant),
            Text(split.metric),
            Text(_sd(split.between_cases)),
            Text(_sd(split.generation)),
            Text(_sd(split.judge)),
        )
    console.print(table)


def _sd(variance: float | None) -> str:
    if variance is None:
        return "–"
    return f"{max(variance, 0.0) ** 0.5:.3g}"


def _gate(results: RunResults, console: Console) -> None:
    gate = results.gate
    if gate is None:
        console.print(Text("No gate configured.", style="dim"))
        return
    head = Text.assemble(
        ("Gate ", "bold"),
        ("PASSED", "bold green") if gate.passed else ("FAILED", "bold red"),
        f"  ({gate.candidate} vs {gate.baseline})",
    )
    console.print(head)
    for check in gate.checks:
        console.print(
            Text("  ")
            + (_PASS if check.passed else _FAIL)
            + Text(f" {check.rule}")
            + Text(f" — {check.detail}", style="dim")
        )


def _footer(results: RunResults, console: Console) -> None:
    calls = len(results.cells)
    cached = sum(1 for c in results.cells if c.output.cached)
    errors = sum(1 for c in results.cells if c.output.error)
    parts = [f"cost {fmt_usd(results.cost_usd)}", f"{calls} calls"]
    if cached:
        parts.append(f"{cached} cached")
    if errors:
        parts.append(f"{errors} failed")
    parts.append(f"status {results.status}")
    console.print(Text(" · ".join(parts), style="bold" if errors == 0 else "bold yellow"))


def render_run_list(rows: Sequence[Mapping[str, Any]], console: Console) -> None:
    """The table of ``keel eval list``. Each row: run_id, suite, created_at (datetime or
    ISO text), status, cost_usd, n_cases, gate (True or "passed", False or "failed", None
    for no gate) and variants (ids, or variant dicts with an ``id``)."""
    table = Table(title="Eval runs", title_justify="left")
    for name, justify in (
        ("run", "left"),
        ("suite", "left"),
        ("created", "left"),
        ("status", "left"),
        ("variants", "left"),
        ("cases", "right"),
        ("cost", "right"),
        ("gate", "center"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        gate = row.get("gate")
        gate = {"passed": True, "failed": False}.get(gate, gate) if isinstance(gate, str) else gate
        table.add_row(
            Text(str(row.get("run_id", ""))),
            Text(str(row.get("suite", ""))),
            Text(_when(row.get("created_at"))),
            Text(str(row.get("status", "")), style=_status_style(str(row.get("status", "")))),
            Text(_variants(row.get("variants"))),
            Text(str(row.get("n_cases", ""))),
            Text(fmt_usd(float(row.get("cost_usd") or 0.0))),
            Text("passed", style="green")
            if gate is True
            else Text("failed", style="red")
            if gate is False
            else Text("–", style="dim"),
        )
    if not rows:
        console.print(Text("No eval runs yet.", style="dim"))
        return
    console.print(table)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, str):
        try:
            return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}"
        except ValueError:
            return value
    return "" if value is None else str(value)


def _variants(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    ids = [str(v.get("id", "")) if isinstance(v, Mapping) else str(v) for v in value]
    return "\n".join(ids)


def _status_style(status: str) -> str:
    return {"complete": "green", "running": "cyan", "stopped": "yellow", "failed": "red"}.get(status, "")
