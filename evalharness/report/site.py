"""The static leaderboard site: ``evalharness leaderboard RUN... --site DIR``.

    DIR/index.html              sortable, filterable leaderboard
    DIR/tasks/<slug>.html       one page per task: each metric's ranking, chart and provenance
    DIR/models/<slug>.html      one page per model: its row, per-column ranks, its runs
    DIR/reports/<slug>.html     the full report of every run on the board
    DIR/data/leaderboard.*      CSV, JSON, Markdown and Parquet downloads

Pages are self-contained (see ``render``): they work from any static host and from
``file://``, with data rendered into the markup, never fetched. File names are slugs of
``[a-z0-9-]`` plus a hash, so no model, run or task name can write outside ``DIR``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evalharness.errors import RecordError
from evalharness.leaderboard.aggregates import goodness
from evalharness.leaderboard.output import (
    OUTPUT_FILES,
    digits_for,
    format_cell,
    write_leaderboard,
    write_public_text,
)
from evalharness.leaderboard.ranking import format_rank, rank_with_ties
from evalharness.leaderboard.table import Leaderboard
from evalharness.report.charts import Bar, BarGroup, bar_chart
from evalharness.report.render import render_page, slugify

__all__ = ["write_site"]


def site_path(site_dir: Path, *parts: str) -> Path:
    """A path inside ``site_dir``; anything resolving outside it is refused."""
    path = site_dir.joinpath(*parts)
    if not path.resolve().is_relative_to(site_dir.resolve()):
        raise RecordError(f"refusing to write {path}: outside the site folder {site_dir}")
    return path


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _sort_key(value: Any, direction: str = "higher", ideal: float = math.nan) -> str:
    """A number where larger is better, as text for a ``data-sort`` attribute ('' if none)."""
    number = _number(value)
    if number is None:
        return ""
    return repr(float(goodness([number], direction, ideal)[0]))


class _Site:
    def __init__(self, board: Leaderboard, site_dir: Path):
        self.board = board
        self.dir = site_dir
        self.model_pages = {m: f"models/{slugify(m)}.html" for m in board.model_ids}
        self.task_pages = {c.task: f"tasks/{slugify(c.task)}.html" for c in board.columns}
        self.reports: dict[str, list[tuple[str, str]]] = {}
        self._rankings: dict[str, list[dict[str, Any]]] = {}

    def write(self, relative: str, html: str) -> None:
        write_public_text(site_path(self.dir, *relative.split("/")), html)

    # -- pieces ---------------------------------------------------------------------------
    def headers(self) -> list[dict[str, Any]]:
        board = self.board
        headers = [
            {"key": a.key, "label": a.label, "task": "", "title": a.description, "marked": False, "better": "higher is better"}
            for a in board.aggregates
        ]
        for c in board.columns:
            title = f"{c.direction_label}; n={c.n}; data {c.data_fingerprint}; {c.signature}"
            headers.append({"key": c.key, "label": f"{c.label} {c.arrow}", "task": c.task, "title": title, "marked": c.incomparable, "better": c.direction_label})
        return headers

    def cell(self, model: str, key: str) -> dict[str, Any]:
        board = self.board
        value = board.values.at[model, key]
        direction, ideal = "higher", math.nan
        if key not in {a.key for a in board.aggregates}:
            column = board.column(key)
            direction, ideal = column.direction, column.ideal
        text = format_cell(value, digits=digits_for(key))
        low, high = _number(board.ci_low.at[model, key]), _number(board.ci_high.at[model, key])
        interval = "" if low is None or high is None or text == "–" else f"[{low:.{digits_for(key)}f}, {high:.{digits_for(key)}f}]"
        return {"text": text, "ci": interval, "sort": _sort_key(value, direction, ideal)}

    def rows(self) -> list[dict[str, Any]]:
        board = self.board
        keys = [h["key"] for h in self.headers()]
        rows = []
        for position, model in enumerate(board.model_ids):
            rows.append(
                {
                    "model": model,
                    "href": self.model_pages[model],
                    "rank": board.rank_label(model),
                    "rank_sort": repr(-float(position)),
                    "source": board.models.at[model, "source"],
                    "cells": [self.cell(model, key) | {"task": h["task"], "marked": h["marked"]} for key, h in zip(keys, self.headers())],
                }
            )
        return rows

    def column_ranking(self, key: str) -> list[dict[str, Any]]:
        """Models with a value in one column, ranked on that column alone (cached)."""
        if key not in self._rankings:
            self._rankings[key] = self._rank_column(key)
        return self._rankings[key]

    def _rank_column(self, key: str) -> list[dict[str, Any]]:
        board = self.board
        column = board.column(key)
        ranked = rank_with_ties(board.values[key], board.ci_low[key], board.ci_high[key], direction=column.direction, ideal=column.ideal)
        rows = []
        for model in ranked.sort_values("order").index:
            if _number(board.values.at[model, key]) is None:
                continue
            rows.append({"model": model, "href": "../" + self.model_pages[model], "rank": format_rank(ranked.at[model, "rank"], bool(ranked.at[model, "tied"])), **self.cell(model, key)})
        return rows

    # -- pages ----------------------------------------------------------------------------
    def index(self) -> None:
        board = self.board
        tasks = list(dict.fromkeys(c.task for c in board.columns))
        html = render_page(
            "site_index.html.j2",
            title=board.title,
            scripts=["site.js"],
            board_title=board.title,
            description=board.description,
            rank_by=board.label_of(board.rank_by),
            headers=self.headers(),
            rows=self.rows(),
            tasks=[(task, self.task_pages[task]) for task in tasks],
            columns=board.columns,
            aggregates=board.aggregates,
            notes=board.notes,
            downloads=[(kind, f"data/{name}") for kind, name in OUTPUT_FILES.items()],
        )
        self.write("index.html", html)

    def task_page(self, task: str) -> None:
        board = self.board
        sections = []
        for column in [c for c in board.columns if c.task == task]:
            ranking = self.column_ranking(column.key)
            chart = bar_chart(
                [BarGroup(row["model"], [Bar(_number(board.values.at[row["model"], column.key]), _number(board.ci_low.at[row["model"], column.key]), _number(board.ci_high.at[row["model"], column.key]))]) for row in ranking],
                reference=None if column.direction != "ideal" else column.ideal,
                reference_label=f"ideal {column.ideal:g}" if column.direction == "ideal" else "",
            )
            sections.append({"column": column, "ranking": ranking, "chart": chart})
        html = render_page("site_task.html.j2", title=f"{task} — {board.title}", board_title=board.title, task=task, sections=sections)
        self.write(self.task_pages[task], html)

    def model_page(self, model: str) -> None:
        board = self.board
        info = board.models.loc[model]
        cells = []
        for column in board.columns:
            ranking = {row["model"]: row["rank"] for row in self.column_ranking(column.key)}
            cells.append({"column": column, "href": "../" + self.task_pages[column.task], "rank": ranking.get(model, "–"), **self.cell(model, column.key)})
        aggregates = [{"aggregate": a, **self.cell(model, a.key)} for a in board.aggregates]
        facts = [
            ("model", str(info["model"])),
            ("fingerprint", str(info["model_fingerprint"])),
            ("kind", str(info["model_kind"])),
            ("source", str(info["source"])),
            ("overall rank", f"{board.rank_label(model)} (by {board.label_of(board.rank_by)})"),
        ]
        html = render_page(
            "site_model.html.j2",
            title=f"{model} — {board.title}",
            board_title=board.title,
            model=model,
            facts=facts,
            aggregates=aggregates,
            cells=cells,
            reports=[("../" + href, label) for href, label in self.reports.get(model, [])],
        )
        self.write(self.model_pages[model], html)

    def report_pages(self, with_reports: bool) -> None:
        from evalharness.report import render_report

        data = self.board.data
        for model in self.board.model_ids:
            runs = data[data["model_id"] == model].drop_duplicates(["run_id", "run_dir"])
            for row in runs.itertuples(index=False):
                label = f"run {row.run_id} ({row.created:%Y-%m-%d %H:%M})"
                if not with_reports:
                    continue
                relative = f"reports/{slugify(f'{model} {row.run_id}')}.html"
                html = render_report(row.run_dir, back_href="../" + self.model_pages[model], back_label=f"back to {model}")
                self.write(relative, html)
                self.reports.setdefault(model, []).append((relative, label))


def write_site(board: Leaderboard, site_dir: str | Path, *, reports: bool = True) -> Path:
    """Write the site for ``board`` into ``site_dir``; returns the index page's path."""
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    site = _Site(board, site_dir)
    write_leaderboard(board, site_path(site_dir, "data"))
    site.report_pages(reports)
    site.index()
    for task in dict.fromkeys(c.task for c in board.columns):
        site.task_page(task)
    for model in board.model_ids:
        site.model_page(model)
    return site_dir / "index.html"
