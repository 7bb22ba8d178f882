"""Reading text files as the data readers and prediction readers need them: one decoding
policy (errors name the file and byte), newline-only line splitting, JSON Lines.

A leaf module: every reader (tabular, bias probes, prediction files) imports it, so none of
them imports another.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, TypeAlias

from pydantic import AfterValidator

from evalharness.errors import DataError
from evalharness.jsonvalues import JSONObject, JsonValue

__all__ = ["Encoding", "Row", "json_lines", "loads_json", "read_text", "split_lines"]

# One row a reader yields: column name -> raw value, as the source holds it (text from a
# delimited file, JSON values from a JSON file, whatever a parquet file or a hub dataset holds).
# The loader checks and coerces each value to its field's type.
Row: TypeAlias = Mapping[str, object]


def _known_encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding '{name}' (e.g. utf-8, utf-8-sig, latin-1)") from None
    return name


# A reader's ``encoding`` option: checked when the task is validated, not when data is read.
Encoding = Annotated[str, AfterValidator(_known_encoding)]


def _unique_keys(pairs: list[tuple[str, JsonValue]]) -> JSONObject:
    row: JSONObject = {}
    for key, value in pairs:
        if key in row:
            raise ValueError(f"key '{key}' appears twice in one object")
        row[key] = value
    return row


def loads_json(text: str) -> JsonValue:
    """``json.loads`` that refuses an object with a key twice (json keeps the last silently)."""
    return json.loads(text, object_pairs_hook=_unique_keys)


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


def json_lines(path: Path, encoding: str) -> Iterator[tuple[str, JSONObject]]:
    """``(file:line, object)`` for each non-blank line of a JSON Lines file; a line that is
    not a JSON object is an error naming the file and line."""
    for line_number, line in enumerate(split_lines(read_text(path, encoding)), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            row = loads_json(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object per line")
        yield where, row
