"""``keel report cost``: the month's cost and governance report, as the operator (every
team; ``--team`` for one), written as HTML and, with headless Chromium, PDF and PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.access import AccessAdmin
from keel.cli._common import ConfigOption, JsonOption, find_team_id, migrated_store, print_json
from keel.reports import parse_month, write_cost_report
from keel.spend import format_usd

report_app = typer.Typer(name="report", help="Write reports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app)


@report_app.command("cost")
def cost(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM (UTC), e.g. 2026-11.")],
    team: Annotated[
        str | None, typer.Option("--team", help="One team (name or id). Default: every team.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="The directory to write into.", file_okay=False)] = Path(
        "."
    ),
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print the report to PDF (needs Chromium).")
    ] = False,
    png: Annotated[
        bool, typer.Option("--png", help="Also write each chart as PNG (needs Chromium).")
    ] = False,
    chromium: Annotated[
        str | None,
        typer.Option("--chromium", help="The Chromium or Chrome binary. Default: $KEEL_CHROMIUM, else PATH."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Write the cost and governance report of a month: per team, spend against budgets,
    spend by model and day, models, top keys, cache savings, guard incidents and eval
    gates."""
    with migrated_store(config) as (engine, _settings):
        period = parse_month(month)
        team_id = find_team_id(AccessAdmin(engine), team)
        written = write_cost_report(engine, period, out, team_id=team_id, pdf=pdf, png=png, chromium=chromium)
    files = [written.html, *([written.pdf] if written.pdf else []), *written.pngs]
    if as_json:
        print_json(
            {
                "month": str(period),
                "files": [str(f) for f in files],
                "teams": [
                    {
                        "team_id": t.team_id,
                        "name": t.name,
                        "cost_usd": format_usd(t.cost_nanos),
                        "requests": t.requests,
                        "budget_used": t.month_budget.fraction if t.month_budget else None,
                        "guard_incidents": t.guards.incidents,
                    }
                    for t in written.report.teams
                ],
            }
        )
        return
    report = written.report
    typer.echo(f"{period.label}: {len(report.teams)} team(s), spend ${format_usd(report.cost_nanos)}")
    for path in files:
        typer.echo(f"wrote {path}")
