"""Leaderboard outputs: CSV and Parquet (one flat row per model), Markdown (READMEs and CI
summaries), JSON (everything, for sites and scripts) and a terminal table.

Every name that came from a record is escaped for the format it lands in: Markdown cells
cannot break the table or inject HTML, terminal cells are plain text (no rich markup).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.jsonvalues import JSONArray, JSONObject, finite_float_of
from evalharness.leaderboard.checks import MARKER
from evalharness.leaderboard.table import Leaderboard
from evalharness.records.record import atomic_write_text

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "OUTPUT_FILES",
    "format_cell",
    "markdown_escape",
    "print_leaderboard",
    "to_json",
    "to_markdown",
    "whole_number",
    "write_leaderboard",
    "write_public_text",
]

OUTPUT_FILES = {"csv": "leaderboard.csv", "markdown": "leaderboard.md", "parquet": "leaderboard.parquet", "json": "leaderboard.json"}


def write_public_text(path: Path, text: str) -> None:
    """Atomic write with the usual permissions (the temp file is private), so a static host
    serving the output can read it."""
    atomic_write_text(path, text)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def digits_for(key: str) -> int:
    return 3 if key == "mean_win_rate" else 2


def format_cell(value: object, low: object = None, high: object = None, digits: int = 2) -> str:
    """``97.00 [95.50, 98.50]``; ``–`` for a missing value; the interval only when defined."""
    number = finite_float_of(value)
    if number is None:
        return "–"
    text = f"{number:.{digits}f}"
    low_number, high_number = finite_float_of(low), finite_float_of(high)
    if low_number is not None and high_number is not None:
        text += f" [{low_number:.{digits}f}, {high_number:.{digits}f}]"
    return text


def _cell(board: Leaderboard, model: str, key: str) -> str:
    return format_cell(board.values.at[model, key], board.ci_low.at[model, key], board.ci_high.at[model, key], digits_for(key))


def _headers(board: Leaderboard) -> list[tuple[str, str]]:
    """(key, header) for every aggregate and metric column, in display order."""
    headers = [(a.key, a.label) for a in board.aggregates]
    headers += [(c.key, f"{c.label} {c.arrow}") for c in board.columns]
    return headers


# What a shared rank (``=N``) means under each ranking rule, for every output.
RANK_LEGEND = {
    "paired": "`=N` marks a shared rank: a paired test on the same examples, corrected across all pairs, cannot separate the model from the others of its cluster",
    "marginal": "`=N` marks models whose 95% intervals overlap (a tie)",
}


def markdown_escape(value: object) -> str:
    """Text safe inside a Markdown table cell: no HTML, no table breaks, no formatting."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = " ".join(text.split())
    for char in "\\`*_[]|#":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(board: Leaderboard) -> str:
    headers = _headers(board)
    lines = [f"## {markdown_escape(board.title)}", ""]
    if board.description:
        lines += [markdown_escape(board.description), ""]
    lines.append(
        f"Ranked by **{markdown_escape(board.label_of(board.rank_by))}**; values with 95% confidence intervals; "
        f"{RANK_LEGEND[board.ranks]}."
    )
    lines += ["", "| rank | model | " + " | ".join(markdown_escape(h) for _, h in headers) + " |"]
    lines.append("|---:|:---|" + "---:|" * len(headers))
    for model in board.model_ids:
        cells = [board.rank_label(model), markdown_escape(board.display(model))] + [_cell(board, model, key) for key, _ in headers]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| column | better | n | data | signature |", "|:---|:---|---:|:---|:---|"]
    for column in board.columns:
        lines.append(
            f"| {markdown_escape(column.label)} | {column.direction_label} | {column.n} | "
            f"{markdown_escape(column.data_fingerprint)} | {markdown_escape(column.signature)} |"
        )
    for aggregate in board.aggregates:
        lines.append(f"| {markdown_escape(aggregate.label)} | higher is better | | | {markdown_escape(aggregate.description)} |")
    if board.notes:
        lines += ["", "Notes:", ""] + [f"- {markdown_escape(note)}" for note in board.notes]
    return "\n".join(lines) + "\n"


