"""The Markdown summary a CI job posts as a pull-request comment: the verdict first, then
the numbers behind it (estimates, effects with intervals and p-values, the power note),
the gate's rules, the cases that regressed, and the cost.

Model outputs are untrusted and a PR comment is rendered by GitHub/GitLab: they are
HTML-escaped, stripped of Markdown syntax and of ``@mentions``/``#refs`` (a model answer
must not ping people or link issues), and cut to a short excerpt.
"""

from __future__ import annotations

import html
import re

from keel.evals._report_common import (
    CaseDiff,
    case_diffs,
    comparison_means,
    excerpt,
    find_pair,
    fmt_effect,
    fmt_interval,
    fmt_mean,
    fmt_p,
    fmt_usd,
    main_pair,
    metric_named,
    output_text,
    power_note,
    unit_scale,
    worst_regressions,
)
from keel.evals._results import PairComparison, RunResults, Variant

# Enough to make text inert in a table cell: emphasis, code, links, tables, strikethrough
# (``<`` and ``&`` are already entities by then).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MENTION = re.compile(r"([@#])(?=\w)")
_TESTS = {"mcnemar": "McNemar", "permutation": "permutation", "paired_bootstrap": "paired bootstrap"}


def md_text(text: str) -> str:
    """Untrusted text as inert Markdown, safe inside a table cell."""
    text = html.escape(" ".join(text.split()), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # A zero-width space breaks ``@user`` and ``#123`` autolinks and keeps the text readable.
    return _MENTION.sub("\\1\u200b", text)


def md_code(text: str) -> str:
    """An inline code span that holds any text (a fence longer than its backtick runs)."""
    text = " ".join(text.split()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_summary(results: RunResults) -> str:
    """The whole comment, as GitHub-flavoured Markdown."""
    lines = _headline(results)
    pair_ids = main_pair(results)
    pair = find_pair(results, *pair_ids) if pair_ids else None
    if pair_ids is not None:
        base, cand = _variant(results, pair_ids[0]), _variant(results, pair_ids[1])
        lines += [
            f"**Candidate** {_describe(cand, pair_ids[1])} vs **baseline** {_describe(base, pair_ids[0])}",
            "",
        ]
    if pair is not None:
        lines += _comparison_table(results, pair)
    else:
        lines += _estimates_table(results)
    lines += _gate(results)
    if pair_ids is not None:
        lines += _regressions(results, case_diffs(results, *pair_ids))
    others = [p for p in results.comparisons if p is not pair]
    if others:
        lines += ["<details><summary>Other comparisons</summary>", ""]
        for other in others:
            lines += [f"#### {md_code(other.candidate)} vs {md_code(other.baseline)}", ""]
            lines += _comparison_table(results, other)
        lines += ["</details>", ""]
    lines += [_cost_line(results), ""]
    return "\n".join(lines)


def _headline(results: RunResults) -> list[str]:
    if results.gate is None:
        head = f"## Eval {md_code(results.suite)}: no gate"
    elif results.gate.passed:
        head = f"## ✅ Gate passed: {md_code(results.suite)}"
    else:
        failed = sum(1 for c in results.gate.checks if not c.passed)
        head = f"## ❌ Gate failed: {md_code(results.suite)} ({failed} of {len(results.gate.checks)} rules)"
    meta = (
        f"Run {md_code(results.run_id)} · {results.created_at:%Y-%m-%d %H:%M %Z}".rstrip()
        + f" · status **{md_text(results.status)}** · {len(results.cases)} cases × "
        f"{len(results.variants)} variants · cost {fmt_usd(results.cost_usd)}"
    )
    lines = [head, "", meta, ""]
    if results.note:
        lines += [f"> {md_text(results.note)}", ""]
    return lines


def _variant(results: RunResults, variant_id: str) -> Variant | None:
    return next((v for v in results.variants if v.id == variant_id), None)


def _describe(variant: Variant | None, variant_id: str) -> str:
    if variant is None:
        return md_code(variant_id)
    return f"{md_code(variant.id)} ({md_code(variant.prompt_version)}, {md_code(variant.model)})"


def _comparison_table(results: RunResults, pair: PairComparison) -> list[str]:
    lines = [
        "| Metric | Baseline | Candidate | Effect | 95% CI | p | Test |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    for comparison in pair.metrics:
        metric = metric_named(results, comparison.metric)
        unit = unit_scale(results, metric) if metric is not None else False
        significant = comparison.p_value < comparison.alpha
        effect = fmt_effect(comparison, unit)
        if significant:
            effect = f"**{effect}** {'🔻' if comparison.effect < 0 else '🔺'}"
        test = _TESTS.get(comparison.test, comparison.test)
        if metric is not None and metric.binary:
            test += f" ({comparison.regressions} regressed, {comparison.improvements} improved)"
            name = f"{md_text(comparison.metric)} (pass/fail)"
        else:
            name = md_text(comparison.metric)
        base, cand = comparison_means(comparison, metric, unit)
        lines.append(
            f"| {name} | {base} | {cand} | {effect} | {fmt_interval(comparison.low, comparison.high, unit)} "
            f"| {fmt_p(comparison.p_value)} | {md_text(test)} |"
        )
        notes.append(f"- **{md_text(comparison.metric)}**: {power_note(comparison, unit)}")
    return [*lines, "", "Power:", *notes, ""]


def _estimates_table(results: RunResults) -> list[str]:
    header = "| Variant | " + " | ".join(md_text(m.name) for m in results.metrics) + " |"
    lines = [header, "|---|" + "---:|" * len(results.metrics)]
    for variant in results.variants:
        cells = []
        for metric in results.metrics:
            estimate = results.estimates.get(variant.id, {}).get(metric.name)
            if estimate is None:
                cells.append("–")
                continue
            unit = unit_scale(results, metric)
            cells.append(
                f"{fmt_mean(estimate.mean, metric, unit)} "
                f"[{fmt_mean(estimate.low, metric, unit)}, {fmt_mean(estimate.high, metric, unit)}]"
            )
        lines.append(f"| {md_code(variant.id)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _gate(results: RunResults) -> list[str]:
    if results.gate is None:
        return []
    lines = ["### Gate", ""]
    for check in results.gate.checks:
        mark = "✅" if check.passed else "❌"
        lines.append(f"- {mark} {md_text(check.rule)}: {md_text(check.detail)}")
    return [*lines, ""]


def _regressions(results: RunResults, diffs: list[CaseDiff]) -> list[str]:
    worst = worst_regressions(diffs, 10)
    total = sum(1 for d in diffs if d.regressed)
    if not worst:
        return ["No case that passed in the baseline fails in the candidate.", ""]
    title = f"### Worst regressions ({len(worst)} of {total})" if total > len(worst) else "### Regressions"
    lines = [
        title,
        "",
        "| Case | Lost | Baseline output | Candidate output |",
        "|---|---|---|---|",
    ]
    for diff in worst:
        label = " ".join([md_code(diff.case.id), *(md_code(t) for t in sorted(diff.case.tags))])
        base = output_text(diff.baseline_cells[0]) if diff.baseline_cells else ""
        cand = output_text(diff.candidate_cells[0]) if diff.candidate_cells else ""
        lines.append(
            f"| {label} | {', '.join(md_text(m) for m in diff.regressed_metrics)} "
            f"| {md_text(excerpt(base))} | {md_text(excerpt(cand))} |"
        )
    return [*lines, ""]


def _cost_line(results: RunResults) -> str:
    calls = len(results.cells)
    cached = sum(1 for c in results.cells if c.output.cached)
    errors = sum(1 for c in results.cells if c.output.error)
    parts = [f"Cost {fmt_usd(results.cost_usd)} for {calls} calls"]
    if cached:
        parts.append(f"{cached} from the cache")
    if errors:
        parts.append(f"{errors} failed")
    return "<sub>" + ", ".join(parts) + f" · keel eval run {md_code(results.run_id)}</sub>"
