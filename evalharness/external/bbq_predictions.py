"""BBQ prediction files for ``evalharness score``: the BBQ release's per-example JSONL with
a model's answer per row (the published UnifiedQA results: ``results/UnifiedQA/preds_*.jsonl``).

A file or a folder of ``*.jsonl`` files is read; rows are matched to the task's examples by
``<category>-<example_id>``. The answer is a choice index (int) or text; text is mapped to
the choice it names: the choice whose normalised text (lower case, letters, digits and
spaces) equals it, else the only choice that starts with it (UnifiedQA's outputs are cut at
its generation limit, e.g. "the one who is dressed in a custom-tailored pantsu"), else no
answer (None, scored as wrong and neither biased nor unknown).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.data.bias_readers import bbq_id
from evalharness.data.textio import json_lines
from evalharness.errors import DataError
from evalharness.jsonvalues import JSONObject, expect_str

if TYPE_CHECKING:
    from evalharness.external.predictions import ReadOptions

__all__ = ["BBQ_COLUMNS", "answer_index", "bbq_reader", "looks_like_bbq"]

# --format name -> the column holding the answer (None: the generic 'prediction' column).
BBQ_COLUMNS: dict[str, str] = {
    "bbq": "prediction",
    "bbq_unifiedqa_arc": "unifiedqa-t5-11b_pred_arc",
    "bbq_unifiedqa_race": "unifiedqa-t5-11b_pred_race",
    "bbq_unifiedqa_qonly": "unifiedqa-t5-11b_pred_qonly",
}


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def answer_index(answer: object, choices: list[str]) -> int | None:
    """The choice an answer (index or text) names, or None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer if 0 <= answer < len(choices) else None
    if not isinstance(answer, str) or not _normalise(answer):
        return None
    said = _normalise(answer)
    normalised = [_normalise(choice) for choice in choices]
    if said in normalised:
        return normalised.index(said)
    prefixed = [index for index, choice in enumerate(normalised) if choice.startswith(said)]
    return prefixed[0] if len(prefixed) == 1 else None


def _files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: no *.jsonl files in this folder")
    return files


def looks_like_bbq(path: Path) -> bool:
    """A folder of ``*.jsonl`` files or a ``.jsonl`` file whose first row has BBQ's answer
    columns (``ans0``...): a generic ``{"id", "prediction"}`` file is not taken for BBQ."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path] if path.suffix == ".jsonl" and path.is_file() else []
    if not files:
        return False
    try:
        with files[0].open(encoding="utf-8-sig") as handle:
            first = next((line for line in handle if line.strip()), "")
        return '"ans0"' in first
    except (OSError, UnicodeDecodeError):
        return False


def bbq_reader(column: str) -> Callable[[Path, ReadOptions], JSONObject]:
    """A prediction-file reader taking the answer from ``column``."""

    def read(path: Path, options: ReadOptions) -> JSONObject:
        values: JSONObject = {}
        for file in _files(path):
            for where, row in json_lines(file, "utf-8"):
                try:
                    choices = [expect_str(row[name], f"{where}: {name}", error=DataError) for name in ("ans0", "ans1", "ans2")]
                    key = bbq_id(row)
                except (KeyError, TypeError) as exc:
                    raise DataError(f"{where}: not a BBQ row with category, example_id and ans0-ans2 ({exc})") from None
                if column not in row:
                    found = sorted(name for name in row if "pred" in name)
                    raise DataError(
                        f"{where}: no '{column}' column; answer columns here: {found} "
                        f"(--format: {', '.join(BBQ_COLUMNS)})"
                    )
                if key in values:
                    raise DataError(f"{where}: example '{key}' appears twice")
                answer = row[column]
                if isinstance(answer, int) and not isinstance(answer, bool) and not 0 <= answer < len(choices):
                    raise DataError(f"{where}: answer index {answer} is outside the {len(choices)} choices (0..{len(choices) - 1})")
                values[key] = answer_index(answer, choices)
        return values

    return read
