"""The report's tables of budgets, guard incidents and eval runs (HTML, escaped)."""

from __future__ import annotations

from html import escape

from keel.reports._format import count, percent, table, usd, when
from keel.reports._types import BudgetLine, EvalRun, GuardIncidents


def budget_state(line: BudgetLine) -> str:
    if line.fraction >= 1:
        return "over"
    if line.alert_at_fraction is not None and line.fraction >= line.alert_at_fraction:
        return "alert"
    return "ok"


def budgets_table(lines: tuple[BudgetLine, ...], heading: str) -> str:
    if not lines:
        return f'<h3>{escape(heading)}</h3><p class="muted">No budgets.</p>'
    rows = []
    for line in lines:
        state = budget_state(line)
        rows.append(
            [
                f"{line.scope} {line.scope_name or line.scope_id}",
                line.period + ("" if line.hard else " (soft)"),
                usd(line.limit_nanos),
                line.peak_label if line.windows == 1 else f"peak: {line.peak_label}",
                usd(line.peak_spent_nanos),
                f'<span class="{state}">{escape(percent(line.fraction))}</span>',
                f"{line.over_windows} of {line.windows}"
                if line.windows > 1
                else ("yes" if line.over_windows else "no"),
            ]
        )
    return f"<h3>{escape(heading)}</h3>" + table(
        ["Budget", "Period", "Limit", "Window", "Spent", "Used", "Reached limit"],
        rows,
        numeric=(2, 4, 5),
        raw=(5,),
        css="budgets",
    )


def guards_block(guards: GuardIncidents) -> str:
    parts = ["<h3>Guard incidents</h3>"]
    if not guards.incidents:
        screened = f" of {count(guards.screened)} screened requests" if guards.screened else ""
        parts.append(f'<p class="muted">None{escape(screened)}.</p>')
        return "".join(parts)
    parts.append(
        f"<p>{count(guards.incidents)} of {count(guards.screened)} screened requests "
        f"({percent(guards.incidents / guards.screened) if guards.screened else '—'}).</p>"
    )
    parts.append('<div class="grid2">')
    for title, counts in (
        ("Decision", guards.by_decision),
        ("Policy", guards.by_policy),
        ("Scanner", guards.by_scanner),
        ("Stage", guards.by_stage),
    ):
        parts.append(
            table(
                [title, "Requests"],
                [[k, count(v)] for k, v in counts.items()],
                numeric=(1,),
                css=f"guards-{title.lower()}",
            )
        )
    parts.append("</div>")
    if guards.examples:
        parts.append("<h3>Examples</h3>")
        parts.append(
            table(
                ["Request", "Time", "Stage", "Policy", "Decision", "Why"],
                [
                    [e.request_id, when(e.at), e.stage, e.policy, e.decision, "; ".join(e.reasons)]
                    for e in guards.examples
                ],
                css="guard-examples",
            )
        )
    return "".join(parts)


def _gate(run: EvalRun) -> str:
    if run.gate_passed is None:
        return "—"
    return '<span class="ok">passed</span>' if run.gate_passed else '<span class="over">failed</span>'


def evals_block(runs: tuple[EvalRun, ...], heading: str, empty: str) -> str:
    if not runs:
        return f'<h3>{escape(heading)}</h3><p class="muted">{escape(empty)}</p>'
    passed = sum(1 for r in runs if r.gate_passed is True)
    failed = sum(1 for r in runs if r.gate_passed is False)
    return (
        f"<h3>{escape(heading)}</h3><p>{count(len(runs))} run{'' if len(runs) == 1 else 's'}: "
        f"{passed} passed the gate, {failed} failed, "
        f"{len(runs) - passed - failed} without a gate.</p>"
        + table(
            ["Run", "Suite", "Started", "Status", "Gate", "Cost", "Note"],
            [
                [r.id, r.suite, when(r.created_at), r.status, _gate(r), usd(r.cost_nanos), r.note or ""]
                for r in runs
            ],
            numeric=(5,),
            raw=(4,),
            css="evals",
        )
    )
