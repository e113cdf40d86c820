"""keel.charts: well-formed, accessible, self-contained SVG with one data-value per value."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from keel.charts import PALETTE, Series, bar_chart, line_chart, nice_ticks, stacked_bar_chart

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def data_values(root: ET.Element) -> list[float]:
    return [float(e.attrib["data-value"]) for e in root.iter() if "data-value" in e.attrib]


def all_text(root: ET.Element) -> str:
    return " ".join(t for e in root.iter() for t in (e.text, e.tail) if t)


def assert_self_contained(svg: str) -> None:
    lowered = svg.lower()
    for forbidden in ("<script", "href", "url(", "style=", "onload", "@import", "http://", "https://"):
        if forbidden == "http://":
            # The SVG namespace is the only URL allowed.
            lowered = lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert forbidden not in lowered, forbidden


SERIES = [
    Series("gpt-4o", [1.0, 2.5, None, 4.0]),
    Series("mini", [0.5, 0.0, 0.25, None], color="#123456"),
]
DAYS = ["11-01", "11-02", "11-03", "11-04"]


@pytest.mark.parametrize(
    ("render", "kind"),
    [
        (lambda: line_chart(SERIES, DAYS, title="Latency"), "line"),
        (lambda: stacked_bar_chart(SERIES, DAYS, title="Latency"), "stacked"),
    ],
)
def test_series_charts_have_one_data_value_per_value(render, kind) -> None:  # type: ignore[no-untyped-def]
    svg = render()
    root = parse(svg)
    assert root.attrib["role"] == "img"
    assert root.attrib["class"] == "chart"
    assert root.attrib["data-chart"] == kind
    assert root.find(f"{NS}title").text == "Latency"  # type: ignore[union-attr]
    # None is a gap: 3 + 3 values, zero included.
    assert sorted(data_values(root)) == [0.0, 0.25, 0.5, 1.0, 2.5, 4.0]
    text = all_text(root)
    for label in DAYS:
        assert label in text
    assert "gpt-4o" in text and "mini" in text  # the legend
    assert_self_contained(svg)
    # The explicit colour is used, the other series gets the first palette colour.
    assert 'fill="#123456"' in svg and PALETTE[0] in svg


def test_line_chart_breaks_the_line_at_gaps_and_labels_points() -> None:
    root = parse(line_chart(SERIES, DAYS, title="t"))
    first = next(g for g in root.iter(f"{NS}g") if g.attrib.get("data-series") == "gpt-4o")
    path = first.find(f"{NS}path")
    assert path is not None
    # Two runs: points 0-1, then point 3 after the gap.
    assert path.attrib["d"].count("M") == 2 and path.attrib["d"].count("L") == 1
    points = first.findall(f"{NS}circle")
    assert [p.attrib["data-x"] for p in points] == ["11-01", "11-02", "11-04"]
    assert points[1].find(f"{NS}title").text == "gpt-4o, 11-02: 2.5"  # type: ignore[union-attr]


def test_stacked_bars_stack_and_axis_covers_the_tallest_total() -> None:
    series = [Series("a", [3.0, 1.0]), Series("b", [4.0, 1.0])]
    root = parse(stacked_bar_chart(series, ["x", "y"], title="t", y_format=lambda v: f"${v}"))
    rects = [r for r in root.iter(f"{NS}rect") if "data-value" in r.attrib]
    a_x, b_x = rects[0], rects[2]
    # b sits on top of a in the same column: b's bottom is a's top.
    assert a_x.attrib["x"] == b_x.attrib["x"]
    assert float(b_x.attrib["y"]) + float(b_x.attrib["height"]) == pytest.approx(
        float(a_x.attrib["y"]), abs=0.11
    )
    ticks = [t.text for t in root.iter(f"{NS}text") if t.text and t.text.startswith("$")]
    # Total 7 → ticks up to 8 with y_format applied (ints shown without ".0").
    assert ticks[0] == "$0" and ticks[-1] == "$8"


def test_bar_chart_rows_in_order_with_formatted_values() -> None:
    items = [("team-a", 1234.5), ("team-b", 99.0), ("team-c", 0.0)]
    svg = bar_chart(items, title="Spend by team", value_format=lambda v: f"${v:,.2f}")
    root = parse(svg)
    assert root.attrib["data-chart"] == "bar"
    bars = [r for r in root.iter(f"{NS}rect") if "data-value" in r.attrib]
    assert [b.attrib["data-label"] for b in bars] == ["team-a", "team-b", "team-c"]
    assert data_values(root) == [1234.5, 99.0, 0.0]
    widths = [float(b.attrib["width"]) for b in bars]
    assert widths[0] > widths[1] > widths[2] == 0
    assert "$1,234.50" in all_text(root)
    # Height grows with the rows when not given.
    many = parse(bar_chart([(str(i), float(i)) for i in range(20)], title="t"))
    assert float(many.attrib["height"]) > float(root.attrib["height"])
    assert_self_contained(svg)


def test_labels_are_escaped() -> None:
    nasty = '<script>alert("x")</script> & co'
    for svg in (
        line_chart([Series(nasty, [1.0])], [nasty], title=nasty),
        stacked_bar_chart([Series(nasty, [1.0])], [nasty], title=nasty, y_format=lambda v: nasty),
        bar_chart([(nasty, 1.0)], title=nasty, value_format=lambda v: nasty),
    ):
        root = parse(svg)  # well-formed XML despite the markup in every label
        assert "<script" not in svg
        assert root.find(f"{NS}title").text == nasty  # type: ignore[union-attr]
        assert nasty in all_text(root)


@pytest.mark.parametrize(
    ("svg", "kind"),
    [
        (line_chart([], [], title="Empty"), "line"),
        (line_chart([Series("a", [None, float("nan")])], ["x", "y"], title="Empty"), "line"),
        (stacked_bar_chart([Series("a", [])], [], title="Empty"), "stacked"),
        (stacked_bar_chart([], ["x"], title="Empty"), "stacked"),
        (bar_chart([], title="Empty"), "bar"),
        (bar_chart([("a", float("inf"))], title="Empty"), "bar"),
    ],
)
def test_empty_input_renders_no_data(svg: str, kind: str) -> None:
    root = parse(svg)
    assert root.attrib["data-chart"] == kind
    assert root.attrib["role"] == "img"
    assert data_values(root) == []
    assert "no data" in all_text(root)


def test_mismatched_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="3 values for 2 x labels"):
        line_chart([Series("a", [1.0, 2.0, 3.0])], ["x", "y"], title="t")


def test_negative_values() -> None:
    root = parse(stacked_bar_chart([Series("a", [-2.0, 3.0])], ["x", "y"], title="t"))
    assert data_values(root) == [-2.0, 3.0]
    bars = [r for r in root.iter(f"{NS}rect") if "data-value" in r.attrib]
    assert all(float(b.attrib["height"]) > 0 for b in bars)
    assert float(bars[0].attrib["y"]) >= float(bars[1].attrib["y"]) + float(bars[1].attrib["height"]) - 0.11


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 0.3, [0.0, 0.1, 0.2, 0.3]),
        (0, 97, [0.0, 25.0, 50.0, 75.0, 100.0]),
        (0, 7, [0.0, 2.0, 4.0, 6.0, 8.0]),
        (-3, 7, [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]),
        (0, 0, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (0, 1_234_567, [0.0, 500_000.0, 1_000_000.0, 1_500_000.0]),
    ],
)
def test_nice_ticks(lo: float, hi: float, expected: list[float]) -> None:
    ticks = nice_ticks(lo, hi)
    assert ticks == expected
    assert ticks[0] <= lo and ticks[-1] >= hi


def test_many_x_labels_are_thinned() -> None:
    labels = [f"2026-11-{d:02d}" for d in range(1, 31)]
    root = parse(line_chart([Series("a", [1.0] * 30)], labels, title="t", width=400))
    axis = next(g for g in root.iter(f"{NS}g") if g.attrib.get("class") == "x-axis")
    shown = [t.text for t in axis]
    assert 2 <= len(shown) < 30 and shown[0] == labels[0]
    assert len(data_values(root)) == 30  # every point is still plotted
