"""Progress on stderr: a bar per task (rich) and the one-line end-of-run summary.

The bar is shown only when stderr is a terminal or ``--progress`` asks for it, so logs of
unattended runs stay readable; it counts requests (an example's choices are requests too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Callable

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


def summary_line(executions: Mapping[str, Mapping[str, Any]], n_examples: int, seconds: float) -> str:
    """``N examples in S s (E ex/s, T tokens/s), padding efficiency P%, cache hits H/U``."""
    hits = sum(e["cache"]["hits"] for e in executions.values())
    unique = sum(e["unique_requests"] for e in executions.values())
    tokens = sum(e["tokens"] for e in executions.values())
    padded = sum(e["padded_tokens"] for e in executions.values())
    compute = sum(e["seconds"] for e in executions.values()) or 1e-9
    padding = f"{100 * tokens / padded:.1f}%" if padded else "n/a"
    return (
        f"{n_examples} examples in {seconds:.1f} s ({n_examples / max(seconds, 1e-9):.1f} examples/s, "
        f"{tokens / compute:.0f} tokens/s), padding efficiency {padding}, cache hits {hits}/{unique}"
    )
