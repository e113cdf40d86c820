"""Self-contained SVG charts for the console and the reports.

Each function returns one ``<svg role="img" class="chart" data-chart="line|stacked|bar">``
string with a ``<title>`` (its accessible name) and a ``<desc>`` (a text equivalent),
presentation attributes only (no ``style``, no script, no external reference), every
label escaped, and a ``data-value`` on every plotted point or bar so that a page test can
count and read them. Empty input renders a chart saying "no data".
"""

from keel.charts._bars import bar_chart, stacked_bar_chart
from keel.charts._line import line_chart
from keel.charts._svg import PALETTE, Series, nice_ticks

__all__ = ["PALETTE", "Series", "bar_chart", "line_chart", "nice_ticks", "stacked_bar_chart"]
