"""The Jinja environment (templates are package data, autoescaped) and the formats
pages show numbers in."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup


def usd(nanos: float | None) -> str:
    if nanos is None:
        return "—"
    value = nanos / 1e9
    if value != 0 and abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def dollars(value: float) -> str:
    """A chart axis value already in dollars."""
    return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def chart(svg: str) -> Markup:
    # keel.charts escapes every label it draws: its output is markup, not text.
    return Markup(svg)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("keel.console", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=usd, ms=ms, pct=pct, number=number, when=when, chart=chart, urlencode=urlencode)
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
