"""Admin API route: the monthly cost and governance report (``keel report cost`` over
HTTP). Admins get any team's report or all teams'; a team admin only its own team's
(``keel.reports.report_team``); other roles are refused."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from keel.admin._auth import Caller
from keel.admin._common import ERRORS
from keel.reports import build_cost_report, parse_month, render_html, report_team

router = APIRouter()

# The report is one self-contained document: its only resources are an inline style
# block and inline SVG.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@router.get("/reports/cost", response_class=HTMLResponse, tags=["reports"], responses=ERRORS)
async def cost_report(
    request: Request,
    who: Caller,
    month: Annotated[str, Query(description="YYYY-MM", examples=["2026-11"])],
    team_id: Annotated[str | None, Query(description="One team (default: all, for admins)")] = None,
) -> HTMLResponse:
    """The month's cost and governance report as HTML: spend vs budget, models, keys,
    cache savings, guard incidents and eval gates, per team."""
    team = report_team(who, team_id)
    engine: Engine = request.app.state.engine
    report = await asyncio.to_thread(build_cost_report, engine, parse_month(month), team_id=team)
    return HTMLResponse(render_html(report), headers={"Content-Security-Policy": _CSP})
