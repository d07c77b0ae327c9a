"""The coordination charts, drawn on the server as SVG by pygal.

A chart is an image (`<img>`) served from its own route, so the portal's pages keep their
CSP: no script and no inline style on a page. pygal writes its look as a `<style>` inside
the SVG (the chart's route allows exactly that) and a configuration `<script>` that only
its interactive tooltips read: the script is removed here, and nothing in the SVG loads
anything. Texts come in already translated; numbers and dates are formatted by the caller
(Babel, the reader's locale), so a chart reads like the page around it.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]

# The portal's palette (ctcp.css): dark enough on white for text and thin marks.
INK, MUTED, ACCENT, OK, DANGER, AMBER = (
    "#1b1f24",
    "#4a5260",
    "#0a4f8a",
    "#1d5e2f",
    "#a4161a",
    "#8a5a00",
)
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif'
# Colours of the activity statuses, in the order of ActivityStatus.
STATUS_COLOURS = {
    "planned": ACCENT,
    "ongoing": OK,
    "completed": MUTED,
    "cancelled": DANGER,
}
# Beyond these, a chart stops being readable: the table beside it has every row.
MOST_BARS = 25
MOST_ACTIVITIES = 40
SHORTEST = timedelta(days=7)
WIDTH = 900


def _style(colours: Sequence[str], *, stroke_width: float = 1) -> Any:
    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground=INK,
        foreground_strong=INK,
        foreground_subtle=MUTED,
        colors=tuple(colours),
        font_family=FONT,
        label_font_family=FONT,
        major_label_font_family=FONT,
        title_font_family=FONT,
        legend_font_family=FONT,
        value_font_family=FONT,
        no_data_font_family=FONT,
        label_font_size=14,
        major_label_font_size=14,
        legend_font_size=14,
        title_font_size=18,
        value_font_size=13,
        no_data_font_size=18,
        opacity=1,
        opacity_hover=1,
        stroke_opacity=1,
        stroke_opacity_hover=1,
        stroke_width=stroke_width,
        stroke_width_hover=stroke_width,
        transition="none",
    )


def _without_scripts(root: Any) -> Any:
    """pygal's tree without its `<script>` elements (the configuration of its tooltips)
    and its comments (links to pygal's site, the date drawn)."""
    for parent in root.iter():
        for child in list(parent):
            if not isinstance(child.tag, str) or child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)  # a script, or a comment (pygal's links and date)
    return root


