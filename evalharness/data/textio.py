"""Reading text files as the data readers and prediction readers need them: one decoding
policy (errors name the file and byte), newline-only line splitting, JSON Lines.

A leaf module: every reader (tabular, bias probes, prediction files) imports it, so none of
them imports another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalharness.errors import DataError

__all__ = ["json_lines", "read_text", "split_lines"]


def read_text(path: Path, encoding: str) -> str:
    """The file's text with its line endings untouched (``Path.read_text`` would turn a lone
    "\r" into a line break, which sacrebleu and line-aligned references do not)."""
    try:
        with path.open(encoding=encoding, newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not valid {encoding} at byte {exc.start} ({exc.reason}); "
            "re-encode the file as UTF-8 or set the reader's 'encoding' option"
        ) from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding '{encoding}'") from None


def split_lines(text: str) -> list[str]:
    """Split on newlines only (line-aligned corpora may contain U+2028), dropping the final
    empty string that a trailing newline produces, and a CR before each newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def json_lines(path: Path, encoding: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file:line, object)`` for each non-blank line of a JSON Lines file; a line that is
    not a JSON object is an error naming the file and line."""
    for line_number, line in enumerate(split_lines(read_text(path, encoding)), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object per line")
        yield where, row
