"""The web console at ``/ui``: server-rendered pages over the request log, spend,
prompts, evals, alerts, keys and teams, with a login by admin or team key (a team's key
sees its team only). ``create_console_app`` builds the ASGI app the server mounts;
``Page`` adds a page (later features register theirs the same way)."""

from keel.console._app import create_console_app
from keel.console._pages import Page, PageContext, PageHandler, PageResult
from keel.console._range import TimeRange, parse_range
from keel.console._viewer import Viewer

__all__ = [
    "Page",
    "PageContext",
    "PageHandler",
    "PageResult",
    "TimeRange",
    "Viewer",
    "create_console_app",
    "parse_range",
]
