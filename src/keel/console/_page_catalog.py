"""Prompts (registry, versions, labels, per-version statistics) and Evals (runs, one
run's metrics, comparison, gate and per-case diff, and its full HTML report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import HTMLResponse, Response

from keel.charts import Series, line_chart
from keel.console._pages import PageContext, PageResult
from keel.console._render import ms
from keel.core import NotFound
from keel.prompts import PromptRegistry, prompt_stats


def prompts_page(ctx: PageContext) -> PageResult:
    registry = PromptRegistry(ctx.engine)
    prompts = registry.list_prompts(team_id=ctx.viewer.team_id)
    return PageResult("prompts.html", {"prompts": prompts})


def prompt_detail(ctx: PageContext) -> PageResult:
    name = ctx.path_params["name"]
    registry = PromptRegistry(ctx.engine)
    summary = registry.get_prompt(name)
    team_id = ctx.viewer.team_id
    # A team sees its own prompts and the organisation's; another team's is not there.
    if team_id is not None and summary.team_id not in (None, team_id):
        raise NotFound(f"Unknown prompt '{name}'.", param="name")
    versions = registry.list_versions(name)
    stats = prompt_stats(ctx.engine, name, since=ctx.range.since, until=ctx.range.until, team_id=team_id)
    by_version = {s.version: s for s in stats}
    served = [s for s in stats if s.requests]
    chart = line_chart(
        [
            Series("p50", [s.latency_p50_ms for s in served]),
            Series("p95", [s.latency_p95_ms for s in served]),
        ],
        [f"v{s.version}" for s in served],
        title="Latency by version",
        y_format=ms,
    )
    return PageResult(
        "prompt.html",
        {"summary": summary, "versions": versions, "stats": by_version, "chart": chart},
        title=f"Prompt {name}",
    )


def evals_page(ctx: PageContext) -> PageResult:
    from keel.evals import RunStore

    runs = RunStore(ctx.engine).list_runs(suite=ctx.params.get("suite") or None, limit=100)
    return PageResult("evals.html", {"runs": runs, "suite": ctx.params.get("suite") or ""})


def _run(ctx: PageContext) -> Any:
    from keel.evals import read_run

    return read_run(ctx.engine, ctx.path_params["run_id"])  # NotFound for an unknown run


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    scores: list[tuple[str, float | None, float | None]]  # metric, baseline mean, candidate mean
    baseline_output: str
    candidate_output: str

    @property
    def changed(self) -> bool:
        return any(b != c for _, b, c in self.scores)


def case_rows(results: Any, baseline: str, candidate: str) -> list[CaseRow]:
    """Each case's mean score per metric under the two variants, and their first outputs."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for cell in results.cells:
        cells.setdefault((cell.case_id, cell.variant), []).append(cell)
    rows = []
    for case in results.cases:
        base, cand = cells.get((case.id, baseline), []), cells.get((case.id, candidate), [])
        scores = [(m.name, _mean(base, m.name), _mean(cand, m.name)) for m in results.metrics]
        rows.append(CaseRow(case.id, scores, _output(base), _output(cand)))
    return rows


def _mean(cells: list[Any], metric: str) -> float | None:
    values = [cell.scores[metric].value for cell in cells if metric in cell.scores]
    return round(sum(values) / len(values), 4) if values else None


def _output(cells: list[Any]) -> str:
    if not cells:
        return ""
    output = cells[0].output
    text = str(output.error or output.text)
    return text if len(text) <= 240 else text[:239] + "…"


def eval_run_page(ctx: PageContext) -> PageResult:
    results = _run(ctx)
    if results.comparisons:
        pair: tuple[str, str] | None = (results.comparisons[0].baseline, results.comparisons[0].candidate)
    elif len(results.variants) >= 2:
        pair = (results.variants[0].id, results.variants[1].id)
    else:
        pair = None
    rows = case_rows(results, *pair) if pair else []
    changed = [row for row in rows if row.changed]
    return PageResult(
        "eval_run.html",
        {"run": results, "pair": pair, "diffs": changed[:200], "n_cases": len(rows)},
        title=f"Eval run {results.run_id}",
    )


def eval_report(ctx: PageContext) -> Response:
    from keel.evals import html_report

    # A self-contained document with its own nonce-based CSP (the app leaves it alone).
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'"
    return HTMLResponse(html_report(_run(ctx)), headers={"Content-Security-Policy": csp})
