"""Server-rendered SVG charts: bars over time, horizontal bars, a heat map.

Why SVG from the server rather than a JavaScript chart library: the pages' CSP allows
no external scripts and only nonce'd inline ones, a chart must be readable without
JavaScript (and in the headless tests' DOM), and there is nothing to vendor or update.
Each chart is ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states the
figures in words, a ``<title>`` tooltip on every mark, and a data table beside it
(:func:`data_table`), so a screen reader gets the numbers, not "image".

Pure functions from numbers to text: every label goes through :func:`html.escape`.
Sizes are in the ``viewBox``; the page's CSS scales the chart to its column. The same
code draws 1 bar and 500 (bars get thinner, axis labels are thinned to fit).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 34
BAR = "#2563eb"
MUTED = "#64748b"
GRID = "#e5e7eb"
_ids = itertools.count(1)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True)
class Bar:
    """One mark: its axis label, value, the tooltip, and an optional colour/flag."""

    label: str
    value: float
    tip: str
    flagged: bool = False


def nice_max(value: float) -> tuple[float, float]:
    """An axis top at or above ``value`` and a tick step (1, 2 or 5 x 10^k, at most 5 ticks)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if value <= 5 and float(value).is_integer():
        step = 1.0
    top = math.ceil(value / step) * step
    return float(top), float(step)


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"


def _frame(chart_id: str, title: str, desc: str, body: str, *, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{chart_id}-t">{_e(title)}</title><desc id="{chart_id}-d">{_e(desc)}</desc>{body}</svg>'
    )


def bar_chart(bars: Sequence[Bar], *, title: str, desc: str, unit: str, chart_id: str | None = None) -> str:
    """Vertical bars in order (time runs left to right), y axis from 0 with gridlines."""
    chart_id = chart_id or f"chart{next(_ids)}"
    if not bars:
        return _frame(chart_id, title, desc, _empty(HEIGHT))
    top, step = nice_max(max(b.value for b in bars))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(bars)
    gap = min(slot * 0.2, 6) if slot > 2 else 0
    width = max(slot - gap, 0.6)
    parts = [_y_axis(top, step, plot_h, unit)]
    for i, bar in enumerate(bars):
        h = bar.value / top * plot_h if top else 0
        x = LEFT + i * slot + gap / 2
        y = TOP + plot_h - h
        cls = "bar flag" if bar.flagged else "bar"
        parts.append(
            f'<rect class="{cls}" x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" height="{max(h, 0):.2f}" '
            f'fill="{"#d97706" if bar.flagged else BAR}"><title>{_e(bar.tip)}</title></rect>'
        )
    parts.append(_x_labels([b.label for b in bars], slot))
    return _frame(chart_id, title, desc, "".join(parts))


def _y_axis(top: float, step: float, plot_h: float, unit: str) -> str:
    lines = []
    ticks = round(top / step)
    for n in range(ticks + 1):
        value = n * step
        y = TOP + plot_h - value / top * plot_h
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.2f}" y2="{y:.2f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end" font-size="11" fill="{MUTED}">{_fmt(value)}</text>'
        )
    lines.append(
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" font-size="11" fill="{MUTED}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{_e(unit)}</text>'
    )
    return "".join(lines)


def _x_labels(labels: Sequence[str], slot: float) -> str:
    """At most one label per ~70 units, always the first and the last."""
    every = max(1, math.ceil(70 / slot)) if slot else 1
    shown = set(range(0, len(labels), every)) | {len(labels) - 1}
    y = HEIGHT - BOTTOM + 16
    out = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" stroke="#94a3b8"/>']
    for i in sorted(shown):
        if i != len(labels) - 1 and len(labels) - 1 in shown and (len(labels) - 1 - i) * slot < 60 and i:
            continue  # keep the last label clear of its neighbour
        x = LEFT + (i + 0.5) * slot
        anchor = "start" if i == 0 and len(labels) > 1 else ("end" if i == len(labels) - 1 and i else "middle")
        if len(labels) == 1:
            anchor = "middle"
        out.append(
            f'<text x="{x:.2f}" y="{y}" text-anchor="{anchor}" font-size="11" fill="{MUTED}">{_e(labels[i])}</text>'
        )
    return "".join(out)


