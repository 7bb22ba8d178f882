"""The leaderboard site's charts, as inline SVG (no script, no network, every text escaped).

- :func:`whisker_chart`: one row per model, a dot at its value and a whisker over its 95%
  confidence interval, rows in rank order with alternate rank clusters shaded, so ties are
  visible at a glance;
- :func:`heat_map`: models × tasks, each cell coloured by where the value lies between the
  worst and the best value of its column (direction respected), with the value written in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

from markupsafe import Markup, escape

from evalharness.report.charts import nice_ticks

__all__ = ["HeatCell", "WhiskerRow", "heat_map", "whisker_chart"]

ROW = 18
LABEL = 190
VALUE = 120
MAX_LABEL = 28
# A sequential, colour-blind-safe ramp (light to dark blue) for "worse" to "better".
RAMP = ((0.969, 0.984, 1.0), (0.776, 0.859, 0.937), (0.420, 0.682, 0.839), (0.129, 0.443, 0.710), (0.031, 0.188, 0.420))


@dataclass(frozen=True)
class WhiskerRow:
    label: str
    value: float | None
    low: float | None
    high: float | None
    cluster: int = 0
    rank: str = ""


@dataclass(frozen=True)
class HeatCell:
    value: float | None
    text: str
    share: float | None  # 0 = worst of the column, 1 = best; None: no value


def _short(label: str, most: int = MAX_LABEL) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _fmt(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.3g}"


def whisker_chart(rows: Sequence[WhiskerRow], *, title: str, reference: float | None = None, width: int = 560) -> Markup:
    """Dots with CI whiskers, one row per model (``rows`` in rank order)."""
    points = [v for r in rows for v in (r.value, r.low, r.high) if _finite(v)] + ([reference] if _finite(reference) else [])
    ticks = nice_ticks(min(points), max(points)) if points else [0.0, 1.0]
    low, high = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1.0
    plot = width - LABEL - VALUE
    top = 6

    def x(value: float) -> float:
        return round(LABEL + (value - low) / (high - low) * plot, 2)

    parts: list[str] = []
    for index, row in enumerate(rows):
        y = top + index * ROW
        if row.cluster % 2 == 0 and row.cluster:
            parts.append(f'<rect class="band" x="0" y="{y}" width="{width}" height="{ROW}" fill="#eef2f7"/>')
        label = escape(row.label)
        parts.append(f'<text class="label" x="{LABEL - 8}" y="{y + 13}" text-anchor="end"><title>{label}</title>{escape(_short(row.label))}</text>')
        if not _finite(row.value):
            parts.append(f'<text class="value" x="{LABEL + plot + 8}" y="{y + 13}">no value</text>')
            continue
        cy = y + ROW / 2
        tip = f"{row.label}: {_fmt(float(row.value))}"
        whisker = ""
        if _finite(row.low) and _finite(row.high):
            tip += f" [{_fmt(float(row.low))}, {_fmt(float(row.high))}]"
            x1, x2 = x(float(row.low)), x(float(row.high))
            whisker = f'<path class="ci" d="M{x1},{cy}H{x2}M{x1},{cy - 4}V{cy + 4}M{x2},{cy - 4}V{cy + 4}" stroke="#333" fill="none"/>'
        rank = f"{row.rank}  " if row.rank else ""
        parts.append(
            f'<g class="point"><title>{escape(tip)}</title>{whisker}<circle cx="{x(float(row.value))}" cy="{cy}" r="4" fill="#3465a4"/>'
            f'<text class="value" x="{LABEL + plot + 8}" y="{y + 13}">{escape(rank + _fmt(float(row.value)))}</text></g>'
        )
    bottom = top + len(rows) * ROW
    axis = []
    for tick in ticks:
        tx = x(tick)
        axis.append(f'<path d="M{tx},{top}V{bottom}" stroke="#ddd"/><text class="tick" x="{tx}" y="{bottom + 14}" text-anchor="middle">{escape(f"{tick:g}")}</text>')
    if _finite(reference):
        rx = x(float(reference))
        axis.append(f'<path class="reference" d="M{rx},{top}V{bottom}" stroke="#cc0000" stroke-dasharray="4 3"/>')
    height = bottom + 24
    bands = [part for part in parts if part.startswith('<rect class="band"')]
    rest = [part for part in parts if not part.startswith('<rect class="band"')]
    return Markup(
        f'<svg class="chart whiskers" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>' + "".join(bands + axis + rest) + "</svg>"
    )


def _colour(share: float) -> tuple[str, str]:
    """Fill and text colour for a share in [0, 1] (dark text on light cells and vice versa)."""
    position = min(max(share, 0.0), 1.0) * (len(RAMP) - 1)
    i = min(int(position), len(RAMP) - 2)
    t = position - i
    rgb = [RAMP[i][c] + (RAMP[i + 1][c] - RAMP[i][c]) * t for c in range(3)]
    fill = "#" + "".join(f"{round(255 * c):02x}" for c in rgb)
    return fill, ("#ffffff" if share > 0.55 else "#1d1f21")


def heat_map(models: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[HeatCell]], *, title: str) -> Markup:
    """Models (rows) × columns; ``cells[i][j]`` is model i in column j."""
    cell_w, cell_h, head = 120, 20, 34
    width = LABEL + cell_w * len(columns) + 8
    parts = []
    for j, column in enumerate(columns):
        cx = LABEL + j * cell_w + cell_w / 2
        parts.append(f'<text class="column" x="{cx}" y="{head - 10}" text-anchor="middle"><title>{escape(column)}</title>{escape(_short(column, 18))}</text>')
    for i, model in enumerate(models):
        y = head + i * cell_h
        parts.append(f'<text class="label" x="{LABEL - 8}" y="{y + 14}" text-anchor="end"><title>{escape(model)}</title>{escape(_short(model))}</text>')
        for j, cell in enumerate(cells[i]):
            x = LABEL + j * cell_w
            if cell.share is None:
                fill, ink = "#ffffff", "#5f6368"
            else:
                fill, ink = _colour(cell.share)
            parts.append(
                f'<g class="cell"><title>{escape(f"{model} · {columns[j]}: {cell.text}")}</title>'
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}" stroke="#d8dadd"/>'
                f'<text x="{x + cell_w / 2}" y="{y + 14}" text-anchor="middle" fill="{ink}">{escape(cell.text)}</text></g>'
            )
    height = head + len(models) * cell_h + 6
    return Markup(
        f'<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>' + "".join(parts) + "</svg>"
    )
