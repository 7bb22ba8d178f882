"""``evalharness compare RUN_A RUN_B``: paired significance tests between two run records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.commands.common import positive_int, seed, split_names

if TYPE_CHECKING:
    from rich.console import Console

    from evalharness.comparison.compare import CompareSettings, Comparison

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}
VERDICT_STYLES = {"improved": "green", "regressed": "red", "no significant change": "dim", "undefined": "yellow"}


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def print_comparison(comparison: Comparison, *, console: Console | None = None) -> None:
    """A table of every compared task and metric, then notes and what was not compared.

    ``result`` is the paired test's verdict: improved/regressed only when the corrected
    p-value is below alpha, else "no significant change". ``n`` counts the examples that
    entered the metric (a SQuAD v2 subset, the swappable examples...). Names and notes come
    from the records, so they are printed as plain text, never read as rich markup; a table
    too wide for the terminal becomes one block per metric (``evalharness.terminal``)."""
    from evalharness.terminal import Cell, Column, print_note, print_table
    from evalharness.terminal import console as make_console

    console = console or make_console()
    settings = comparison.settings
    a, b = comparison.run_a, comparison.run_b
    print_note(console, "A:", f"{a['model']} ({a['path']}, {a['fingerprint']})")
    print_note(console, "B:", f"{b['model']} ({b['path']}, {b['fingerprint']})")
    headers = ("task", "metric", "n", "A", "B", "Δ (B-A)", f"{settings.confidence:.0%} CI of Δ", "p", "p adj.", "test", "result")
    columns = [
        Column(header, "left" if header in {"task", "metric", "test", "result"} else "right", key=header in {"task", "metric"})
        for header in headers
    ]
    rows = []
    for item in comparison.metrics:
        low, high = item.ci
        marker = "" if item.ideal is None else f" (dist. to {item.ideal:g})"
        rows.append(
            [
                item.task,
                item.metric + marker,
                str(item.n),
                _number(item.value_a),
                _number(item.value_b),
                _signed(item.change),
                f"[{_signed(low)}, {_signed(high)}]",
                _p(item.p_value),
                _p(item.p_adjusted),
                item.test,
                Cell(item.verdict, VERDICT_STYLES[item.verdict]),
            ]
        )
    title = f"B vs A: paired tests, {CORRECTION_NAMES[settings.correction]} across {len(comparison.metrics)} comparisons, alpha {settings.alpha:g}"
    print_table(console, columns, rows, title=title)
    counts = comparison.counts()
    console.print(", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count or verdict != "undefined"))
    console.print(
        f"[dim]seed {settings.seed}, bootstrap B={settings.n_resamples} (p-value: {settings.bootstrap_pvalue}), "
        f"permutations R={settings.n_permutations}; Δ of a metric with an ideal value is the change of its distance from it[/dim]"
    )
    for task in comparison.tasks:
        for note in task.notes:
            print_note(console, Cell("note", "yellow"), f"{task.task}: {note}")
    for item in comparison.metrics:
        for note in item.notes:
            print_note(console, Cell("note", "yellow"), f"{item.task} {item.metric}: {note}")
    for skipped in comparison.not_compared:
        print_note(console, Cell("not compared", "yellow"), f"{skipped['task']} {skipped['metric']}: {skipped['reason']}")


def settings_from_args(args: argparse.Namespace) -> CompareSettings:
    from evalharness.comparison.compare import CompareSettings

    return CompareSettings(
        alpha=args.alpha,
        correction=args.correction,
        seed=args.seed,
        n_resamples=args.n_resamples,
        n_permutations=args.n_permutations,
        bootstrap_pvalue=args.bootstrap_pvalue,
        test=args.test,
        allow_different_data=args.allow_different_data,
    )


def add_test_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``compare`` and ``gate``."""
    parser.add_argument("--seed", type=seed, default=12345, help="seed for resampling (default 12345, sacrebleu's)")
    parser.add_argument("--n-resamples", type=positive_int, default=1000, help="paired bootstrap resamples (default 1000)")
    parser.add_argument("--n-permutations", type=positive_int, default=10000, help="approximate randomization trials (default 10000)")
    parser.add_argument(
        "--bootstrap-pvalue",
        choices=["two-sided", "sacrebleu"],
        default="two-sided",
        help="p-value of the paired bootstrap: two-sided (calibrated, default) or sacrebleu's exact definition",
    )
    parser.add_argument("--test", choices=["bootstrap", "permutation", "mcnemar"], help="use this test for every metric instead of each metric's own")
    parser.add_argument(
        "--allow-different-data", action="store_true", help="compare runs whose examples differ, on their shared example ids"
    )


def _compare(args: argparse.Namespace) -> int:
    from evalharness.comparison.compare import compare_runs
    from evalharness.records.record import atomic_write_text

    comparison = compare_runs(
        args.run_a, args.run_b, settings=settings_from_args(args), tasks=split_names(args.tasks) if args.tasks else None
    )
    text = json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    if args.output:
        atomic_write_text(Path(args.output), text + "\n")
    if args.json:
        print(text)
    else:
        print_comparison(comparison)
        if args.output:
            print(f"comparison written to {args.output}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare = commands.add_parser(
        "compare",
        help="compare two runs with paired significance tests on the same examples",
        description="Compare run B against run A (the reference) on every task and metric both share.",
    )
    compare.add_argument("run_a", metavar="RUN_A", help="reference run directory (e.g. the baseline)")
    compare.add_argument("run_b", metavar="RUN_B", help="run directory compared against RUN_A (e.g. the candidate)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON instead of a table")
    compare.add_argument("--output", help="write the comparison as JSON to this file")
    compare.add_argument("--tasks", action="append", help="only these tasks (comma-separated)")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    compare.add_argument(
        "--correction", choices=["holm", "bh", "none"], default="holm", help="multiple-comparison correction across all comparisons (default holm)"
    )
    add_test_options(compare)
    compare.set_defaults(handler=_compare)
