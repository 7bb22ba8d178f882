"""Human-readable tables of run records for the terminal."""

from __future__ import annotations

from typing import Any

from evalharness.records.record import RunRecord
from evalharness.terminal import Cell, Column, print_note, print_table
from evalharness.terminal import console as make_console

__all__ = ["format_value", "print_run"]

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


def print_run(record: RunRecord, run_dir: Any = None, *, console: Any = None) -> None:
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
    for task_name, reason in record.skipped.items():
        print_note(console, Cell("skipped", "yellow"), f"{task_name}: {reason.splitlines()[0]}")
    if run_dir is not None:
        print_note(console, "run record:", f"{run_dir}/results.json")
