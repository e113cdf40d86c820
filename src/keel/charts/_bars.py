"""Bar charts: vertical bars stacked per x label (spend by model per day) and horizontal
bars for a ranking (top keys, spend by team)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from keel.charts._svg import (
    INK,
    MUTED,
    PALETTE,
    Linear,
    Series,
    attr,
    check_lengths,
    color_of,
    data_value,
    finite,
    left_margin,
    legend,
    nice_ticks,
    no_data,
    open_svg,
    plain,
    shorten,
    summary,
    text_width,
    x_axis,
    xy,
    y_axis,
)

_RIGHT = 12
_BOTTOM = 24
_MIN_PLOT_H = 60
_ROW_H = 22
_BAR_TOP = 28


def stacked_bar_chart(
    series: Sequence[Series],
    x_labels: Sequence[str],
    *,
    title: str,
    y_format: Callable[[float], str] = str,
    width: int = 720,
    height: int = 240,
    y_label: str = "",
) -> str:
    """One bar per x label, made of one ``<rect data-value=...>`` per series with a value
    there (``None`` draws nothing; zero draws an empty segment, so the count of
    ``data-value`` elements is the count of values). Negative values stack downwards from
    zero. Raises ValueError when a series' length differs from the labels'."""
    check_lengths(series, x_labels)
    cleaned = [[finite(v) for v in one.values] for one in series]
    if not x_labels or all(v is None for values in cleaned for v in values):
        return no_data("stacked", title, width, height)
    highs = [sum(max(vals[i] or 0.0, 0.0) for vals in cleaned) for i in range(len(x_labels))]
    lows = [sum(min(vals[i] or 0.0, 0.0) for vals in cleaned) for i in range(len(x_labels))]
    ticks = nice_ticks(min(0.0, min(lows)), max(0.0, max(highs)))
    left = left_margin(ticks, y_format) + (14 if y_label else 0)
    right = width - _RIGHT
    legend_parts: list[str] = []
    top = legend(legend_parts, series, width, 24) + 6
    height_used = max(float(height), top + _MIN_PLOT_H + _BOTTOM)
    totals = "; ".join(
        f"{x}: {y_format(plain(h + lo))}" for x, h, lo in zip(x_labels, highs, lows, strict=True)
    )
    parts = open_svg("stacked", title, width, height_used, f"{summary(series, y_format)}. Totals: {totals}")
    parts.extend(legend_parts)
    bottom = height_used - _BOTTOM
    scale_y = Linear(ticks[0], ticks[-1], bottom, top)
    y_axis(parts, ticks, scale_y, left, right, y_format)
    if y_label:
        mid = (top + bottom) / 2
        parts.append(
            f'<text x="10" y="{xy(mid)}" transform="rotate(-90 10 {xy(mid)})" text-anchor="middle" '
            f'fill="{MUTED}">{escape(y_label)}</text>'
        )
    band = (right - left) / len(x_labels)
    bar_w = max(band * 0.72, 1.0)
    centers = [left + band * (i + 0.5) for i in range(len(x_labels))]
    up = [0.0] * len(x_labels)
    down = [0.0] * len(x_labels)
    for index, one in enumerate(series):
        colour = attr(color_of(one, index))
        parts.append(f'<g class="series" data-series="{attr(one.name)}">')
        for i, value in enumerate(cleaned[index]):
            if value is None:
                continue
            if value >= 0:
                y_top, y_bottom = scale_y(up[i] + value), scale_y(up[i])
                up[i] += value
            else:
                y_top, y_bottom = scale_y(down[i]), scale_y(down[i] + value)
                down[i] += value
            parts.append(
                f'<rect class="bar" x="{xy(centers[i] - bar_w / 2)}" y="{xy(y_top)}" width="{xy(bar_w)}" '
                f'height="{xy(y_bottom - y_top)}" fill="{colour}" data-value="{data_value(value)}" '
                f'data-x="{attr(x_labels[i])}"><title>{escape(one.name)}, {escape(x_labels[i])}: '
                f"{escape(y_format(plain(value)))}</title></rect>"
            )
        parts.append("</g>")
    zero = scale_y(0.0)
    parts.append(f'<line x1="{xy(left)}" y1="{xy(zero)}" x2="{xy(right)}" y2="{xy(zero)}" stroke="{INK}"/>')
    x_axis(parts, x_labels, centers, bottom, right - left)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: Callable[[float], str] = str,
    width: int = 720,
    height: int | None = None,
) -> str:
    """Horizontal bars, one ``<rect data-value=...>`` per item in the given order, the
    label left of the bar and the formatted value right of it. Without ``height`` the
    chart is as tall as its rows need. Items whose value is not finite are left out."""
    rows = [(label, v) for label, raw in items if (v := finite(raw)) is not None]
    if not rows:
        return no_data("bar", title, width, height or 120)
    row_h = _ROW_H if height is None else max((height - _BAR_TOP - 6) / len(rows), 6.0)
    height_used = float(height) if height is not None else _BAR_TOP + row_h * len(rows) + 6
    labels = [shorten(label, 40) for label, _ in rows]
    label_w = min(max(text_width(label) for label in labels) + 10, width * 0.4)
    texts = [value_format(plain(v)) for _, v in rows]
    value_w = max(text_width(t) for t in texts) + 10
    lo = min(0.0, min(v for _, v in rows))
    hi = max(0.0, max(v for _, v in rows))
    scale_x = Linear(lo, hi if hi > lo else lo + 1.0, label_w, max(width - value_w - _RIGHT, label_w + 10))
    description = "; ".join(f"{label}: {text}" for (label, _), text in zip(rows, texts, strict=True))
    parts = open_svg("bar", title, width, height_used, description)
    zero = scale_x(0.0)
    for i, ((label, value), short, text) in enumerate(zip(rows, labels, texts, strict=True)):
        y = _BAR_TOP + row_h * i
        x1, x2 = sorted((zero, scale_x(value)))
        bar_h = max(row_h * 0.7, 1.0)
        colour = PALETTE[0]
        parts.append(
            f'<g class="row"><text x="{xy(label_w - 8)}" y="{xy(y + row_h / 2 + 4)}" text-anchor="end" '
            f'fill="{INK}">{escape(short)}</text>'
            f'<rect class="bar" x="{xy(x1)}" y="{xy(y + (row_h - bar_h) / 2)}" width="{xy(x2 - x1)}" '
            f'height="{xy(bar_h)}" fill="{colour}" data-value="{data_value(value)}" '
            f'data-label="{attr(label)}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{xy(max(x2, zero) + 6)}" y="{xy(y + row_h / 2 + 4)}" fill="{MUTED}">'
            f"{escape(text)}</text></g>"
        )
    parts.append(
        f'<line x1="{xy(zero)}" y1="{_BAR_TOP - 2}" x2="{xy(zero)}" y2="{xy(height_used - 4)}" '
        f'stroke="{INK}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
