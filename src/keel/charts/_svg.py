"""What every chart shares: the ``Series`` type, the palette, tick and number formatting,
and the SVG frame (root element, title, legend, "no data").

Charts are plain strings with presentation attributes only (no ``style``, no scripts, no
external references), so one renders the same inline in a console page under a strict
CSP, in an HTML report opened from disk, and in a PDF printed by a headless browser.
Every piece of text that comes from data (series names, labels, titles) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Colour-blind-friendly (Okabe-Ito order, then a few more): assigned by a series'
# position, so the same call always gets the same colours.
PALETTE: tuple[str, ...] = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#7f7f7f",
    "#8c564b",
    "#17becf",
)
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
FONT = "system-ui, sans-serif"
FONT_SIZE = 11
# Average glyph width at FONT_SIZE: only used to keep labels from overlapping, so an
# estimate is enough (no font metrics without a browser).
CHAR_W = 6.4


@dataclass(frozen=True)
class Series:
    """One named sequence of values, aligned with the chart's x labels; ``None`` is a gap.
    ``color`` is any SVG colour; without one the series takes the palette colour of its
    position."""

    name: str
    values: Sequence[float | None]
    color: str | None = None


def color_of(series: Series, index: int) -> str:
    return series.color or PALETTE[index % len(PALETTE)]


def finite(value: float | None) -> float | None:
    """The value as a float, or None for a gap (None, NaN and infinities alike)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def plain(value: float) -> float | int:
    """An integral float as an int, so ``str`` (the default format) prints ``5``, not ``5.0``."""
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def data_value(value: float) -> str:
    """The number in ``data-value``: parseable by ``float()`` and ``Number()``."""
    shown = plain(value)
    return str(shown) if isinstance(shown, int) else repr(float(shown))


def xy(value: float) -> str:
    return f"{value:.1f}"


def attr(value: str) -> str:
    return escape(value, quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] in steps of 1, 2, 2.5 or 5 × 10^k."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    ticks: list[float] = []
    k = first
    while True:
        # Multiples of the step, rounded, so 0.1 + 0.2 never shows as 0.30000000000000004.
        tick = round(k * step, 10)
        ticks.append(tick)
        if tick >= hi - step * 1e-9:
            break
        k += 1
    return ticks


def text_width(text: str) -> float:
    return len(text) * CHAR_W


def shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "…"


def label_step(labels: Sequence[str], room: float) -> int:
    """Show every n-th x label so that the shown ones do not overlap."""
    if not labels:
        return 1
    widest = max(text_width(label) for label in labels) + 8
    fits = max(int(room // widest), 1)
    return max(math.ceil(len(labels) / fits), 1)


def open_svg(kind: str, title: str, width: int, height: float, description: str) -> list[str]:
    """The root element, its accessible name and description, and the visible title."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" data-chart="{attr(kind)}" '
        f'aria-label="{attr(title)}" viewBox="0 0 {width} {xy(height)}" width="{width}" '
        f'height="{xy(height)}" font-family="{attr(FONT)}" font-size="{FONT_SIZE}">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
        f'<text x="0" y="14" font-size="13" font-weight="600" fill="{INK}">{escape(title)}</text>',
    ]


def no_data(kind: str, title: str, width: int, height: float) -> str:
    parts = open_svg(kind, title, width, height, "no data")
    parts.append(
        f'<rect x="0.5" y="24.5" width="{width - 1}" height="{xy(max(height - 25, 1))}" fill="none" '
        f'stroke="{GRID}"/>'
    )
    parts.append(
        f'<text class="no-data" x="{xy(width / 2)}" y="{xy(12 + height / 2)}" text-anchor="middle" '
        f'fill="{MUTED}">no data</text></svg>'
    )
    return "".join(parts)


def legend(parts: list[str], series: Sequence[Series], width: int, top: float) -> float:
    """Swatches and names in rows under the title; returns the y below the legend."""
    x, y = 0.0, top
    for index, one in enumerate(series):
        name = shorten(one.name, 40)
        item_w = 16 + text_width(name) + 14
        if x > 0 and x + item_w > width:
            x, y = 0.0, y + 16
        parts.append(
            f'<g class="legend-item"><rect x="{xy(x)}" y="{xy(y)}" width="10" height="10" '
            f'fill="{attr(color_of(one, index))}"/><text x="{xy(x + 14)}" y="{xy(y + 9)}" '
            f'fill="{INK}">{escape(name)}</text></g>'
        )
        x += item_w
    return y + 18


def y_axis(
    parts: list[str],
    ticks: Sequence[float],
    scale: Callable[[float], float],
    left: float,
    right: float,
    y_format: Callable[[float], str],
) -> None:
    """Horizontal grid lines with their labels right-aligned left of the plot."""
    parts.append('<g class="y-axis">')
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{xy(left)}" y1="{xy(y)}" x2="{xy(right)}" y2="{xy(y)}" stroke="{GRID}"/>'
            f'<text x="{xy(left - 6)}" y="{xy(y + 4)}" text-anchor="end" fill="{MUTED}">'
            f"{escape(y_format(plain(tick)))}</text>"
        )
    parts.append("</g>")


def x_axis(
    parts: list[str], labels: Sequence[str], centers: Sequence[float], baseline: float, room: float
) -> None:
    """The x labels under the plot, thinned so that they do not overlap."""
    step = label_step(labels, room)
    parts.append('<g class="x-axis">')
    for index in range(0, len(labels), step):
        parts.append(
            f'<text x="{xy(centers[index])}" y="{xy(baseline + 16)}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(shorten(labels[index], 24))}</text>'
        )
    parts.append("</g>")


def left_margin(ticks: Sequence[float], y_format: Callable[[float], str]) -> float:
    return max(text_width(y_format(plain(t))) for t in ticks) + 12


class Linear:
    """Maps [lo, hi] onto [a, b] (b may be below a: SVG's y grows downwards)."""

    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        self.lo, self.hi, self.a, self.b = lo, hi, a, b

    def __call__(self, value: float) -> float:
        span = (self.hi - self.lo) or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def check_lengths(series: Sequence[Series], x_labels: Sequence[str]) -> None:
    for one in series:
        if len(one.values) != len(x_labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(x_labels)} x labels")


def summary(series: Sequence[Series], y_format: Callable[[float], str]) -> str:
    """A text equivalent for ``<desc>``: each series' point count and range."""
    parts = []
    for one in series:
        values = [v for v in (finite(x) for x in one.values) if v is not None]
        if values:
            parts.append(
                f"{one.name}: {len(values)} values from {y_format(plain(min(values)))} "
                f"to {y_format(plain(max(values)))}"
            )
        else:
            parts.append(f"{one.name}: no values")
    return "; ".join(parts)
