"""Human-readable tables of run records for the terminal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from evalharness.jsonvalues import JsonValue
from evalharness.records.record import RunRecord
from evalharness.terminal import Cell, Column, print_note, print_table
from evalharness.terminal import console as make_console

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["format_value", "print_run", "prompt_summary"]

RUN_COLUMNS = [
    Column("task", key=True),
    Column("metric", key=True),
    Column("value", "right"),
    Column("95% CI", "right"),
    Column("n", "right"),
    Column("better"),
]


def format_value(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# Lint count -> how the summary names it.
_LINT_SHOWN = {
    "bos_doubled": "doubled BOS",
    "bos_missing": "missing BOS",
    "end_of_turn_not_in_stops": "not stopping at end-of-turn",
    "truncated": "truncated",
}


def prompt_summary(settings: Mapping[str, JsonValue]) -> str | None:
    """The prompt format of a prompted task and its token-level lint, in one line."""
    fmt, lint = settings.get("prompt_format"), settings.get("prompt_lint")
    if not isinstance(fmt, dict) or not isinstance(lint, dict):
        return None
    what = f"{fmt.get('format')} format ({'chosen: ' if fmt.get('requested') == 'auto' else ''}{fmt.get('reason')})"
    counts = ", ".join(f"{lint[name]} {label}" for name, label in _LINT_SHOWN.items() if name in lint)
    checked = f"token lint over {lint.get('prompts')} prompts: {counts}" if "bos_doubled" in lint else f"lint: {counts}"
    return f"{what}; {checked}"


def print_run(record: RunRecord, run_dir: str | os.PathLike[str] | None = None, *, console: Console | None = None) -> None:
    """One row per (task, metric) with value, 95% CI, n and direction, then every note:
    why a value is missing, what a task did not apply or cover, what was skipped."""
    console = console or make_console()
    rows = []
    for task_name, task in record.tasks.items():
        for metric_name, entry in task.metrics.items():
            low, high = entry.ci
            rows.append(
                [
                    task_name,
                    metric_name,
                    format_value(entry.value),
                    f"[{format_value(low)}, {format_value(high)}]",
                    str(entry.n),
                    entry.direction.short,
                ]
            )
    title = f"{record.model.name} ({record.model.kind}, {record.model.fingerprint})"
    print_table(console, RUN_COLUMNS, rows, title=title)
    for task_name, task in record.tasks.items():
        for metric_name, entry in task.metrics.items():
            if entry.note:
                label = Cell("no value" if entry.value is None else "note", "yellow")
                print_note(console, label, f"{task_name} {metric_name}: {entry.note}")
        for note in task.notes:
            print_note(console, Cell("note", "yellow"), f"{task_name}: {note}")
    for task_name, task in record.tasks.items():
        line = prompt_summary(task.settings)
        if line:
            print_note(console, Cell("prompt", "cyan"), f"{task_name}: {line}")
    for task_name, reason in record.skipped.items():
        print_note(console, Cell("skipped", "yellow"), f"{task_name}: {reason.splitlines()[0]}")
    if run_dir is not None:
        print_note(console, "run record:", f"{run_dir}/results.json")
