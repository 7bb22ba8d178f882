"""Terminal tables that stay readable in any width, in a terminal or piped into a log.

A table is drawn as a grid only when every cell fits at its full width; otherwise each row
becomes a block of ``column: value`` lines (the long layout). Cells are never cut short with
an ellipsis nor broken across lines, so two rows whose names differ only at the end always
stay distinguishable.
Every cell is plain text: a name from a record is never read as rich markup. The width is
``$COLUMNS`` when set, else the terminal's, else (a CI log: no terminal at all) 160 columns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = ["Cell", "Column", "console", "print_note", "print_table"]

LOG_WIDTH = 160  # a log has no width of its own; rich would assume 80 and squeeze tables


@dataclass(frozen=True)
class Column:
    """A column; ``key`` columns name the row (the heading of its block in the long layout)."""

    header: str
    justify: Literal["left", "center", "right"] = "left"  # a subset of rich's JustifyMethod
    key: bool = False


@dataclass(frozen=True)
class Cell:
    """A cell with a style (colour only: the text reads the same without it)."""

    text: str
    style: str = ""


def _log_width() -> int | None:
    """:data:`LOG_WIDTH` when neither ``$COLUMNS`` nor any standard stream's terminal gives a width."""
    if os.environ.get("COLUMNS"):
        return None
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            os.get_terminal_size(stream.fileno())
            return None
        except (AttributeError, ValueError, OSError):
            continue
    return LOG_WIDTH


def console() -> Console:
    """Text lines are soft-wrapped (left whole for the terminal to wrap), so a long name or
    note is never split by a hard line break that a search or a log reader would trip on."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=_log_width())


def _text(value: object, style: str = "") -> Text:
    from rich.text import Text

    if isinstance(value, Cell):
        return Text(value.text, style=value.style or style, overflow="fold")
    return Text(str(value), style=style, overflow="fold")


def _grid(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> Table:
    from rich.table import Table

    table = Table(title=_text(title) if title else None)
    for column in columns:
        table.add_column(_text(column.header), justify=column.justify, no_wrap=True)
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    return table


def _plain(value: object) -> str:
    return value.text if isinstance(value, Cell) else str(value)


def _width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _heading(out: Console, columns: Sequence[Column], row: Sequence[object]) -> list[int]:
    """The indices of the cells that name the row: all key cells when they fit on one line,
    else the first alone (the others then get lines of their own)."""
    keys = [i for i, column in enumerate(columns) if column.key] or [0]
    if _width("  ".join(_plain(row[i]) for i in keys)) > out.width:
        keys = keys[:1]
    return keys


def _print_long(out: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> None:
    """One block per row: the key cells as a heading, then one indented line per other cell."""
    from rich.text import Text

    if title:
        out.print(_text(title, "bold"))
    # Labels line up in a column at most half the width; a longer one gets a line of its own.
    width = min(max((_width(column.header) for column in columns), default=0), out.width // 2)
    for number, row in enumerate(rows):
        if number:
            out.print()
        keys = _heading(out, columns, row)
        out.print(_text("  ".join(_plain(row[i]) for i in keys), "bold"))
        for index, (column, cell) in enumerate(zip(columns, row)):
            if index in keys:
                continue
            if _width(column.header) > width:
                out.print(_text(f"  {column.header}"))
                line = Text(" " * (width + 4), overflow="fold")
            else:
                line = Text(f"  {column.header}{' ' * (width - _width(column.header))}  ", overflow="fold")
            line.append_text(_text(cell))
            out.print(line)


def print_table(
    out: Console, columns: Sequence[Column], rows: Sequence[Sequence[object]], *, title: str | None = None
) -> None:
    """A grid when it fits ``out``'s width uncut, else the long layout (see the module)."""
    table = _grid(title, columns, rows)
    natural = out.measure(table, options=out.options.update_width(1 << 20)).maximum
    if natural <= out.width:
        out.print(table)
    else:
        _print_long(out, title, columns, rows)


def print_note(out: Console, label: Cell | str, text: str) -> None:
    """``label text`` as one plain-text line (never cut; the label may carry a style)."""
    line = _text(label)
    line.append(" ")
    line.append(text)
    out.print(line)