def _ticks(most: int, *, at_most: int = 8) -> list[int]:
    """Whole numbers for a count axis, 0 to past the largest value in a round step (1, 2,
    5, 10, 20...): a count has no fractions to label."""
    step = next(size for size in _steps() if most / size <= at_most)
    top = max(step, -(-most // step) * step)
    return list(range(0, top + 1, step))


def _steps() -> Iterator[int]:
    """1, 2, 5, 10, 20, 50, 100..."""
    scale = 1
    while True:
        for base in (1, 2, 5):
            yield base * scale
        scale *= 10


def _months(first: date, last: date, *, at_most: int = 8) -> list[date]:
    """The first days of months from `first` to `last`, every 1, 2, 3, 6 or 12 months so
    that at most `at_most` are labelled."""
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    every = next((n for n in (1, 2, 3, 6, 12) if months / n <= at_most), 12 * (months // 96 + 1))
    ticks = []
    year, month = first.year, first.month
    while date(year, month, 1) <= last:
        ticks.append(date(year, month, 1))
        month += every
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return ticks


def _render(chart: Any) -> str:
    chart.add_xml_filter(_without_scripts)
    svg: str = chart.render(is_unicode=True)
    return svg


def _common(title: str, no_data: str) -> dict[str, Any]:
    return {
        "title": title,
        "no_data_text": no_data,
        "js": [],
        "disable_xml_declaration": True,
        "width": WIDTH,
        "truncate_label": -1,
        "truncate_legend": -1,
        "legend_at_bottom": True,
        "tooltip_border_radius": 0,
    }


def needs_and_work(
    rows: Sequence[tuple[str, int, int]],
    *,
    title: str,
    needs_label: str,
    work_label: str,
    no_data: str,
    number: Callable[[int], str],
) -> str:
    """Per column of the matrix (an area, a programme): open needs beside the activities
    at work (planned or ongoing), as pairs of horizontal bars with their numbers."""
    shown = list(rows)[:MOST_BARS]
    chart = pygal.HorizontalBar(
        style=_style((DANGER, ACCENT)),
        height=140 + 46 * max(len(shown), 1),
        print_values=True,
        print_zeroes=False,
        value_formatter=lambda value: number(int(value or 0)),
        **_common(title, no_data),
    )
    if shown:
        chart.y_labels = _ticks(max(max(needs, work) for _, needs, work in shown))
        # A horizontal bar chart lists its first label at the bottom: reversed, the chart
        # reads top-down in the table's order.
        ordered = list(reversed(shown))
        chart.x_labels = [name for name, _, _ in ordered]
        chart.add(needs_label, [needs for _, needs, _ in ordered])
        chart.add(work_label, [work for _, _, work in ordered])
    return _render(chart)


def activities_by_status(
    rows: Sequence[tuple[str, dict[str, int]]],
    *,
    title: str,
    status_labels: dict[str, str],
    no_data: str,
    number: Callable[[int], str],
) -> str:
    """Per entity, its activities stacked by status (one colour and legend per status)."""
    shown = list(rows)[:MOST_BARS]
    chart = pygal.HorizontalStackedBar(
        style=_style([STATUS_COLOURS[status] for status in status_labels]),
        height=140 + 40 * max(len(shown), 1),
        value_formatter=lambda value: number(int(value or 0)),
        **_common(title, no_data),
    )
    if shown:
        chart.y_labels = _ticks(max(sum(counts.values()) for _, counts in shown))
        ordered = list(reversed(shown))
        chart.x_labels = [name for name, _ in ordered]
        for status, text in status_labels.items():
            chart.add(text, [counts.get(status, 0) for _, counts in ordered])
    return _render(chart)


@dataclass(frozen=True)
class Bar:
    """One activity on a timeline: its label (title and status, in words) and period."""

    label: str
    status: str
    starts_on: date
    ends_on: date | None


def timeline(
    bars: Sequence[Bar],
    *,
    title: str,
    no_data: str,
    when: Callable[[date], str],
) -> str:
    """A State's activities as bars over time, one row each, coloured by status (the
    status is also written in each row's label). An activity with no end date runs to
    the chart's right edge."""
    shown = list(bars)[:MOST_ACTIVITIES]
    count = len(shown)
    chart = pygal.DateLine(
        style=_style(
            [STATUS_COLOURS.get(bar.status, INK) for bar in shown] or [INK], stroke_width=18
        ),
        height=140 + 44 * max(count, 1),
        show_dots=False,
        show_legend=False,
        show_y_guides=False,
        stroke_style={"linecap": "butt"},
        x_value_formatter=when,
        range=(0.5, count + 0.5),
        **_common(title, no_data),
    )
    if shown:
        latest = max(max(bar.starts_on, bar.ends_on or bar.starts_on) for bar in shown)
        edge = latest + timedelta(days=30)
        chart.x_labels = _months(min(bar.starts_on for bar in shown), edge)
        chart.y_labels = [
            {"label": bar.label, "value": count - index} for index, bar in enumerate(shown)
        ]
        for index, bar in enumerate(shown):
            row = count - index
            # A bar of one day would be a dot too small to see: a week at least.
            ends = max(bar.ends_on or edge, bar.starts_on + SHORTEST)
            chart.add(bar.label, [(bar.starts_on, row), (ends, row)])
    return _render(chart)
