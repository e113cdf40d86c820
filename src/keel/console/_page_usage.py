"""Overview, Cost and Requests: the pages over the request log."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from starlette.responses import Response

from keel.charts import Series, bar_chart, line_chart, stacked_bar_chart
from keel.console._metrics import DIMENSIONS, breakdowns, csv_rows, names_of, overview, stacked_cost, totals
from keel.console._pages import PageContext, PageResult
from keel.console._render import dollars, ms
from keel.console._requests import (
    GUARD_FILTERS,
    RequestFilters,
    answers_of,
    list_requests,
    messages_of,
    parse_json,
    waterfall_svg,
)
from keel.console._sql import c
from keel.core import InvalidRequest, NotFound
from keel.store import get_request

CSV_GROUPS = ("day", "team", "key", "model", "end_user")


def overview_page(ctx: PageContext) -> PageResult:
    team_id = ctx.viewer.team_id
    with ctx.engine.connect() as connection:
        data = overview(connection, team_id, ctx.range)
    labels = [ctx.range.label(b.start) for b in data.buckets]
    charts = [
        line_chart(
            [
                Series("requests", [float(b.requests) for b in data.buckets]),
                Series("errors", [float(b.errors) for b in data.buckets]),
            ],
            labels,
            title="Requests and errors",
            y_format=lambda v: f"{v:,.0f}",
        ),
        stacked_bar_chart(
            [Series("spend", [b.cost_nanos / 1e9 for b in data.buckets])],
            labels,
            title="Spend",
            y_format=dollars,
        ),
        line_chart(
            [
                Series("p50", [b.latency_p50 for b in data.buckets]),
                Series("p95", [b.latency_p95 for b in data.buckets]),
            ],
            labels,
            title="Latency (successful requests)",
            y_format=ms,
        ),
    ]
    return PageResult("overview.html", {"data": data, "charts": charts})


def cost_page(ctx: PageContext) -> PageResult:
    team_id = ctx.viewer.team_id
    stack_by = ctx.params.get("stack") or ("team" if ctx.viewer.is_admin else "model")
    if stack_by not in DIMENSIONS:
        raise InvalidRequest(f"stack must be one of {', '.join(DIMENSIONS)}.", param="stack")
    with ctx.engine.connect() as connection:
        total = totals(connection, team_id, ctx.range, guards=False)
        dimensions = [name for name in DIMENSIONS if name != "team" or ctx.viewer.is_admin]
        by = breakdowns(connection, team_id, ctx.range, dimensions, limit=10)
        stacked = stacked_cost(connection, team_id, ctx.range, stack_by, leaders=by.get(stack_by))
    labels = [ctx.range.label(start) for start in stacked.starts]
    charts = {
        "stacked": stacked_bar_chart(
            [Series(name, values) for name, values in stacked.series.items()],
            labels,
            title=f"Spend by {stack_by.replace('_', ' ')}",
            y_format=dollars,
        ),
    }
    for name, shares in by.items():
        charts[name] = bar_chart(
            [(share.label, share.cost_nanos / 1e9) for share in shares],
            title=f"Top {name.replace('_', ' ')}s by spend",
            value_format=dollars,
            width=460,
        )
    return PageResult(
        "cost.html",
        {
            "totals": total,
            "by": by,
            "charts": charts,
            "stack_by": stack_by,
            "dimensions": [d for d in DIMENSIONS if d != "team" or ctx.viewer.is_admin],
            "csv_groups": CSV_GROUPS,
        },
    )


def cost_csv(ctx: PageContext) -> Response:
    groups = [g for g in (ctx.params.get("by") or "day,team,model").split(",") if g]
    unknown = [g for g in groups if g not in CSV_GROUPS]
    if unknown or not groups:
        raise InvalidRequest(f"by must name some of {', '.join(CSV_GROUPS)}.", param="by")
    with ctx.engine.connect() as connection:
        rows = csv_rows(connection, ctx.viewer.team_id, ctx.range, groups)
    columns: list[str] = []
    for group in groups:
        columns.append(group)
        if group in ("team", "key"):
            columns.append(f"{group}_name")
    columns += ["requests", "cost_usd", "saved_usd"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="keel-cost-{stamp}.csv"'},
    )


def requests_page(ctx: PageContext) -> PageResult:
    filters = RequestFilters.parse(ctx.params)
    team_id = ctx.viewer.check_team(filters.team)
    with ctx.engine.connect() as connection:
        page = list_requests(connection, filters, team_id, ctx.range)
        models = _models(connection, ctx.viewer.team_id)
        names = names_of(connection)
    return PageResult(
        "requests.html",
        {
            "filters": filters,
            "results": page,
            "models": models,
            "names": names,
            "guard_filters": GUARD_FILTERS,
            "next_url": ctx.range_url("/requests", **filters.query(before=page.next_cursor))
            if page.next_cursor
            else None,
            "first_url": ctx.range_url("/requests", **filters.query(before=None)) if filters.before else None,
        },
    )


def _models(connection: Connection, team_id: str | None) -> list[str]:
    """The models to filter by: a DISTINCT off the (model) index, not the rows."""
    query = select(c.requested_model).distinct().order_by(c.requested_model).limit(200)
    if team_id is not None:
        query = query.where(c.team_id == team_id)
    return [str(v) for v in connection.execute(query).scalars()]


def request_detail(ctx: PageContext) -> PageResult:
    request_id = ctx.path_params["request_id"]
    record = get_request(ctx.engine, request_id)
    # Another team's request answers as if it did not exist.
    if record is None or (ctx.viewer.team_id is not None and record.team_id != ctx.viewer.team_id):
        raise NotFound(f"No request {request_id!r}.", param="request_id")
    with ctx.engine.connect() as connection:
        names = names_of(connection)
    request_body = parse_json(record.request_body)
    response_body = parse_json(record.response_body)
    guards = record.guards or {}
    return PageResult(
        "request.html",
        {
            "r": record,
            "names": names,
            "messages": messages_of(request_body),
            "answers": answers_of(response_body),
            "usage": response_body.get("usage") if isinstance(response_body, dict) else None,
            "guards": [
                (stage, guards[stage]) for stage in ("input", "output") if isinstance(guards.get(stage), dict)
            ],
            "waterfall": waterfall_svg(record.ttft_ms, record.latency_ms),
            "fallback": record.route is not None and record.route != record.requested_model,
        },
        title=f"Request {request_id}",
    )
