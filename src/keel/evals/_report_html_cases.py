"""The HTML report's case section: for each case its variables and expected answer, each
metric's score on both sides, and the baseline and candidate outputs side by side with a
word-level diff; plus the page's only script, which filters (only regressions, only
failures, free text) and sorts the cases. Every piece of case and output text is
escaped: it is untrusted model output or dataset content.
"""

from __future__ import annotations

import difflib
import json
import re
from html import escape
from typing import Any

from keel.evals._report_common import (
    CaseDiff,
    MetricDiff,
    cell_passed,
    cells_by_case,
    fmt_delta,
    fmt_mean,
    main_pair,
    output_text,
    unit_scale,
)
from keel.evals._results import Cell, Metric, RunResults

# Words and punctuation runs, each with the whitespace after it: half the tokens of
# splitting whitespace off, and no hugely repeated " " token, which is what makes
# SequenceMatcher slow. Tokens are compared without that whitespace.
_TOKEN = re.compile(r"\w+\s*|[^\w\s]+\s*|\s+")
# Past this many token pairs difflib's quadratic worst case shows; it then junks the most
# common tokens (its autojunk heuristic), a coarser diff in bounded time.
_EXACT_DIFF_PAIRS = 250_000
_MAX_DIFF_TOKENS = 20_000

CASES_JS = """
(function(){
  var list=document.getElementById('case-list');if(!list)return;
  var cases=Array.prototype.slice.call(list.querySelectorAll('article.case'));
  var mode='all',q=document.getElementById('case-filter'),shown=document.getElementById('case-shown');
  function apply(){
    var text=q.value.toLowerCase(),n=0;
    cases.forEach(function(c){
      var ok=(mode==='all'||c.dataset[mode]==='1')&&(!text||c.dataset.search.indexOf(text)>=0);
      c.hidden=!ok;if(ok)n++;
    });
    shown.textContent=n;
  }
  document.querySelectorAll('button[data-mode]').forEach(function(b){
    b.addEventListener('click',function(){
      mode=b.dataset.mode;
      document.querySelectorAll('button[data-mode]').forEach(function(o){o.setAttribute('aria-pressed',String(o===b));});
      apply();
    });
  });
  q.addEventListener('input',apply);
  document.getElementById('case-sort').addEventListener('change',function(e){
    var key=e.target.value;
    cases.slice().sort(function(a,b){
      if(key==='delta')return parseFloat(a.dataset.delta)-parseFloat(b.dataset.delta);
      if(key==='id')return a.dataset.id.localeCompare(b.dataset.id);
      return parseInt(a.dataset.order,10)-parseInt(b.dataset.order,10);
    }).forEach(function(c){list.appendChild(c);});
  });
  apply();
})();
"""


