"""The HTML report: one self-contained file (inline CSS, inline SVG, a few lines of own
JavaScript to filter and sort the cases) that a CI job can keep as an artifact and
anyone can open offline.

Model outputs, case variables and suite names are untrusted: every one goes through
``html.escape``. As a second line of defence the page carries a Content-Security-Policy
that allows no network access at all and only the page's own script and style (by a
nonce), so even a missed escape could not load or run anything.
"""

from __future__ import annotations

import secrets
from html import escape

from keel.evals._report_common import (
    CaseDiff,
    case_diffs,
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
from keel.evals._report_html_cases import CASES_JS, cases_section
from keel.evals._results import PairComparison, RunResults
from keel.evals._svg import Interval, histogram, interval_chart

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bad:#c62828;--good:#2e7d32;--bg:#f5f7fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
margin:0;background:var(--bg)}main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:0}section{background:#fff;border:1px solid var(--line);border-radius:6px;
padding:4px 16px 16px;margin:16px 0}table{border-collapse:collapse;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:var(--line);margin-right:4px}.pass{background:#e3f4e4;color:var(--good)}
.fail{background:#fde7e7;color:var(--bad)}.verdict{font-size:16px;padding:4px 14px}
.sig-bad{color:var(--bad);font-weight:600}.sig-good{color:var(--good);font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px}svg.chart{max-width:100%;height:auto}
.controls{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:8px 0}
button{font:inherit;padding:3px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;
cursor:pointer}button[aria-pressed=true]{background:var(--ink);color:#fff}
input,select{font:inherit;padding:3px 6px}
article.case{border:1px solid var(--line);border-radius:6px;margin:8px 0;background:#fff}
article.case.regressed{border-left:5px solid var(--bad)}
article.case.improved{border-left:5px solid var(--good)}
article.case>details>summary{padding:6px 10px;cursor:pointer;display:flex;gap:10px;align-items:center}
.case-body{padding:0 12px 12px}.sxs{display:grid;grid-template-columns:1fr 1fr;gap:12px}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);padding:8px;border-radius:4px;
margin:4px 0;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}del{background:#fde7e7;color:#8e1c1c}
ins{background:#e3f4e4;color:#1b5e20;text-decoration:none}h4{margin:8px 0 2px;font-size:13px}
.delta-neg{color:var(--bad)}.error{color:var(--bad);font-style:italic}.delta-pos{color:var(--good)}
"""


def html_report(results: RunResults) -> str:
    """The whole report as one HTML document."""
    nonce = secrets.token_urlsafe(16)
    pair = main_pair(results)
    diffs = case_diffs(results, *pair) if pair else []
    title = f"Keel eval · {results.suite} · {results.run_id}"
    csp = f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'"
    body = [
        _header(results),
        _gate(results),
        _metrics(results),
        *(_comparison(results, p) for p in results.comparisons),
        _noise(results),
        _plots(results, diffs),
        cases_section(results, diffs),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><style nonce="{nonce}">{_CSS}</style></head>\n'
        "<body><main>\n" + "\n".join(b for b in body if b) + "\n</main>"
        f'<script nonce="{nonce}">{CASES_JS}</script></body></html>\n'
    )


def _verdict_badge(results: RunResults) -> str:
    if results.gate is None:
        return '<span class="badge verdict">no gate</span>'
    if results.gate.passed:
        return '<span class="badge verdict pass">✓ gate passed</span>'
    return '<span class="badge verdict fail">✗ gate failed</span>'


def _header(results: RunResults) -> str:
    cached = sum(1 for c in results.cells if c.output.cached)
    errors = sum(1 for c in results.cells if c.output.error)
    repeats = n_repeats(results)
    facts = [
        f"run <code>{escape(results.run_id)}</code>",
        escape(f"{results.created_at:%Y-%m-%d %H:%M %Z}".strip()),
        f"status <strong>{escape(results.status)}</strong>",
        f"{len(results.cases)} cases × {len(results.variants)} variants"
        + (f", up to {repeats} repeats" if repeats > 1 else ""),
        f"cost {fmt_usd(results.cost_usd)} for {len(results.cells)} calls"
        + (f" ({cached} cached)" if cached else "")
        + (f", {errors} failed" if errors else ""),
    ]
    variants = "".join(
        f"<tr><td>{escape(v.id)}</td><td><code>{escape(v.prompt_version)}</code></td>"
        f"<td>{escape(v.model)}</td></tr>"
        for v in results.variants
    )
    note = f'<p class="muted">{escape(results.note)}</p>' if results.note else ""
    return (
        f"<header><h1>{escape(results.suite)} {_verdict_badge(results)}</h1>"
        f'<p class="muted">{" · ".join(facts)}</p>{note}'
        "<table><thead><tr><th>variant</th><th>prompt version</th><th>model</th></tr></thead>"
        f"<tbody>{variants}</tbody></table></header>"
    )


def _gate(results: RunResults) -> str:
    gate = results.gate
    if gate is None:
        return ""
    rows = "".join(
        f'<tr><td><span class="badge {"pass" if c.passed else "fail"}">{"✓" if c.passed else "✗"}</span></td>'
        f'<td>{escape(c.rule)}</td><td class="muted">{escape(c.detail)}</td></tr>'
        for c in gate.checks
    )
    return (
        f'<section id="gate"><h2>Gate {_verdict_badge(results)}</h2>'
        f'<p class="muted">{escape(gate.candidate)} vs {escape(gate.baseline)}</p>'
        f"<table><tbody>{rows}</tbody></table></section>"
    )


def _metrics(results: RunResults) -> str:
    head = "".join(
        f'<th class="num">{escape(m.name)}{" <span class=muted>(pass/fail)</span>" if m.binary else ""}</th>'
        for m in results.metrics
    )
    rows = []
    for variant in results.variants:
        cells = []
        for metric in results.metrics:
            estimate = results.estimates.get(variant.id, {}).get(metric.name)
            if estimate is None:
                cells.append('<td class="num muted">–</td>')
                continue
            unit = unit_scale(results, metric)
            low, high = fmt_mean(estimate.low, metric, unit), fmt_mean(estimate.high, metric, unit)
            cells.append(
                f'<td class="num">{fmt_mean(estimate.mean, metric, unit)} '
                f'<span class="muted">[{low}, {high}]</span></td>'
            )
        rows.append(f"<tr><td>{escape(variant.id)}</td>{''.join(cells)}</tr>")
    return (
        '<section id="metrics"><h2>Metrics</h2><p class="muted">mean [95% confidence interval, clustered by '
        "case when repeated]</p>"
        f"<table><thead><tr><th>variant</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _comparison(results: RunResults, pair: PairComparison) -> str:
    rows, notes = [], []
    unit_rows: list[Interval] = []
    other_charts: list[str] = []
    for c in pair.metrics:
        metric = metric_named(results, c.metric)
        unit = unit_scale(results, metric) if metric is not None else False
        significant = c.p_value < c.alpha
        css = ("sig-bad" if c.effect < 0 else "sig-good") if significant else ""
        base, cand = comparison_means(c, metric, unit)
        flips = f"{c.regressions} / {c.improvements}" if metric is not None and metric.binary else "–"
        rows.append(
            f"<tr><td>{escape(c.metric)}</td><td class=num>{base}</td><td class=num>{cand}</td>"
            f'<td class="num {css}">{fmt_effect(c, unit)}</td>'
            f"<td class=num>{fmt_interval(c.low, c.high, unit)}</td>"
            f'<td class="num {css}">{fmt_p(c.p_value)}</td><td>{escape(c.test)}</td>'
            f"<td class=num>{flips}</td></tr>"
        )
        notes.append(f"<li><strong>{escape(c.metric)}</strong>: {escape(power_note(c, unit))}</li>")
        tone = ("bad" if c.effect < 0 else "good") if significant else ""
        scale = 100.0 if unit else 1.0
        row = Interval(c.metric, c.effect * scale, c.low * scale, c.high * scale, tone)
        if unit:
            unit_rows.append(row)
        else:
            other_charts.append(
                interval_chart(
                    [row],
                    title=f"Effect on {c.metric}",
                    chart=f"effect:{c.metric}",
                    x_label=f"candidate − baseline ({c.metric} units)",
                    zero_line=True,
                )
            )
    charts = []
    if unit_rows:
        charts.append(
            interval_chart(
                unit_rows,
                title="Effects (candidate − baseline) with 95% intervals",
                chart="forest",
                x_label="points",
                zero_line=True,
            )
        )
    charts.extend(other_charts)
    return (
        f'<section class="comparison"><h2>{escape(pair.candidate)} vs {escape(pair.baseline)}</h2>'
        "<table><thead><tr><th>metric</th><th class=num>baseline</th><th class=num>candidate</th>"
        "<th class=num>effect</th><th class=num>95% CI</th><th class=num>p</th><th>test</th>"
        f"<th class=num>regr. / impr.</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<ul class="muted">{"".join(notes)}</ul><div class="charts">{"".join(charts)}</div></section>'
    )


def _noise(results: RunResults) -> str:
    rows = []
    for variant, splits in results.noise.items():
        for s in splits:
            if s.generation is None and s.judge is None:
                continue
            rows.append(
                f"<tr><td>{escape(variant)}</td><td>{escape(s.metric)}</td>"
                + "".join(f"<td class=num>{_sd(v)}</td>" for v in (s.between_cases, s.generation, s.judge))
                + "</tr>"
            )
    if not rows:
        return ""
    return (
        '<section id="noise"><h2>Noise</h2><p class="muted">standard deviation of one score, by source: '
        "between cases, between generations of a case, between judge samples of a generation</p>"
        "<table><thead><tr><th>variant</th><th>metric</th><th class=num>between cases</th>"
        f"<th class=num>generation</th><th class=num>judge</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></section>"
    )


def _sd(variance: float | None) -> str:
    return "–" if variance is None else f"{max(variance, 0.0) ** 0.5:.3g}"


def _plots(results: RunResults, diffs: list[CaseDiff]) -> str:
    charts = []
    for metric in results.metrics:
        unit = unit_scale(results, metric)
        scale = 100.0 if metric.binary else 1.0
        rows = [
            Interval(v.id, e.mean * scale, e.low * scale, e.high * scale)
            for v in results.variants
            if (e := results.estimates.get(v.id, {}).get(metric.name)) is not None
        ]
        domain = (0.0, 100.0) if metric.binary else (0.0, 1.0) if unit else None
        charts.append(
            interval_chart(
                rows,
                title=f"{metric.name}: mean and 95% CI",
                chart=f"estimate:{metric.name}",
                x_label="% passed" if metric.binary else metric.name,
                domain=domain,
            )
        )
    for metric in results.metrics:
        if metric.binary or not diffs:
            continue
        unit = unit_scale(results, metric)
        deltas = [
            d * (100.0 if unit else 1.0)
            for diff in diffs
            for m in diff.metrics
            if m.metric.name == metric.name and (d := m.delta) is not None
        ]
        charts.append(
            histogram(
                deltas,
                title=f"{metric.name}: per-case difference, candidate − baseline",
                chart=f"histogram:{metric.name}",
                x_label="points" if unit else f"{metric.name} units",
            )
        )
    return f'<section id="plots"><h2>Plots</h2><div class="charts">{"".join(charts)}</div></section>'
