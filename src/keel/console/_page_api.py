"""The console's JSON endpoints: what the pages show, for scripts and tests. Same
sessions or ``Authorization: Bearer`` keys, same team scoping as the pages."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from keel.console._metrics import DIMENSIONS, breakdown, overview
from keel.console._pages import PageContext
from keel.console._requests import RequestFilters, list_requests
from keel.core import InvalidRequest


def overview_json(ctx: PageContext) -> JSONResponse:
    with ctx.engine.connect() as connection:
        data = overview(connection, ctx.viewer.team_id, ctx.range)
    t = data.totals
    return JSONResponse(
        {
            "team_id": ctx.viewer.team_id,
            "since": ctx.range.since.isoformat(),
            "until": ctx.range.until.isoformat(),
            "requests": t.requests,
            "errors": t.errors,
            "error_rate": t.error_rate,
            "cost_nanos": t.cost_nanos,
            "saved_nanos": t.saved_nanos,
            "cache_hit_rate": t.cache_hit_rate,
            "guard_triggers": t.guard_triggers,
            "latency_p50_ms": t.latency_p50,
            "latency_p95_ms": t.latency_p95,
            "spend_today_nanos": data.spend_today,
            "spend_month_nanos": data.spend_month,
            "buckets": [
                {
                    "start": b.start.isoformat(),
                    "requests": b.requests,
                    "errors": b.errors,
                    "cost_nanos": b.cost_nanos,
                    "latency_p50_ms": b.latency_p50,
                    "latency_p95_ms": b.latency_p95,
                }
                for b in data.buckets
            ],
        }
    )


def cost_json(ctx: PageContext) -> JSONResponse:
    dimension = ctx.params.get("by") or "model"
    if dimension not in DIMENSIONS:
        raise InvalidRequest(f"by must be one of {', '.join(DIMENSIONS)}.", param="by")
    with ctx.engine.connect() as connection:
        shares = breakdown(connection, ctx.viewer.team_id, ctx.range, dimension)
    return JSONResponse(
        {
            "by": dimension,
            "rows": [
                {"id": s.id, "label": s.label, "requests": s.requests, "cost_nanos": s.cost_nanos}
                for s in shares
            ],
        }
    )


def requests_json(ctx: PageContext) -> JSONResponse:
    filters = RequestFilters.parse(ctx.params)
    team_id = ctx.viewer.check_team(filters.team)
    with ctx.engine.connect() as connection:
        page = list_requests(connection, filters, team_id, ctx.range)
    return JSONResponse({"requests": [_row(r) for r in page.rows], "next": page.next_cursor})


def _row(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["created_at"] = values["created_at"].isoformat()
    return values
