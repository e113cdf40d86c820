"""The cost and governance report as one self-contained HTML document: inline CSS
(print-friendly: A4 pages, a page per team), inline SVG charts, no script, no external
reference, every value from the store escaped."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from keel.charts import PALETTE, Series, bar_chart, stacked_bar_chart
from keel.reports._format import count, percent, table, to_usd, usd, usd_axis, when
from keel.reports._html_tables import budget_state, budgets_table, evals_block, guards_block
from keel.reports._types import BudgetLine, CostReport, TeamReport

# Models beyond this many share one "other" series in the stacked chart.
_STACKED_MODELS = 7
_OTHER_COLOUR = "#9aa5b1"
# The page's text width on screen; print scales charts down to the A4 width (max-width).
_CHART_W = 940

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933;
  margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 20pt; margin: 0 0 4px; }
h2 { font-size: 15pt; margin: 0 0 8px; border-bottom: 2px solid #1f2933; padding-bottom: 4px; }
h3 { font-size: 11.5pt; margin: 18px 0 6px; }
p.meta, p.note, .muted { color: #616e7c; }
p.warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 6px 10px; }
section { margin: 28px 0; }
section.team, section.org, section.signoff { break-before: page; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 9.5pt; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr, figure, .kpis { break-inside: avoid; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 8px 0 4px; }
.kpi { border: 1px solid #e4e7eb; border-radius: 4px; padding: 6px 10px; }
.kpi .label { font-size: 8.5pt; color: #616e7c; text-transform: uppercase; letter-spacing: .03em; }
.kpi .value { font-size: 14pt; font-weight: 600; }
.over { color: #c62828; font-weight: 600; }
.alert { color: #b45309; font-weight: 600; }
.ok { color: #2e7d32; }
figure { margin: 8px 0; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; column-gap: 16px; }
svg.chart { max-width: 100%; height: auto; }
.signoff td { height: 34px; }
footer { margin-top: 32px; font-size: 8.5pt; color: #616e7c; }
@media print { body { padding: 0; max-width: none; } }
"""


def report_charts(report: CostReport) -> list[tuple[str, str]]:
    """Every chart of the document as (a name for its file, the SVG), in document order."""
    colours = _model_colours(report)
    charts = [("spend-by-team", _team_chart(report))] if report.team_id is None else []
    for team in report.teams:
        name = team.name if team.team_id is not None else "no-team"
        charts.append((f"{name}-spend-by-day", _daily_chart(report, team, colours)))
    return charts


def render_html(report: CostReport) -> str:
    """The whole document."""
    scope = "all teams" if report.team_id is None else f"team {report.teams[0].name}"
    title = f"Keel cost and governance report — {report.month.label}"
    colours = _model_colours(report)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="keel report cost"><title>{escape(title)} ({escape(scope)})</title>',
        f"<style>{_CSS}</style></head><body>",
        f'<header><h1>Cost and governance report</h1><p class="meta">{escape(report.month.label)} '
        f"({escape(str(report.month))}, UTC) · {escape(scope)} · "
        f"generated {escape(when(report.generated_at))}</p>",
    ]
    if not report.complete:
        parts.append(
            '<p class="warn">The month is not over: the figures cover requests logged up to '
            f"{escape(when(report.generated_at))}.</p>"
        )
    parts.append("</header>")
    if report.team_id is None:
        parts.append(_summary(report))
    for team in report.teams:
        parts.append(_team_section(report, team, colours))
    if report.team_id is None:
        parts.append(_org_section(report))
    parts.append(_signoff(report))
    parts.append(
        "<footer>Spend is what the request log recorded for requests started in the month, at the price "
        "in force when each ran (budgets may also count reservations still in flight). Guard incidents "
        "are requests on which a guard policy flagged, redacted or blocked something; the report names "
        "scanners and rules, never the values they found.</footer></body></html>"
    )
    return "".join(parts)


def _model_colours(report: CostReport) -> dict[str, str]:
    """One colour per model across the whole document, by organisation-wide spend, so a
    model looks the same in every team's chart."""
    totals: dict[str, int] = {}
    for team in report.teams:
        for model in team.models:
            totals[model.model] = totals.get(model.model, 0) + model.cost_nanos
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    return {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(ranked)}


def _budget_cell(line: BudgetLine | None) -> tuple[str, str]:
    """The limit and the share used (HTML, coloured by state) of a monthly budget."""
    if line is None:
        return "—", "—"
    used = f'<span class="{budget_state(line)}">{escape(percent(line.fraction))}</span>'
    return usd(line.limit_nanos), used


def _summary(report: CostReport) -> str:
    rows = []
    for team in report.teams:
        limit, used = _budget_cell(team.month_budget)
        rows.append(
            [
                team.name,
                usd(team.cost_nanos),
                limit,
                used,
                count(team.requests),
                count(team.errors),
                count(team.guards.incidents),
                team.top_model or "—",
            ]
        )
    rows.append(
        [
            "Total",
            usd(report.cost_nanos),
            "",
            "",
            count(sum(t.requests for t in report.teams)),
            count(sum(t.errors for t in report.teams)),
            count(sum(t.guards.incidents for t in report.teams)),
            "",
        ]
    )
    chart = _team_chart(report)
    return (
        '<section class="summary"><h2>Summary</h2>'
        + table(
            ["Team", "Spend", "Monthly budget", "Used", "Requests", "Errors", "Guard incidents", "Top model"],
            rows,
            numeric=(1, 2, 3, 4, 5, 6),
            raw=(3,),
            css="summary",
        )
        + f"<figure>{chart}</figure></section>"
    )


