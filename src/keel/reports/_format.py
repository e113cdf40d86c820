"""Formatting for the HTML report: money, shares, times, and small escaped tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

_NANO = Decimal(1_000_000_000)


def usd(nanos: int) -> str:
    """``$1,234.57``; amounts under a dollar keep three significant digits (``$0.00421``)
    so that small spends do not all read ``$0.00``."""
    value = Decimal(nanos) / _NANO
    if value == 0:
        return "$0.00"
    sign = "−" if value < 0 else ""
    value = abs(value)
    if value >= 1 or (value >= Decimal("0.01") and value == value.quantize(Decimal("0.01"))):
        return f"{sign}${value:,.2f}"
    return f"{sign}${float(value):.3g}" if value >= Decimal("0.000001") else f"{sign}<$0.000001"


def usd_axis(value: float) -> str:
    """Axis ticks in USD (floats from the chart)."""
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}".replace(".00", "")
    return f"${value:.3g}"


def to_usd(nanos: int) -> float:
    return nanos / 1e9


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def count(value: int) -> str:
    return f"{value:,}"


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    css: str = "",
    raw: Sequence[int] = (),
) -> str:
    """An HTML table of escaped cells; columns in ``numeric`` align right, cells in
    columns ``raw`` are already HTML (built by this module from escaped parts)."""
    numeric_set, raw_set = set(numeric), set(raw)

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="num"' if i in numeric_set else ""
        return f"<{tag}{cls}>{text if i in raw_set and tag == 'td' else escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    cls = f' class="{escape(css)}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
