"""Console page timings: every page, through the real app on a real port, over a store
seeded with N logged requests (default 100,000 over 30 days, SQLite).

    python -m bench.console                      # seed 100k into a temp dir, time, print
    python -m bench.console --requests 20000 --repeat 7
    python -m bench.console --database sqlite:////tmp/keel-console.db --no-seed

Each page is asked ``--repeat`` times after one warm-up; the table gives the median
server-side time (the console's ``Server-Timing`` header: from the request reaching the
console to its response being ready, queries and rendering included) and the median
wall time seen by the client. Ranged pages are timed over 24h (the default) and 30d
(every seeded row). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.routing import Mount

from bench.console_seed import seed, seed_eval_run
from keel.access import AccessAdmin, Actor
from keel.console import create_console_app
from keel.core import AccessSettings, ConsoleSettings, KeelSettings, ServerSettings, StoreSettings
from keel.server import KeelApp, build_app, uvicorn_config

BUDGET_MS = 500.0


def serve(settings: KeelSettings) -> tuple[KeelApp, uvicorn.Server, threading.Thread, str]:
    """Keel with the console at /ui (mounted here if the server does not mount it yet)."""
    app = build_app(settings)
    routes = app.asgi.starlette.router.routes
    if not any(isinstance(route, Mount) and route.path == "/ui" for route in routes):
        routes.append(
            Mount("/ui", app=create_console_app(engine=app.engine, keys=app.keys, settings=settings))
        )
    server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return app, server, thread, f"http://127.0.0.1:{port}/ui"


def settings_for(home: Path, database: str) -> KeelSettings:
    return KeelSettings(
        home=home,
        server=ServerSettings(host="127.0.0.1", port=0),
        store=StoreSettings(url=database),
        access=AccessSettings(enabled=True, create_first_admin=False),
        console=ConsoleSettings(secret="bench"),
    )


def time_page(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """(median server ms, median wall ms, status) after one warm-up request."""
    client.get(path)
    server_ms, wall_ms = [], []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        wall_ms.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        match = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
        server_ms.append(float(match.group(1)) if match else float("nan"))
    return statistics.median(server_ms), statistics.median(wall_ms), status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    parser.add_argument("--no-seed", action="store_true", help="the database is seeded already")
    args = parser.parse_args()
    out = Console()
    home = Path(tempfile.mkdtemp(prefix="keel-bench-console-"))
    database = args.database or f"sqlite:///{home / 'keel.db'}"
    app, server, thread, url = serve(settings_for(home, database))
    try:
        if args.no_seed:
            admin_key = AccessAdmin(app.engine).create_key(Actor.cli(), name="bench", role="admin").secret
            team_key = None
        else:
            started = time.perf_counter()
            seeded = seed(app.engine, args.requests, days=args.days)
            out.print(f"seeded {args.requests:,} requests in {time.perf_counter() - started:.1f} s")
            seed_eval_run(app.engine)
            admin_key = seeded.admin_key
            team_key = next(iter(seeded.teams.values())).admin_key
        app.keys.reload()
        rows = run(url, admin_key, team_key, args.repeat)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.engine.dispose()
    table = Table(title=f"Console pages, {args.requests:,} logged requests ({app.engine.dialect.name})")
    for column in ("page", "viewer", "range", "server ms (median)", "wall ms (median)", "status"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    worst = 0.0
    for page, viewer, span, server_ms, wall_ms, status in rows:
        worst = max(worst, wall_ms)
        flag = "" if wall_ms < BUDGET_MS else " [red]> 500[/red]"
        table.add_row(page, viewer, span, f"{server_ms:.1f}", f"{wall_ms:.1f}{flag}", str(status))
    out.print(table)
    out.print(f"slowest page: {worst:.0f} ms (budget {BUDGET_MS:.0f} ms)")


def run(
    url: str, admin_key: str, team_key: str | None, repeat: int
) -> list[tuple[str, str, str, float, float, int]]:
    rows = []
    viewers = [("admin", admin_key)] + ([("team", team_key)] if team_key else [])
    for viewer, key in viewers:
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/login", data={"key": key}).status_code == 303
            listing = client.get("/requests?range=30d").text
            request_id = re.search(r'data-request-id="([^"]+)"', listing)
            prompt = re.search(r'href="/ui/prompts/([^"]+)"', client.get("/prompts").text)
            pages: list[tuple[str, bool]] = [
                ("/overview", True),
                ("/cost", True),
                ("/requests", True),
                ("/requests?status=error", True),
                ("/requests?guard=any", True),
                ("/requests?q=refund", True),
                ("/api/overview", True),
                ("/cost.csv", True),
                ("/prompts", False),
                ("/alerts", False),
                ("/access", False),
            ]
            if viewer == "admin":
                pages.append(("/evals", False))
            if prompt:
                pages.append((f"/prompts/{prompt.group(1)}", True))
            if request_id:
                pages.append((f"/requests/{request_id.group(1)}", False))
            for path, ranged in pages:
                for span in ("24h", "30d") if ranged else ("-",):
                    asked = path if span == "-" else f"{path}{'&' if '?' in path else '?'}range={span}"
                    server_ms, wall_ms, status = time_page(client, asked, repeat)
                    rows.append((path, viewer, span, server_ms, wall_ms, status))
    return rows


if __name__ == "__main__":
    main()