def word_diff(before: str, after: str) -> tuple[str, str]:
    """Both texts as escaped HTML, words only in ``before`` in ``<del>``, words only in
    ``after`` in ``<ins>``."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    if len(a) > _MAX_DIFF_TOKENS or len(b) > _MAX_DIFF_TOKENS:
        return escape(before), escape(after)
    # [same, old text, new text] runs; a lone space that "matches" between two changes
    # would chop one replaced phrase into a marker per word, so it joins the change.
    matcher = difflib.SequenceMatcher(
        None,
        [t.rstrip() for t in a],
        [t.rstrip() for t in b],
        autojunk=len(a) * len(b) > _EXACT_DIFF_PAIRS,
    )
    runs = [
        [op == "equal", "".join(a[i1:i2]), "".join(b[j1:j2])] for op, i1, i2, j1, j2 in matcher.get_opcodes()
    ]
    for i in range(1, len(runs) - 1):
        if runs[i][0] and str(runs[i][1]).isspace() and not runs[i - 1][0] and not runs[i + 1][0]:
            runs[i][0] = False
    merged: list[list[Any]] = []
    for run in runs:
        if merged and not run[0] and not merged[-1][0]:
            merged[-1][1] += run[1]
            merged[-1][2] += run[2]
        else:
            merged.append(run)
    left, right = [], []
    for same, old, new in merged:
        if same:
            left.append(escape(old))
            right.append(escape(new))
            continue
        # The space after a changed phrase is not part of the change.
        if old:
            core = old.rstrip()
            left.append(f"<del>{escape(core)}</del>{escape(old[len(core) :])}" if core else escape(old))
        if new:
            core = new.rstrip()
            right.append(f"<ins>{escape(core)}</ins>{escape(new[len(core) :])}" if core else escape(new))
    return "".join(left), "".join(right)


def _json(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False, indent=2, default=str, sort_keys=True))


def cases_section(results: RunResults, diffs: list[CaseDiff]) -> str:
    """The case section of the report (``diffs`` of the main pair, empty without one)."""
    pair = main_pair(results)
    if pair is None:
        articles = _single_variant_cases(results)
        heading = "Cases"
    else:
        # Judged once: unit_scale reads every cell, and a report has cases × metrics rows.
        units = {m.name: unit_scale(results, m) for m in results.metrics}
        spans = _spans(results, diffs, units)
        articles = [_case(i, d, spans, units) for i, d in enumerate(diffs)]
        heading = f"Cases: {escape(pair[1])} vs {escape(pair[0])}"
    regressed = sum(1 for d in diffs if d.regressed)
    failed = sum(1 for d in diffs if d.failed)
    controls = (
        '<div class="controls"><button data-mode="all" aria-pressed="true">all</button>'
        f'<button data-mode="regressed" aria-pressed="false">only regressions ({regressed})</button>'
        f'<button data-mode="failed" aria-pressed="false">only failures ({failed})</button>'
        '<input id="case-filter" type="search" placeholder="filter by id, tag or text">'
        '<label>sort <select id="case-sort"><option value="order">dataset order</option>'
        '<option value="delta">largest drop first</option><option value="id">case id</option>'
        "</select></label>"
        f'<span class="muted"><span id="case-shown">{len(articles)}</span> shown</span></div>'
    )
    return (
        f'<section id="cases"><h2>{heading}</h2>{controls}'
        f'<div id="case-list">{"".join(articles)}</div></section>'
    )


def _spans(results: RunResults, diffs: list[CaseDiff], units: dict[str, bool]) -> dict[str, float]:
    """Each metric's range over the cases, so that "largest drop first" weighs a 1–5
    judge and a 0–1 pass rate alike."""
    spans = {}
    for metric in results.metrics:
        values = [
            v
            for d in diffs
            for m in d.metrics
            if m.metric.name == metric.name
            for v in (m.baseline, m.candidate)
        ]
        finite = [v for v in values if v is not None]
        span = max(finite, default=1.0) - min(finite, default=0.0)
        spans[metric.name] = 1.0 if units[metric.name] or span <= 0 else span
    return spans


def _case(order: int, diff: CaseDiff, spans: dict[str, float], units: dict[str, bool]) -> str:
    case = diff.case
    drop = sum((m.delta or 0.0) / spans[m.metric.name] for m in diff.metrics)
    classes = ["case"] + [n for n, on in (("regressed", diff.regressed), ("improved", diff.improved)) if on]
    badges = [f'<span class="badge">{escape(t)}</span>' for t in sorted(case.tags)]
    if diff.regressed:
        badges.append(
            f'<span class="badge fail">regressed: {escape(", ".join(diff.regressed_metrics))}</span>'
        )
    if diff.errored:
        badges.append('<span class="badge fail">call failed</span>')
    elif diff.failed:
        badges.append('<span class="badge fail">fails</span>')
    if diff.improved:
        badges.append('<span class="badge pass">improved</span>')
    search = " ".join([case.id, *case.tags, json.dumps(dict(case.vars), default=str)]).lower()
    score_rows = "".join(_score_row(m, units[m.metric.name]) for m in diff.metrics)
    outputs = _outputs(diff.baseline_cells, diff.candidate_cells)
    return (
        f'<article class="{" ".join(classes)}" id="case-{escape(case.id)}" data-id="{escape(case.id)}" '
        f'data-order="{order}" data-delta="{drop:.6g}" '
        f'data-regressed="{int(diff.regressed)}" data-failed="{int(diff.failed)}" '
        f'data-search="{escape(search)}"><details{" open" if diff.regressed else ""}>'
        f'<summary><h3>{escape(case.id)}</h3>{"".join(badges)}</summary><div class="case-body">'
        f'<div class="sxs"><div><h4>vars</h4><pre>{_json(dict(case.vars))}</pre></div>'
        f"<div><h4>expected</h4><pre>{_json(case.expected)}</pre></div></div>"
        "<table><thead><tr><th>metric</th><th>baseline</th><th>candidate</th><th class=num>Δ</th></tr>"
        "</thead>"
        f"<tbody>{score_rows}</tbody></table>{outputs}</div></details></article>"
    )


def _score_row(m: MetricDiff, unit: bool) -> str:
    metric = m.metric
    delta = m.delta
    if delta is None:
        delta_text = "–"
    elif delta == 0:
        delta_text = "0"
    else:
        delta_text = fmt_delta(delta, unit) + (" pts" if unit else "")
    css = "" if not delta else "delta-neg" if delta < 0 else "delta-pos"
    return (
        f"<tr><td>{escape(metric.name)}</td>"
        f"<td>{_score_cell(m.baseline, m.baseline_passed, metric, unit)}</td>"
        f"<td>{_score_cell(m.candidate, m.candidate_passed, metric, unit)}</td>"
        f'<td class="num {css}">{delta_text}</td></tr>'
    )


def _score_cell(value: float | None, passed: bool | None, metric: Metric, unit: bool) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    badge = (
        ""
        if passed is None
        else f' <span class="badge {"pass" if passed else "fail"}">{"pass" if passed else "fail"}</span>'
    )
    return f"{fmt_mean(value, metric, unit)}{badge}"


def _explanations(cell: Cell) -> str:
    items = "".join(
        f"<li><strong>{escape(name)}</strong> {score.value:.3g}: {escape(score.explanation)}</li>"
        for name, score in cell.scores.items()
    )
    return f'<ul class="muted">{items}</ul>'


def _plain(cell: Cell | None) -> str:
    if cell is None:
        return '<span class="muted">(no output)</span>'
    text = escape(output_text(cell))
    return f'<span class="error">{text}</span>' if cell.output.error else text


def _outputs(baseline: tuple[Cell, ...], candidate: tuple[Cell, ...]) -> str:
    parts = []
    for i in range(max(len(baseline), len(candidate))):
        b = baseline[i] if i < len(baseline) else None
        c = candidate[i] if i < len(candidate) else None
        if (b is not None and b.output.error) or (c is not None and c.output.error):
            # A failed call has no text to compare: show why it failed, not a diff.
            left, right = _plain(b), _plain(c)
        else:
            left, right = word_diff(output_text(b) if b else "", output_text(c) if c else "")
        repeat = f" · repeat {i + 1}" if max(len(baseline), len(candidate)) > 1 else ""
        parts.append(
            f'<div class="sxs"><div><h4>baseline{repeat}</h4><pre class="out">{left}</pre>'
            f"{_explanations(b) if b else ''}</div>"
            f'<div><h4>candidate{repeat}</h4><pre class="out">{right}</pre>'
            f"{_explanations(c) if c else ''}</div></div>"
        )
    return "".join(parts)


def _single_variant_cases(results: RunResults) -> list[str]:
    grouped = cells_by_case(results)
    articles = []
    for order, case in enumerate(results.cases):
        blocks = []
        for variant in results.variants:
            for cell in grouped.get((case.id, variant.id), []):
                blocks.append(
                    f"<h4>{escape(variant.id)} · repeat {cell.repeat + 1}</h4>"
                    f'<pre class="out">{escape(output_text(cell))}</pre>{_explanations(cell)}'
                )
        cells = [c for v in results.variants for c in grouped.get((case.id, v.id), [])]
        failed = any(c.output.error for c in cells) or any(
            cell_passed(c, m) is False for c in cells for m in results.metrics
        )
        search = " ".join([case.id, *case.tags]).lower()
        articles.append(
            f'<article class="case{" failed" if failed else ""}" data-id="{escape(case.id)}" '
            f'data-order="{order}" data-delta="0" data-regressed="0" data-failed="{int(failed)}" '
            f'data-search="{escape(search)}"><details>'
            f'<summary><h3>{escape(case.id)}</h3></summary><div class="case-body">'
            f"<pre>{_json(dict(case.vars))}</pre>{''.join(blocks)}</div></details></article>"
        )
    return articles
