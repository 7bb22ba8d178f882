"""Leaderboards from run records, for notebooks, the CLI and published sites.

Reads ``results.json`` files only: never models, torch or transformers.

    from evalharness.leaderboard import load_runs, build_leaderboard, write_leaderboard

    frame = load_runs(["runs/bert", "runs/roberta"])   # tidy: run × task × metric
    board = build_leaderboard(frame, tasks=["glue"])    # models × (task, metric) + aggregates
    board.pivot()                                       # a DataFrame, best model first
    board.table()                                       # flat: rank, values and CIs
    write_leaderboard(board, "out/")                    # CSV, Markdown, Parquet, JSON

See ``aggregates`` for the GLUE-score and win-rate conventions, ``checks`` for what makes
numbers comparable and how repeated runs of a model are resolved, ``ranking`` for ties.
"""

from evalharness.leaderboard.aggregates import (
    GLUE_TASKS,
    AggregateResult,
    glue_score,
    mean_win_rate,
    suite_mean,
)
from evalharness.leaderboard.checks import (
    IncomparableRunsError,
    resolve_duplicates,
    split_incomparable,
)
from evalharness.leaderboard.definition import LeaderboardDefinition, load_definition
from evalharness.leaderboard.frame import FRAME_COLUMNS, discover_runs, load_runs
from evalharness.leaderboard.output import (
    print_leaderboard,
    to_json,
    to_markdown,
    write_leaderboard,
)
from evalharness.leaderboard.ranking import rank_with_ties
from evalharness.leaderboard.table import (
    AggregateColumn,
    Column,
    Leaderboard,
    build_leaderboard,
    pivot,
    select,
)

__all__ = [
    "FRAME_COLUMNS",
    "GLUE_TASKS",
    "AggregateColumn",
    "AggregateResult",
    "Column",
    "IncomparableRunsError",
    "Leaderboard",
    "LeaderboardDefinition",
    "build_leaderboard",
    "discover_runs",
    "glue_score",
    "load_definition",
    "load_runs",
    "mean_win_rate",
    "pivot",
    "print_leaderboard",
    "rank_with_ties",
    "resolve_duplicates",
    "select",
    "split_incomparable",
    "suite_mean",
    "to_json",
    "to_markdown",
    "write_leaderboard",
]
