"""Inline SVG charts, drawn here so reports need no JavaScript library and no network.

One chart shape covers every use: horizontal bars in labelled groups, one bar per series
(a run and its baseline), each with its 95% confidence interval as an error bar and an
optional reference line (a metric's ideal value). Every piece of text is escaped, and the
full label is kept in a ``<title>`` tooltip when the visible one is shortened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

from markupsafe import Markup, escape

__all__ = ["Bar", "BarGroup", "SERIES_COLOURS", "bar_chart", "nice_ticks"]

SERIES_COLOURS = ("#3465a4", "#c17d11", "#4e9a06", "#75507b", "#cc0000", "#555753")

LABEL_WIDTH = 210
VALUE_WIDTH = 170
BAR_HEIGHT = 14
BAR_GAP = 4
GROUP_GAP = 10
AXIS_HEIGHT = 28
LEGEND_HEIGHT = 22
MAX_LABEL = 30


@dataclass(frozen=True)
class Bar:
    value: float | None
    low: float | None = None
    high: float | None = None
    series: int = 0


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: Sequence[Bar]


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10^k) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _domain(groups: Sequence[BarGroup], reference: float | None) -> tuple[float, float]:
    points = [0.0]
    for group in groups:
        for bar in group.bars:
            points += [v for v in (bar.value, bar.low, bar.high) if _finite(v)]
    if _finite(reference):
        points.append(float(reference))
    ticks = nice_ticks(min(points), max(points))
    low, high = ticks[0], ticks[-1]
    if high <= low:
        high = low + 1.0
    return low, high


def _format(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def bar_chart(
    groups: Sequence[BarGroup],
    *,
    series: Sequence[str] = ("",),
    reference: float | None = None,
    reference_label: str = "",
    title: str = "",
    width: int = 760,
) -> Markup:
    """A horizontal bar chart with CI error bars, as an ``<svg>`` element."""
    low, high = _domain(groups, reference)
    plot_left = LABEL_WIDTH
    plot_width = width - LABEL_WIDTH - VALUE_WIDTH
    legend = LEGEND_HEIGHT if len(series) > 1 else 0
    top = legend + 6

    def x(value: float) -> float:
        return round(plot_left + (value - low) / (high - low) * plot_width, 2)

    parts: list[str] = []
    y = top
    for group in groups:
        group_height = len(group.bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
        label = escape(group.label)
        parts.append(
            f'<text class="label" x="{plot_left - 8}" y="{y + group_height / 2 + 4}" text-anchor="end">'
            f"<title>{label}</title>{escape(_short(group.label))}</text>"
        )
        for bar in group.bars:
            colour = SERIES_COLOURS[bar.series % len(SERIES_COLOURS)]
            name = series[bar.series] if bar.series < len(series) else ""
            if _finite(bar.value):
                start, end = sorted((x(0.0 if low <= 0 <= high else low), x(float(bar.value))))
                tip = f"{group.label} {name}: {_format(float(bar.value))}".replace("  ", " ")
                interval = ""
                if _finite(bar.low) and _finite(bar.high):
                    tip += f" [{_format(float(bar.low))}, {_format(float(bar.high))}]"
                    x1, x2, mid = x(float(bar.low)), x(float(bar.high)), y + BAR_HEIGHT / 2
                    interval = (
                        f'<path class="ci" d="M{x1},{mid}H{x2}M{x1},{y + 2}V{y + BAR_HEIGHT - 2}'
                        f'M{x2},{y + 2}V{y + BAR_HEIGHT - 2}" stroke="#222" fill="none" stroke-width="1.2"/>'
                    )
                text = _format(float(bar.value))
                if _finite(bar.low) and _finite(bar.high):
                    text += f" [{_format(float(bar.low))}, {_format(float(bar.high))}]"
                parts.append(
                    f'<g class="bar"><title>{escape(tip)}</title>'
                    f'<rect x="{start}" y="{y}" width="{max(end - start, 0.5)}" height="{BAR_HEIGHT}" fill="{colour}"/>'
                    f'{interval}<text class="value" x="{plot_left + plot_width + 8}" y="{y + BAR_HEIGHT - 3}">{escape(text)}</text></g>'
                )
            else:
                parts.append(f'<text class="value" x="{plot_left + plot_width + 8}" y="{y + BAR_HEIGHT - 3}">n/a</text>')
            y += BAR_HEIGHT + BAR_GAP
        y += GROUP_GAP - BAR_GAP
    plot_bottom = y
    axis: list[str] = []
    for tick in nice_ticks(low, high):
        if low - 1e-9 <= tick <= high + 1e-9:
            tx = x(tick)
            axis.append(f'<path d="M{tx},{top - 2}V{plot_bottom}" stroke="#ddd"/>')
            axis.append(f'<text class="tick" x="{tx}" y="{plot_bottom + 16}" text-anchor="middle">{escape(f"{tick:g}")}</text>')
    if low < 0 < high:
        axis.append(f'<path d="M{x(0.0)},{top - 2}V{plot_bottom}" stroke="#888"/>')
    if _finite(reference):
        rx = x(float(reference))
        axis.append(
            f'<path class="reference" d="M{rx},{top - 4}V{plot_bottom}" stroke="#cc0000" stroke-dasharray="4 3"/>'
            f'<text class="tick" x="{rx + 3}" y="{top + 6}" fill="#cc0000">{escape(reference_label)}</text>'
        )
    legend_parts = []
    for index, name in enumerate(series if len(series) > 1 else []):
        lx = plot_left + index * 160
        legend_parts.append(
            f'<rect x="{lx}" y="4" width="12" height="12" fill="{SERIES_COLOURS[index % len(SERIES_COLOURS)]}"/>'
            f'<text class="legend" x="{lx + 16}" y="14">{escape(_short(name))}</text>'
        )
    height = plot_bottom + AXIS_HEIGHT
    heading = f"<title>{escape(title)}</title>" if title else ""
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{heading}'
        + "".join(legend_parts + axis + parts)
        + "</svg>"
    )
