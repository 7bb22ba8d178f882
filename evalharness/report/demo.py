"""What ``evalharness demo`` publishes from its runs: a leaderboard, a report, a site."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["publish_demo"]


def publish_demo(output: Path, runs: Mapping[str, Path], *, show: bool = True) -> dict[str, Path]:
    """Under ``output``: ``leaderboard/`` (CSV, Markdown, Parquet, JSON), ``report.html``
    (the candidate against the baseline) and ``site/``. Returns the paths to show."""
    from evalharness.leaderboard import (
        build_leaderboard,
        print_leaderboard,
        write_leaderboard,
    )
    from evalharness.report import write_report
    from evalharness.report.site import write_site

    board = build_leaderboard(list(runs.values()), title="evalharness demo")
    if show:
        print_leaderboard(board)
    files = write_leaderboard(board, output / "leaderboard")
    report = write_report(runs["candidate"], output / "report.html", baseline=runs["baseline"])
    site = write_site(board, output / "site")
    return {"leaderboard": files["markdown"], "report": report, "site": site}