def whole_number(cell: object) -> int | None:
    """An integer cell of a frame (rank, cluster); None when it has no value (NA, NaN, None)."""
    number = finite_float_of(cell)
    return None if number is None else int(number)


def to_json(board: Leaderboard) -> JSONObject:
    """The whole leaderboard as plain JSON types (undefined numbers are null)."""
    rows: JSONArray = []
    for model in board.model_ids:
        info = board.models.loc[model]
        cells: JSONObject = {
            key: {
                "value": finite_float_of(board.values.at[model, key]),
                "ci": [finite_float_of(board.ci_low.at[model, key]), finite_float_of(board.ci_high.at[model, key])],
            }
            for key, _ in _headers(board)
        }
        rows.append(
            {
                "rank": whole_number(board.ranking.at[model, "rank"]),
                "tied": bool(board.ranking.at[model, "tied"]),
                "cluster": whole_number(board.ranking.at[model, "cluster"]) if "cluster" in board.ranking else None,
                "model_id": model,
                "name": board.display(model),
                "model": str(info["model"]),
                "model_fingerprint": str(info["model_fingerprint"]),
                "model_kind": str(info["model_kind"]),
                "source": str(info["source"]),
                "runs": info["runs"].split(","),
                "created": info["created"].isoformat(),
                "values": cells,
            }
        )
    return {
        "title": board.title,
        "description": board.description,
        "rank_by": board.rank_by,
        "ranks": board.ranks,
        "marker": MARKER,
        "columns": [
            {
                "key": c.key,
                "task": c.task,
                "metric": c.metric,
                "metric_key": c.metric_key,
                "metric_name": c.metric_name,
                "direction": c.direction,
                "ideal": finite_float_of(c.ideal),
                "signature": c.signature,
                "data_fingerprint": c.data_fingerprint,
                "n": c.n,
                "task_version": c.task_version,
                "incomparable": c.incomparable,
            }
            for c in board.columns
        ],
        "aggregates": [{"key": a.key, "label": a.label, "description": a.description} for a in board.aggregates],
        "rows": rows,
        "notes": list(board.notes),
    }


def write_leaderboard(board: Leaderboard, directory: str | Path) -> dict[str, Path]:
    """Write the four formats into ``directory`` (fixed file names); returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {kind: directory / name for kind, name in OUTPUT_FILES.items()}
    table = board.table()
    write_public_text(paths["csv"], table.to_csv(index=False))
    write_public_text(paths["markdown"], to_markdown(board))
    text = json.dumps(to_json(board), indent=2, ensure_ascii=False, allow_nan=False)
    write_public_text(paths["json"], text + "\n")
    temporary = paths["parquet"].with_name(f".{paths['parquet'].name}.tmp")
    table.to_parquet(temporary, index=False)
    temporary.replace(paths["parquet"])
    return paths


def print_leaderboard(board: Leaderboard, *, console: Console | None = None) -> None:
    """The leaderboard as a terminal table (names shown as plain text; one block per model
    when too wide, see ``evalharness.terminal``), then its notes."""
    from evalharness.terminal import Column, print_note, print_table
    from evalharness.terminal import console as make_console

    console = console or make_console()
    headers = _headers(board)
    columns = [Column("rank", "right", key=True), Column("model", key=True)]
    columns += [Column(header, "right") for _, header in headers]
    rows = [[board.rank_label(model), board.display(model), *[_cell(board, model, key) for key, _ in headers]] for model in board.model_ids]
    print_table(console, columns, rows, title=f"{board.title} — ranked by {board.label_of(board.rank_by)}")
    print_note(console, "=N:", RANK_LEGEND[board.ranks].replace("`=N` marks ", "") + "; – no value")
    for note in board.notes:
        print_note(console, "note:", note)
