"""``evalharness leaderboard``: runs → a ranked table, its files, and optionally a static site."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from evalharness.commands.common import split_names
from evalharness.errors import UsageError

if TYPE_CHECKING:
    from evalharness.comparison.compare import CompareSettings


class _BuildOptions(TypedDict, total=False):
    """The keyword arguments of ``build_leaderboard`` that a definition or a flag sets."""

    title: str
    description: str
    tasks: Sequence[str] | None
    metrics: Mapping[str, Sequence[str]] | None
    aggregates: Sequence[str] | None
    rank_by: str | None
    allow_incomparable: bool
    duplicates: str
    ranks: str
    compare_settings: CompareSettings | None
    names: Mapping[str, str] | None


def _parse_metrics(values: list[str]) -> dict[str, list[str]] | None:
    """``--metrics glue/mrpc=f1,accuracy`` (repeatable) -> ``{"glue/mrpc": ["f1", "accuracy"]}``."""
    if not values:
        return None
    chosen: dict[str, list[str]] = {}
    for value in values:
        task, sep, keys = value.partition("=")
        names = split_names([keys])
        if not sep or not task.strip() or not names:
            raise UsageError(f"--metrics: '{value}' is not TASK=METRIC[,METRIC...]")
        chosen.setdefault(task.strip(), []).extend(names)
    return chosen


def _parse_names(values: list[str]) -> dict[str, str]:
    """``--name MODEL_ID=NAME`` (repeatable) -> ``{MODEL_ID: NAME}``."""
    names: dict[str, str] = {}
    for value in values:
        model, sep, name = value.partition("=")
        if not sep or not model.strip() or not name.strip():
            raise UsageError(f"--name: '{value}' is not MODEL_ID=NAME")
        if model.strip() in names:
            raise UsageError(f"--name: '{model.strip()}' is named twice")
        names[model.strip()] = name.strip()
    return names


def _compare_settings(alpha: float, correction: str) -> CompareSettings:
    from evalharness.comparison.compare import CompareSettings

    return CompareSettings(alpha=alpha, correction=correction)


def _options(args: argparse.Namespace) -> tuple[list[str | Path], _BuildOptions]:
    """Runs and build options: the definition's, overridden by what the command line gives."""
    runs: list[str | Path] = list(args.runs)
    options: _BuildOptions = {"title": "Leaderboard"}
    alpha, correction, names = 0.05, "holm", dict[str, str]()
    if args.definition:
        from evalharness.leaderboard import load_definition

        loaded = load_definition(args.definition)
        spec = loaded.spec
        runs = [*loaded.run_dirs, *runs]
        options.update({
            "title": spec.title,
            "description": spec.description,
            "tasks": spec.tasks,
            "metrics": spec.metrics,
            "aggregates": spec.aggregates,
            "rank_by": spec.rank_by,
            "allow_incomparable": spec.allow_incomparable,
            "duplicates": spec.duplicates,
            "ranks": spec.ranks,
        })
        alpha, correction, names = spec.alpha, spec.correction, dict(spec.names)
    tasks, metrics, aggregates = split_names(args.tasks) or None, _parse_metrics(args.metrics), split_names(args.aggregates) or None
    if args.title is not None:
        options["title"] = args.title
    if tasks is not None:
        options["tasks"] = tasks
    if metrics is not None:
        options["metrics"] = metrics
    if aggregates is not None:
        options["aggregates"] = aggregates
    if args.rank_by is not None:
        options["rank_by"] = args.rank_by
    if args.duplicates is not None:
        options["duplicates"] = args.duplicates
    if args.ranks is not None:
        options["ranks"] = args.ranks
    names.update(_parse_names(args.name))
    options["names"] = names
    options["compare_settings"] = _compare_settings(args.alpha if args.alpha is not None else alpha, args.correction or correction)
    if args.allow_incomparable:
        options["allow_incomparable"] = True
    if not runs:
        raise UsageError("give run directories (RUN_DIR...) or a leaderboard definition (--definition FILE)")
    return runs, options


def _leaderboard(args: argparse.Namespace) -> int:
    from evalharness.leaderboard import (
        build_leaderboard,
        print_leaderboard,
        to_markdown,
        write_leaderboard,
    )

    runs, options = _options(args)
    board = build_leaderboard(runs, **options)
    if args.format == "markdown":
        sys.stdout.write(to_markdown(board))
    else:
        print_leaderboard(board)
    written = []
    if args.output:
        written += [str(path) for path in write_leaderboard(board, args.output).values()]
    if args.site:
        from evalharness.report.site import write_site

        written.append(str(write_site(board, args.site, reports=not args.no_reports)))
    for path in written:
        print(f"wrote {path}", file=sys.stderr if args.format == "markdown" else sys.stdout)
    return 0


def _probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = commands.add_parser(
        "leaderboard",
        help="rank models from run directories; write CSV/Markdown/Parquet/JSON and a static site",
        description=(
            "Rank the models of the given runs. Values of one column must be comparable (same metric "
            "signature, data fingerprint, example count and task version); when a model has several "
            "runs, the latest run of each task wins (stated in the notes)."
        ),
    )
    board.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories (or folders holding them)")
    board.add_argument("--definition", type=Path, metavar="FILE", help="a leaderboard definition (YAML), e.g. leaderboards/demo.yaml")
    board.add_argument("--output", type=Path, metavar="DIR", help="write leaderboard.{csv,md,parquet,json} here")
    board.add_argument("--site", type=Path, metavar="DIR", help="write a static leaderboard site here (with a report per run)")
    board.add_argument("--no-reports", action="store_true", help="with --site: do not generate the per-run reports")
    board.add_argument("--tasks", action="append", default=[], help="tasks, groups or globs to show, comma-separated")
    board.add_argument("--metrics", action="append", default=[], metavar="TASK=KEY,...", help="metric keys to show for a task")
    board.add_argument("--aggregates", action="append", default=[], help="glue_score, mean, mean_win_rate (comma-separated)")
    board.add_argument("--rank-by", help="an aggregate or a TASK:METRIC column")
    board.add_argument("--allow-incomparable", action="store_true", help="show incomparable numbers in separate marked columns instead of refusing")
    board.add_argument("--duplicates", choices=["latest", "error"], help="several runs of one model: the latest wins (default) or refuse")
    board.add_argument("--title", help="leaderboard title")
    board.add_argument(
        "--ranks", choices=["paired", "marginal"],
        help="paired (default): WMT-style clusters from paired tests on the shared examples, corrected across all pairs; "
        "marginal: tie when 95%% confidence intervals overlap",
    )
    board.add_argument("--alpha", type=_probability, help="--ranks paired: significance level (default 0.05)")
    board.add_argument("--correction", choices=["holm", "bh", "none"], help="--ranks paired: multiple-testing correction across all pairs (default holm)")
    board.add_argument("--name", action="append", default=[], metavar="MODEL_ID=NAME", help="show a readable name for a model (repeatable)")
    board.add_argument("--format", choices=["table", "markdown"], default="table", help="what to print (markdown for CI summaries)")
    board.set_defaults(handler=_leaderboard)