def _empty(height: int) -> str:
    return (
        f'<text x="{WIDTH / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" font-size="13" '
        f'fill="{MUTED}">No data in this range</text>'
    )


def hbar_chart(
    items: Sequence[tuple[str, float]], *, title: str, desc: str, unit: str, chart_id: str | None = None
) -> str:
    """Horizontal bars, one row per label (largest first as given), value at the end of each bar."""
    chart_id = chart_id or f"chart{next(_ids)}"
    row = 24
    height = max(len(items), 1) * row + 24
    if not items:
        return _frame(chart_id, title, desc, _empty(60), height=60)
    label_w = min(200, max(60, max(len(label) for label, _ in items) * 7 + 12))
    plot_w = WIDTH - label_w - 60
    top = max(v for _, v in items) or 1
    parts = []
    for i, (label, value) in enumerate(items):
        y = 8 + i * row
        w = value / top * plot_w
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12" fill="#1f2933">{_e(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.2f}" height="{row - 8}" fill="{BAR}">'
            f"<title>{_e(label)}: {_fmt(value)} {_e(unit)}</title></rect>"
            f'<text x="{label_w + w + 6:.2f}" y="{y + 15}" font-size="12" fill="{MUTED}">{_fmt(value)}</text>'
        )
    return _frame(chart_id, title, desc, "".join(parts), height=height)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: dict[tuple[str, str], int],
    *,
    title: str,
    desc: str,
    unit: str,
    chart_id: str | None = None,
    labels: Sequence[str] | None = None,
) -> str:
    """Rows x columns of cells shaded by value (0 is empty); columns are time, left to right."""
    chart_id = chart_id or f"chart{next(_ids)}"
    if not rows or not columns:
        return _frame(chart_id, title, desc, _empty(60), height=60)
    row_h = 22
    label_w = min(200, max(60, max(len(r) for r in rows) * 7 + 12))
    plot_w = WIDTH - label_w - RIGHT
    cell = plot_w / len(columns)
    height = len(rows) * row_h + 30
    top = max(values.values(), default=0) or 1
    parts = []
    for r, name in enumerate(rows):
        y = 4 + r * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12" fill="#1f2933">{_e(name)}</text>'
        )
        for c, column in enumerate(columns):
            value = values.get((name, column), 0)
            if not value:
                continue
            shade = 0.25 + 0.75 * value / top
            parts.append(
                f'<rect class="cell" x="{label_w + c * cell:.2f}" y="{y + 2}" width="{max(cell - 1, 0.8):.2f}" '
                f'height="{row_h - 4}" fill="#059669" fill-opacity="{shade:.2f}">'
                f"<title>{_e(name)}, {_e(column)}: {value} {_e(unit)}</title></rect>"
            )
    every = max(1, math.ceil(70 / cell))
    y = height - 8
    for c in sorted(set(range(0, len(columns), every)) | {len(columns) - 1}):
        if c and c != len(columns) - 1 and (len(columns) - 1 - c) * cell < 60:
            continue
        x = label_w + (c + 0.5) * cell
        anchor = (
            "middle" if len(columns) == 1 else ("start" if c == 0 else ("end" if c == len(columns) - 1 else "middle"))
        )
        shown = labels[c] if labels else columns[c]
        parts.append(
            f'<text x="{x:.2f}" y="{y}" text-anchor="{anchor}" font-size="11" fill="{MUTED}">{_e(shown)}</text>'
        )
    return _frame(chart_id, title, desc, "".join(parts), height=height)


def data_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str) -> str:
    """The chart's numbers as a table (in a ``<details>``: one click for sighted readers)."""
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<details class="chart-data"><summary>{_e(caption)} as a table</summary>'
        f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>'
    )