def _kpi(label: str, value: str, metric: str, extra: str = "") -> str:
    return (
        f'<div class="kpi"><div class="label">{escape(label)}</div>'
        f'<div class="value" data-metric="{escape(metric)}"{extra}>{escape(value)}</div></div>'
    )


def _team_section(report: CostReport, team: TeamReport, colours: Mapping[str, str]) -> str:
    budget = team.month_budget
    budget_text = (
        f"{percent(budget.fraction)} of {usd(budget.limit_nanos)}" if budget else "no monthly budget"
    )
    parts = [
        f'<section class="team" data-team="{escape(team.team_id or "")}">',
        f"<h2>{escape(team.name)}</h2>",
        '<div class="kpis">',
        _kpi("Spend", usd(team.cost_nanos), "spend", f' data-nanos="{team.cost_nanos}"'),
        _kpi("Monthly budget used", budget_text, "budget"),
        _kpi("Requests", count(team.requests), "requests"),
        _kpi("Errors", count(team.errors), "errors"),
        _kpi("Cache hits", f"{count(team.cache_hits)} ({percent(team.cache_hit_rate)})", "cache-hits"),
        _kpi("Cache savings", usd(team.saved_nanos), "cache-savings", f' data-nanos="{team.saved_nanos}"'),
        _kpi("Guard incidents", count(team.guards.incidents), "guard-incidents"),
        _kpi("Top model", team.top_model or "—", "top-model"),
        "</div>",
    ]
    if team.unpriced_requests:
        parts.append(
            f'<p class="note">{count(team.unpriced_requests)} requests had tokens but no price: their '
            "cost is not counted. Set prices with <code>keel prices set</code>.</p>"
        )
    parts.append(budgets_table(team.budgets, "Budgets"))
    parts.append(_spend_charts(report, team, colours))
    parts.append("<h3>Top keys</h3>")
    if team.keys:
        parts.append(
            table(
                ["Key", "Id", "Requests", "Spend", "Share"],
                [
                    [
                        k.name or "—",
                        k.key_id or "(none)",
                        count(k.requests),
                        usd(k.cost_nanos),
                        percent(k.cost_nanos / team.cost_nanos) if team.cost_nanos else "—",
                    ]
                    for k in team.keys
                ],
                numeric=(2, 3, 4),
            )
        )
    else:
        parts.append('<p class="muted">No requests.</p>')
    parts.append(guards_block(team.guards))
    if team.team_id is not None:
        parts.append(evals_block(team.evals, "Eval gates", "No eval run used this team's keys this month."))
    parts.append("</section>")
    return "".join(parts)


def _team_chart(report: CostReport) -> str:
    return bar_chart(
        [(t.name, to_usd(t.cost_nanos)) for t in sorted(report.teams, key=lambda t: -t.cost_nanos)],
        title=f"Spend by team, {report.month.label} (USD)",
        value_format=usd_axis,
        width=_CHART_W,
    )


def _spend_charts(report: CostReport, team: TeamReport, colours: Mapping[str, str]) -> str:
    stacked = _daily_chart(report, team, colours)
    parts = [f"<h3>Spend by model and day</h3><figure>{stacked}</figure>", "<h3>Models used</h3>"]
    parts.append(_models_table(team))
    return "".join(parts)


def _daily_chart(report: CostReport, team: TeamReport, colours: Mapping[str, str]) -> str:
    days = report.month.days
    ranked = [m.model for m in team.models if m.model in team.daily]
    shown, rest = ranked[:_STACKED_MODELS], ranked[_STACKED_MODELS:]
    # A day without spend on a model is a gap, not a zero-height bar.
    series = [Series(model, [_day_usd(v) for v in team.daily[model]], colours.get(model)) for model in shown]
    if rest:
        other = [sum(team.daily[m][i] for m in rest) for i in range(len(days))]
        series.append(Series(f"{len(rest)} other models", [_day_usd(v) for v in other], _OTHER_COLOUR))
    return stacked_bar_chart(
        series,
        [f"{d:%m-%d}" for d in days] if series else [],
        title=f"{team.name}: spend by model and day (USD)",
        y_format=usd_axis,
        width=_CHART_W,
    )


def _day_usd(nanos: int) -> float | None:
    return to_usd(nanos) if nanos else None


def _models_table(team: TeamReport) -> str:
    parts = []
    if team.models:
        parts.append(
            table(
                ["Model", "Requests", "Input tokens", "Output tokens", "Spend", "Share"],
                [
                    [
                        m.model,
                        count(m.requests),
                        count(m.input_tokens),
                        count(m.output_tokens),
                        usd(m.cost_nanos),
                        percent(m.cost_nanos / team.cost_nanos) if team.cost_nanos else "—",
                    ]
                    for m in team.models
                ],
                numeric=(1, 2, 3, 4, 5),
                css="models",
            )
        )
    else:
        parts.append('<p class="muted">No requests.</p>')
    return "".join(parts)


def _org_section(report: CostReport) -> str:
    return (
        '<section class="org"><h2>Organisation</h2>'
        + budgets_table(report.org_budgets, "Budgets on models and end users")
        + evals_block(report.evals, "Eval gates (all runs)", "No eval runs this month.")
        + "</section>"
    )


def _signoff(report: CostReport) -> str:
    blank = ["", "", "", ""]
    return (
        '<section class="signoff"><h2>Review</h2><p>Reviewed for '
        f"{escape(report.month.label)}.</p>"
        + table(["Reviewer", "Role", "Date", "Signature"], [blank, blank])
        + "</section>"
    )
