"""Human-readable tables of run records for the terminal."""

from __future__ import annotations

from typing import Any

from evalharness.records.record import RunRecord

__all__ = ["format_value", "print_run", "wide_console"]


def format_value(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _direction(entry: Any) -> str:
    if entry.ideal is not None:
        return f"ideal {entry.ideal:g}"
    return "higher" if entry.higher_is_better else "lower"


def print_run(record: RunRecord, run_dir: Any = None, *, console: Any = None) -> None:
    """Print one row per (task, metric) with value, 95% CI, n and direction."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{record.model.name} ({record.model.kind}, {record.model.fingerprint})")
    for column, justify in (("task", "left"), ("metric", "left"), ("value", "right"), ("95% CI", "right"), ("n", "right"), ("better", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for task_name, task in record.tasks.items():
        for metric_name, entry in task.metrics.items():
            low, high = entry.ci
            table.add_row(
                escape(task_name),
                escape(metric_name),
                format_value(entry.value),
                escape(f"[{format_value(low)}, {format_value(high)}]"),  # "[n/a, n/a]" is not markup
                str(entry.n),
                _direction(entry),
            )
    console.print(table)
    for task_name, reason in record.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {task_name}: {reason.splitlines()[0]}")
    if run_dir is not None:
        console.print(f"run record: {run_dir}/results.json")


def wide_console() -> Any:
    """A console that does not squeeze tables into 80 columns when output goes to a CI log."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)
