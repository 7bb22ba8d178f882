"""The site's index page: charts first, then the table (see ``site``)."""

from __future__ import annotations

from typing import TypedDict

from markupsafe import Markup

from evalharness.jsonvalues import finite_float_of
from evalharness.leaderboard.aggregates import goodness
from evalharness.leaderboard.output import OUTPUT_FILES, whole_number
from evalharness.report.board_charts import (
    HeatCell,
    WhiskerRow,
    heat_map,
    whisker_chart,
)
from evalharness.report.render import render_page
from evalharness.report.site_history import History
from evalharness.report.site_model import Site

__all__ = ["index_page"]

# Metadata columns of the table, in order: (header, ModelInfo fact).
META = (
    ("kind", "kind"),
    ("parameters", "parameters"),
    ("dtype", "dtype"),
    ("backend", "backend"),
    ("prompt format", "prompt format"),
    ("adapter / base", "adapter / base model"),
    ("source", "source"),
    ("date", "date"),
    ("evalharness", "evalharness"),
)

RULES = {
    "paired": (
        "<code>=N</code> marks a shared rank: models tied with the next one because a paired test on the same examples, "
        "corrected across every pair, cannot separate them (WMT's clusters)."
    ),
    "marginal": "<code>=N</code> marks a shared rank: models whose 95% confidence intervals overlap (marginal rule).",
}


class _Header(TypedDict):
    key: str
    short: str
    task: str
    title: str
    marked: bool
    col: int  # the table column it heads


class _Group(TypedDict):
    task: str
    label: str
    span: int


def _headers(site: Site) -> list[_Header]:
    board = site.board
    # (key, short, task, title, marked)
    heads = [(a.key, a.label, "", a.description, False) for a in board.aggregates]
    for c in board.columns:
        title = f"{c.task} {c.metric}: {c.direction_label}; n={c.n}; data {c.data_fingerprint}; {c.signature}"
        heads.append((c.key, f"{c.metric} {c.arrow}", c.task, title, c.incomparable))
    return [{"key": key, "short": short, "task": task, "title": title, "marked": marked, "col": 3 + index}
            for index, (key, short, task, title, marked) in enumerate(heads)]


def _groups(site: Site, headers: list[_Header]) -> list[_Group]:
    """Header groups: the aggregates, then one per task, spanning their columns."""
    groups: list[_Group] = []
    for header in headers:
        task = header["task"]
        if groups and groups[-1]["task"] == task:
            groups[-1]["span"] += 1
        else:
            groups.append({"task": task, "label": task or "aggregates", "span": 1})
    return groups


def _rows(site: Site, headers: list[_Header]) -> list[dict[str, object]]:
    """The table's rows (a template context: values are read by Jinja)."""
    board = site.board
    rows: list[dict[str, object]] = []
    for position, model in enumerate(board.model_ids):
        info = site.metadata[model]
        rows.append(
            {
                "model": model,
                "display": board.display(model),
                "href": site.model_pages[model],
                "rank": board.rank_label(model),
                "rank_sort": repr(-float(position)),
                "cluster": whole_number(board.ranking.at[model, "cluster"]),
                "source": board.models.at[model, "source"],
                "badges": info.badges,
                "flags": " ".join(badge.kind for badge in info.badges),
                "cells": [site.cell(model, h["key"]) | {"task": h["task"], "marked": h["marked"]} for h in headers],
                "meta": [info.fact(fact) for _, fact in META],
            }
        )
    return rows


def _charts(site: Site) -> list[dict[str, object]]:
    charts: list[dict[str, object]] = []
    for task, column in site.primary_columns().items():
        ranking = site.column_ranking(column.key, prefix="")
        rows = [WhiskerRow(r["display"], r["value"], r["low"], r["high"], r["cluster"], r["rank"]) for r in ranking]
        reference = column.ideal if column.direction == "ideal" else None
        title = f"{task}: {column.metric} ({column.direction_label})"
        charts.append({"title": title, "href": site.task_pages[task], "svg": whisker_chart(rows, title=title, reference=reference)})
    return charts


def _share(values: dict[str, float | None], direction: str, ideal: float) -> dict[str, float | None]:
    finite = {m: v for m, v in values.items() if v is not None}
    if not finite:
        return {m: None for m in values}
    scores = dict(zip(finite, goodness(list(finite.values()), direction, ideal), strict=True))
    low, high = min(scores.values()), max(scores.values())
    return {m: (None if m not in scores else (1.0 if high == low else (scores[m] - low) / (high - low))) for m in values}


def _heat_map(site: Site) -> Markup | None:
    board = site.board
    columns = list(site.primary_columns().values())
    if not columns:
        return None
    models = board.model_ids
    shares = {}
    for column in columns:
        values = {m: finite_float_of(board.values.at[m, column.key]) for m in models}
        shares[column.key] = _share(values, column.direction, column.ideal)
    cells = [
        [HeatCell(finite_float_of(board.values.at[m, c.key]), site.cell(m, c.key)["text"], shares[c.key][m]) for c in columns]
        for m in models
    ]
    labels = [f"{c.task.rsplit('/', 1)[-1]} {c.metric}" for c in columns]
    return heat_map([board.display(m) for m in models], labels, cells, title=f"{board.title}: models × tasks")


def _removed(history: History) -> dict[str, str] | None:
    if not history.removed:
        return None
    return {"when": history.previous_when, "text": "no longer on the board: " + ", ".join(history.removed)}


def index_page(site: Site, history: History) -> None:
    board = site.board
    headers = _headers(site)
    html = render_page(
        "site_index.html.j2",
        title=board.title,
        scripts=["site.js"],
        board_title=board.title,
        description=board.description,
        rank_by=board.label_of(board.rank_by),
        rank_rule=Markup(RULES[board.ranks]),
        charts=_charts(site),
        heat_map=_heat_map(site),
        groups=_groups(site, headers),
        headers=headers,
        meta_headers=[header for header, _ in META],
        rows=_rows(site, headers),
        tasks=[(task, site.task_pages[task]) for task in site.tasks],
        sources=sorted(set(board.models["source"])),
        columns=board.columns,
        aggregates=board.aggregates,
        notes=board.notes + site.metadata_notes,
        downloads=[(kind, f"data/{name}") for kind, name in OUTPUT_FILES.items()],
        history_count=len(history.entries),
        removed=_removed(history),
    )
    site.write("index.html", html)
