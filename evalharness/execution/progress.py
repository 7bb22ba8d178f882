"""Progress on stderr: a bar per task (rich) and the one-line end-of-run summary.

The bar is shown only when stderr is a terminal or ``--progress`` asks for it, so logs of
unattended runs stay readable; it counts requests (an example's choices are requests too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Callable

from evalharness.errors import RecordError
from evalharness.jsonvalues import JsonValue, expect_float, expect_int, expect_object

__all__ = ["progress_enabled", "summary_line", "task_progress"]


def progress_enabled(requested: bool) -> bool:
    return requested or sys.stderr.isatty()


@contextmanager
def task_progress(name: str, total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar with requests/s and the ETA when enabled."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(name, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            state = bar.tasks[task]
            # rich's speed needs two updates; a task answered in one chunk gets its average
            speed = state.speed or (state.completed / state.elapsed if state.elapsed else None)
            bar.update(task, rate=f"{speed:.1f} req/s" if speed else "")

        yield advance


def _count(executions: Mapping[str, Mapping[str, JsonValue]], field: str, inner: str | None = None) -> int:
    """The sum of one count over the tasks' ``execution`` entries (``field.inner`` if nested)."""
    total = 0
    for task, entry in executions.items():
        value = entry[field]
        if inner is not None:
            value = expect_object(value, f"{task}: execution.{field}", error=RecordError)[inner]
        total += expect_int(value, f"{task}: execution.{field}" + (f".{inner}" if inner else ""), error=RecordError)
    return total


def summary_line(executions: Mapping[str, Mapping[str, JsonValue]], n_examples: int, seconds: float) -> str:
    """``N examples in S s (E ex/s, T tokens/s), padding efficiency P%, cache hits H/U``."""
    hits = _count(executions, "cache", "hits")
    unique = _count(executions, "unique_requests")
    tokens = _count(executions, "tokens")
    padded = _count(executions, "padded_tokens")
    compute = sum(expect_float(e["seconds"], f"{task}: execution.seconds", error=RecordError) for task, e in executions.items()) or 1e-9
    padding = f"{100 * tokens / padded:.1f}%" if padded else "n/a"
    return (
        f"{n_examples} examples in {seconds:.1f} s ({n_examples / max(seconds, 1e-9):.1f} examples/s, "
        f"{tokens / compute:.0f} tokens/s), padding efficiency {padding}, cache hits {hits}/{unique}"
    )
