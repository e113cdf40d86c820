"""Small inline SVG charts for the HTML report: intervals (a dot and a whisker per row,
optionally with a zero line, which makes it a forest plot) and a histogram.

Plain strings with presentation attributes only (no ``style``, no scripts, no external
references), so a chart is self-contained and renders under a strict CSP. Every label is
escaped: variant and metric names come from a suite file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
_LABEL_W = 210
_RIGHT = 24
_ROW_H = 26
_TOP = 30
_BOTTOM = 34
_INK = "#1f2933"
_MUTED = "#7b8794"
_GRID = "#e4e7eb"
_NEUTRAL = "#3e4c59"
_BAD = "#c62828"
_GOOD = "#2e7d32"


@dataclass(frozen=True, slots=True)
class Interval:
    """One row of an interval chart: a point estimate and its interval. ``tone`` colours
    it: ``bad``, ``good`` or ``""`` (neutral)."""

    label: str
    value: float
    low: float
    high: float
    tone: str = ""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _num(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}".replace("-", "\N{MINUS SIGN}")


def _xy(value: float) -> str:
    return f"{value:.1f}"


def _open(height: float, title: str, chart: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart)}" '
        f'viewBox="0 0 {WIDTH} {_xy(height)}" width="{WIDTH}" height="{_xy(height)}" role="img" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
        f'<text x="0" y="16" font-weight="600" fill="{_INK}">{escape(title)}</text>',
    ]


def _axis(
    parts: list[str], ticks: list[float], scale_x: _Scale, top: float, bottom: float, x_label: str
) -> None:
    for tick in ticks:
        x = scale_x(tick)
        parts.append(
            f'<line x1="{_xy(x)}" y1="{_xy(top)}" x2="{_xy(x)}" y2="{_xy(bottom)}" stroke="{_GRID}"/>'
        )
        parts.append(
            f'<text x="{_xy(x)}" y="{_xy(bottom + 14)}" text-anchor="middle" fill="{_MUTED}">'
            f"{_num(tick)}</text>"
        )
    if x_label:
        mid = (scale_x(ticks[0]) + scale_x(ticks[-1])) / 2
        parts.append(
            f'<text x="{_xy(mid)}" y="{_xy(bottom + 28)}" text-anchor="middle" fill="{_MUTED}">'
            f"{escape(x_label)}</text>"
        )


class _Scale:
    def __init__(self, lo: float, hi: float, left: float, right: float) -> None:
        self.lo, self.hi, self.left, self.right = lo, hi, left, right

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        clamped = min(max(value, self.lo), self.hi)
        return self.left + (clamped - self.lo) / span * (self.right - self.left)


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def interval_chart(
    rows: Sequence[Interval],
    *,
    title: str,
    chart: str,
    x_label: str = "",
    domain: tuple[float, float] | None = None,
    zero_line: bool = False,
) -> str:
    """Dot-and-whisker rows on a shared horizontal axis. With ``zero_line`` it is a
    forest plot: a dashed line at 0 shows which intervals exclude no difference.
    ``chart`` goes into ``data-chart`` so a page (and a test) can find the chart."""
    finite = [v for r in rows for v in (r.value, r.low, r.high) if math.isfinite(v)]
    lo, hi = (min(finite, default=0.0), max(finite, default=1.0)) if domain is None else domain
    if zero_line:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    ticks = nice_ticks(lo, hi)
    scale = _Scale(ticks[0], ticks[-1], _LABEL_W, WIDTH - _RIGHT)
    height = _TOP + _ROW_H * max(len(rows), 1) + _BOTTOM + (14 if x_label else 0)
    bottom = _TOP + _ROW_H * max(len(rows), 1)
    description = "; ".join(f"{r.label}: {_num(r.value)} [{_num(r.low)}, {_num(r.high)}]" for r in rows)
    parts = _open(height, title, chart, description)
    _axis(parts, ticks, scale, _TOP, bottom, x_label)
    if zero_line:
        x = scale(0.0)
        parts.append(
            f'<line x1="{_xy(x)}" y1="{_xy(_TOP - 4)}" x2="{_xy(x)}" y2="{_xy(bottom)}" '
            f'stroke="{_INK}" stroke-dasharray="4 3"/>'
        )
    for i, row in enumerate(rows):
        y = _TOP + _ROW_H * i + _ROW_H / 2
        colour = {"bad": _BAD, "good": _GOOD}.get(row.tone, _NEUTRAL)
        parts.append(
            f'<g class="row"><title>{escape(row.label)}: {_num(row.value)} '
            f"[{_num(row.low)}, {_num(row.high)}]</title>"
        )
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{_xy(y + 4)}" text-anchor="end" fill="{_INK}">'
            f"{escape(_short(row.label))}</text>"
        )
        if math.isfinite(row.low) and math.isfinite(row.high):
            x1, x2 = scale(row.low), scale(row.high)
            parts.append(
                f'<line x1="{_xy(x1)}" y1="{_xy(y)}" x2="{_xy(x2)}" y2="{_xy(y)}" stroke="{colour}" '
                f'stroke-width="2"/>'
            )
            for x in (x1, x2):
                parts.append(
                    f'<line x1="{_xy(x)}" y1="{_xy(y - 5)}" x2="{_xy(x)}" y2="{_xy(y + 5)}" '
                    f'stroke="{colour}" stroke-width="2"/>'
                )
        if math.isfinite(row.value):
            parts.append(f'<circle cx="{_xy(scale(row.value))}" cy="{_xy(y)}" r="5" fill="{colour}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    values: Sequence[float], *, title: str, chart: str, x_label: str = "", bins: int | None = None
) -> str:
    """Counts of ``values`` in equal-width bins, bars below zero red and above green, with
    a dashed line at zero (the histograms show per-case differences)."""
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min(finite, default=-1.0), max(finite, default=1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    # Bins centred on multiples of the width, so that "no change" is a bin of its own
    # (drawn neutral) rather than split between a red and a green bar.
    n_bins = bins or max(5, min(20, math.ceil(math.sqrt(max(len(finite), 1))) * 2))
    width = (hi - lo) / n_bins
    first, last = math.floor(lo / width + 0.5), math.floor(hi / width + 0.5)
    counts = {k: 0 for k in range(first, last + 1)}
    for v in finite:
        counts[min(max(math.floor(v / width + 0.5), first), last)] += 1
    lo, hi = (first - 0.5) * width, (last + 0.5) * width
    ticks = nice_ticks(lo, hi)
    left, right = 48.0, float(WIDTH - _RIGHT)
    scale = _Scale(min(ticks[0], lo), max(ticks[-1], hi), left, right)
    plot_h = 140.0
    bottom = _TOP + plot_h
    height = bottom + _BOTTOM + (14 if x_label else 0)
    top_count = max(counts.values(), default=1) or 1
    description = (
        f"{len(finite)} values between {_num(min(finite, default=0.0))} and {_num(max(finite, default=0.0))}"
    )
    parts = _open(height, title, chart, description)
    _axis(parts, ticks, scale, _TOP, bottom, x_label)
    for tick in (0, top_count):
        y = bottom - tick / top_count * plot_h
        parts.append(
            f'<text x="{_xy(left - 6)}" y="{_xy(y + 4)}" text-anchor="end" fill="{_MUTED}">{tick}</text>'
        )
    for k, count in counts.items():
        if not count:
            continue
        a, b = (k - 0.5) * width, (k + 0.5) * width
        x1, x2 = scale(a), scale(b)
        h = count / top_count * plot_h
        colour = _BAD if k < 0 else _GOOD if k > 0 else _NEUTRAL
        parts.append(
            f'<rect class="bar" x="{_xy(x1 + 1)}" y="{_xy(bottom - h)}" width="{_xy(max(x2 - x1 - 2, 1))}" '
            f'height="{_xy(h)}" fill="{colour}"><title>{count} between {_num(a)} and {_num(b)}</title></rect>'
        )
    x0 = scale(0.0)
    parts.append(
        f'<line x1="{_xy(x0)}" y1="{_xy(_TOP - 4)}" x2="{_xy(x0)}" y2="{_xy(bottom)}" '
        f'stroke="{_INK}" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<line x1="{_xy(left)}" y1="{_xy(bottom)}" x2="{_xy(right)}" y2="{_xy(bottom)}" stroke="{_MUTED}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
