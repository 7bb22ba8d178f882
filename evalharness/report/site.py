"""The static leaderboard site: ``evalharness leaderboard RUN... --site DIR``.

    DIR/index.html              charts first (scores with CI whiskers per task, a models ×
                                tasks heat map), then the table: sticky model column, column
                                groups per task, filters and sort kept in the URL, metadata
                                and badges per row
    DIR/compare.html            any two rows: every shared metric with its paired test, and
                                the examples whose outcome changed, searchable
    DIR/tasks/<slug>.html       one page per task: each metric ranked with the board's rule
    DIR/models/<slug>.html      one page per model: metadata, reproduce command, ranks, runs
    DIR/reports/<slug>.html     the full report of every run on the board
    DIR/history.html            earlier versions of the board (``DIR/history/*.json``): a
                                rebuild never silently drops a row
    DIR/data/leaderboard.*      CSV, JSON, Markdown and Parquet downloads

Pages are self-contained (see ``render``): they work from any static host and from
``file://``, with data rendered into the markup, never fetched. File names are slugs of
``[a-z0-9-]`` plus a hash, so no model, run or task name can write outside ``DIR``.
"""
from __future__ import annotations

from pathlib import Path

from evalharness.leaderboard.output import write_leaderboard
from evalharness.leaderboard.table import Leaderboard
from evalharness.report.site_compare import compare_page
from evalharness.report.site_history import archive_previous, history_page
from evalharness.report.site_index import index_page
from evalharness.report.site_model import Site, site_path
from evalharness.report.site_pages import model_page, task_page

__all__ = ["write_site"]


def write_site(board: Leaderboard, site_dir: str | Path, *, reports: bool = True) -> Path:
    """Write the site for ``board`` into ``site_dir``; returns the index page's path.

    An earlier board in ``site_dir`` is archived first (``history/``), so a rebuild that
    drops a row says so instead of losing it."""
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    site = Site(board, site_dir)
    history = archive_previous(site_dir, board)
    write_leaderboard(board, site_path(site_dir, "data"))
    site.report_pages(reports)
    index_page(site, history)
    for task in site.tasks:
        task_page(site, task)
    for model in board.model_ids:
        model_page(site, model)
    compare_page(site)
    history_page(site, history)
    return site_dir / "index.html"
