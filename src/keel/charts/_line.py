"""A line chart: one polyline per series over shared x labels, a dot on every value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from keel.charts._svg import (
    INK,
    MUTED,
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
    summary,
    x_axis,
    xy,
    y_axis,
)

_RIGHT = 12
_BOTTOM = 24
_MIN_PLOT_H = 60


def line_chart(
    series: Sequence[Series],
    x_labels: Sequence[str],
    *,
    title: str,
    y_format: Callable[[float], str] = str,
    width: int = 720,
    height: int = 240,
    y_label: str = "",
) -> str:
    """Lines over ``x_labels`` (one value per label in each series; ``None`` breaks the
    line). Every value is a ``<circle data-value=...>``; the y axis starts at zero unless
    values go below it. Raises ValueError when a series' length differs from the labels'."""
    check_lengths(series, x_labels)
    values = [v for one in series for v in (finite(x) for x in one.values) if v is not None]
    if not values or not x_labels:
        return no_data("line", title, width, height)
    ticks = nice_ticks(min(0.0, min(values)), max(0.0, max(values)))
    left = left_margin(ticks, y_format) + (14 if y_label else 0)
    right = width - _RIGHT
    legend_parts: list[str] = []
    top = legend(legend_parts, series, width, 24) + 6
    # A legend of many rows grows the chart rather than squashing the plot.
    height_used = max(float(height), top + _MIN_PLOT_H + _BOTTOM)
    parts = open_svg("line", title, width, height_used, summary(series, y_format))
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
    centers = [left + band * (i + 0.5) for i in range(len(x_labels))]
    parts.append(
        f'<line x1="{xy(left)}" y1="{xy(bottom)}" x2="{xy(right)}" y2="{xy(bottom)}" stroke="{INK}"/>'
    )
    x_axis(parts, x_labels, centers, bottom, right - left)
    radius = 3 if len(x_labels) <= 60 else 2
    for index, one in enumerate(series):
        colour = attr(color_of(one, index))
        points = [finite(v) for v in one.values]
        path: list[str] = []
        pen_up = True
        for i, value in enumerate(points):
            if value is None:
                pen_up = True
                continue
            path.append(f"{'M' if pen_up else 'L'}{xy(centers[i])} {xy(scale_y(value))}")
            pen_up = False
        parts.append(f'<g class="series" data-series="{attr(one.name)}">')
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, value in enumerate(points):
            if value is None:
                continue
            parts.append(
                f'<circle class="point" cx="{xy(centers[i])}" cy="{xy(scale_y(value))}" r="{radius}" '
                f'fill="{colour}" data-value="{data_value(value)}" data-x="{attr(x_labels[i])}">'
                f"<title>{escape(one.name)}, {escape(x_labels[i])}: {escape(y_format(plain(value)))}"
                "</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
