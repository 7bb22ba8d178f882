"""What every page of the static site shares: the :class:`Site` (the board, its pages' paths,
the columns shown per task) and number helpers. The pages import it; ``site.write_site``
writes them all."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from evalharness.errors import RecordError
from evalharness.jsonvalues import finite_float_of
from evalharness.leaderboard.aggregates import goodness
from evalharness.leaderboard.metadata import ModelInfo, model_metadata
from evalharness.leaderboard.output import (
    digits_for,
    format_cell,
    whole_number,
    write_public_text,
)
from evalharness.leaderboard.ranking import format_rank
from evalharness.leaderboard.table import Leaderboard
from evalharness.report.render import slugify

if TYPE_CHECKING:
    import pandas as pd

    from evalharness.leaderboard.table import Column

__all__ = ["CellText", "RankedCell", "Site", "site_path"]


class CellText(TypedDict):
    """A board cell as the pages show it: its text, interval text, sort key and numbers."""

    text: str
    ci: str
    sort: str
    value: float | None
    low: float | None
    high: float | None


class RankedCell(CellText):
    """A cell of a column ranked on its own, with its row."""

    model: str
    display: str
    href: str
    rank: str
    cluster: int


def site_path(site_dir: Path, *parts: str) -> Path:
    """A path inside ``site_dir``; anything resolving outside it is refused."""
    path = site_dir.joinpath(*parts)
    if not path.resolve().is_relative_to(site_dir.resolve()):
        raise RecordError(f"refusing to write {path}: outside the site folder {site_dir}")
    return path


def _sort_key(value: object, direction: str = "higher", ideal: float = math.nan) -> str:
    """A number where larger is better, as text for a ``data-sort-value`` ('' if none)."""
    result = finite_float_of(value)
    if result is None:
        return ""
    return repr(float(goodness([result], direction, ideal)[0]))


class Site:
    """One site being written: the board, where its pages go, and what pages share."""

    def __init__(self, board: Leaderboard, site_dir: Path):
        self.board = board
        self.dir = site_dir
        self.model_pages = {m: f"models/{slugify(m)}.html" for m in board.model_ids}
        self.task_pages = {c.task: f"tasks/{slugify(c.task)}.html" for c in board.columns}
        self.reports: dict[str, list[tuple[str, str]]] = {}
        self.metadata: dict[str, ModelInfo]
        self.metadata, self.metadata_notes = model_metadata(board)
        self._rankings: dict[str, tuple[pd.DataFrame, list[str]]] = {}

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(c.task for c in self.board.columns))

    def write(self, relative: str, html: str) -> None:
        write_public_text(site_path(self.dir, *relative.split("/")), html)

    def ranking(self, key: str) -> tuple[pd.DataFrame, list[str]]:
        """``key`` ranked on its own with the board's rule (cached: paired tests are costly)."""
        if key not in self._rankings:
            self._rankings[key] = self.board.rank_column(key)
        return self._rankings[key]

    def cell(self, model: str, key: str) -> CellText:
        board = self.board
        value = board.values.at[model, key]
        direction, ideal = board.direction_of(key)
        digits = digits_for(key)
        text = format_cell(value, digits=digits)
        low, high = finite_float_of(board.ci_low.at[model, key]), finite_float_of(board.ci_high.at[model, key])
        interval = "" if low is None or high is None or text == "–" else f"[{low:.{digits}f}, {high:.{digits}f}]"
        return {"text": text, "ci": interval, "sort": _sort_key(value, direction, ideal), "value": finite_float_of(value), "low": low, "high": high}

    def column_ranking(self, key: str, prefix: str = "../") -> list[RankedCell]:
        """Models with a value in ``key``, best first, with their rank and cluster."""
        ranked, _ = self.ranking(key)
        rows: list[RankedCell] = []
        for model in ranked.sort_values("order").index:
            if finite_float_of(self.board.values.at[model, key]) is None:
                continue
            rank = format_rank(ranked.at[model, "rank"], bool(ranked.at[model, "tied"]))
            rows.append({"model": model, "display": self.board.display(model), "href": prefix + self.model_pages[model],
                         "rank": rank, "cluster": whole_number(ranked.at[model, "cluster"]) or 0, **self.cell(model, key)})
        return rows

    def primary_columns(self) -> dict[str, Column]:
        """Per task, the column its chart shows: the ranking column if the task has it, else
        the task's first comparable column."""
        chosen: dict[str, Column] = {}
        for column in self.board.columns:
            if column.task not in chosen and not column.incomparable:
                chosen[column.task] = column
        for column in self.board.columns:
            if column.key == self.board.rank_by:
                chosen[column.task] = column
        return chosen

    def report_pages(self, with_reports: bool) -> None:
        from evalharness.report import render_report

        data = self.board.data
        for model in self.board.model_ids:
            runs = data[data["model_id"] == model].drop_duplicates(["run_id", "run_dir"])
            for row in runs.itertuples(index=False):
                if not with_reports:
                    continue
                label = f"run {row.run_id} ({row.created:%Y-%m-%d %H:%M})"
                relative = f"reports/{slugify(f'{model} {row.run_id}')}.html"
                html = render_report(str(row.run_dir), back_href="../" + self.model_pages[model], back_label=f"back to {self.board.display(model)}")
                self.write(relative, html)
                self.reports.setdefault(model, []).append((relative, label))
