"""The page registry: what the console serves and shows in its navigation.

A page is a path, a title and a handler; the handler is a plain function (it runs in a
worker thread, since it queries the store) that returns a template and its context, or a
ready response (a CSV, a report). Pages that later issues add (Feedback, Drift) are
``Page`` values passed to ``create_console_app(pages=...)``: nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.responses import Response

from keel.console._range import TimeRange
from keel.console._viewer import Viewer
from keel.core import KeelSettings


@dataclass(frozen=True)
class PageContext:
    engine: Engine
    settings: KeelSettings
    viewer: Viewer
    range: TimeRange
    params: Mapping[str, str]  # the query string
    path_params: Mapping[str, str]
    base: str  # the console's URL prefix ("/ui")
    method: str = "GET"
    # A POST's form fields (urlencoded), already checked against ``csrf_token``.
    form: Mapping[str, str] = field(default_factory=dict)
    # What a page's POST forms send back in a hidden ``csrf`` field ("" without a session).
    csrf_token: str = ""

    def url(self, path: str, **params: str | None) -> str:
        """A console URL; ``params`` without empty values."""
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def range_url(self, path: str, **params: str | None) -> str:
        """A console URL that keeps the current time range."""
        return self.url(path, **(self.range.query() | params))


@dataclass(frozen=True)
class PageResult:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    title: str | None = None  # overrides the page's title (a detail view)


PageHandler = Callable[[PageContext], PageResult | Response]


@dataclass(frozen=True)
class Page:
    """``path`` is a Starlette path (``/requests/{request_id}``); ``nav`` pages appear in
    the navigation, in ``order``; ``admin_only`` pages are invisible (404) to team keys;
    ``ranged`` pages show the time-range picker; ``methods`` with ``POST`` take forms
    (the app checks their ``csrf`` field against the session before the handler runs)."""

    path: str
    title: str
    handler: PageHandler
    nav: bool = True
    order: int = 100
    admin_only: bool = False
    ranged: bool = True
    methods: tuple[str, ...] = ("GET",)

    @property
    def name(self) -> str:
        return self.path.strip("/").split("/")[0] or "overview"


def nav_pages(pages: list[Page], viewer: Viewer) -> list[Page]:
    return sorted(
        (p for p in pages if p.nav and (viewer.is_admin or not p.admin_only)), key=lambda p: p.order
    )
