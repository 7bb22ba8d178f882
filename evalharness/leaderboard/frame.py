"""Run directories → one tidy pandas DataFrame: one row per run × task × metric.

The tidy frame is the one place where records meet pandas; pivots, aggregates and outputs
all start from it. It reads ``results.json`` only (through :func:`evalharness.load_record`,
which validates the record and refuses unknown schema versions), never models or samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from evalharness.errors import RecordError
from evalharness.records.prompt_format import prompt_format_key
from evalharness.records.record import RESULTS_FILE, RunRecord, load_record
from evalharness.types import Direction, signature_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FRAME_COLUMNS", "column_key", "direction_of", "discover_runs", "load_runs", "record_rows"]

PathLike = str | os.PathLike[str]
# A cell of the tidy frame, as :func:`record_rows` gives it.
Cell: TypeAlias = str | float | bool | None

# The tidy frame's columns, in order. ``model_id`` is the leaderboard row key: the model's
# name, suffixed with its fingerprint when two different checkpoints share a name.
FRAME_COLUMNS = [
    "model_id",
    "model",
    "model_fingerprint",
    "model_kind",
    "source",
    "display_name",
    "task",
    "task_version",
    "spec_hash",
    "n_examples",
    "data_fingerprint",
    "metric",
    "metric_name",
    "value",
    "ci_low",
    "ci_high",
    "stderr",
    "ci_method",
    "n",
    "direction",
    "higher_is_better",
    "ideal",
    "signature",
    "prompt_format",
    "note",
    "run_id",
    "created",
    "run_dir",
]


def column_key(task: str, metric: str) -> str:
    """``glue/mrpc:f1``; metric keys cannot contain ``:`` (see ``MetricSpec.key``)."""
    return f"{task}:{metric}"


def direction_of(higher_is_better: bool, ideal: float | None) -> str:
    """``ideal`` wins over the flag: such metrics rank by distance from the ideal value."""
    return Direction(higher_is_better, ideal).name


def discover_runs(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Run directories named by ``paths``, in order and without repeats.

    A path may be a run directory, its ``results.json``, or a folder holding run directories
    at any depth (``runs/``). Anything else is an error naming the path.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: dict[Path, Path] = {}
    for given in paths:
        path = Path(given)
        if path.is_file():
            if path.name != RESULTS_FILE:
                raise RecordError(f"{path}: not a run record (expected a run directory or its {RESULTS_FILE})")
            runs = [path.parent]
        elif (path / RESULTS_FILE).is_file():
            runs = [path]
        elif path.is_dir():
            runs = sorted(record.parent for record in path.rglob(RESULTS_FILE))
            if not runs:
                raise RecordError(f"{path}: no run record here or below (expected {RESULTS_FILE})")
        else:
            raise RecordError(f"{path}: no such run directory")
        for run in runs:
            found.setdefault(run.resolve(), run)
    if not found:
        raise RecordError("no run directories given")
    return list(found.values())


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _display_name(record: RunRecord) -> str | None:
    """The readable name a record gives its model (``model.notes.display_name``), if any."""
    name = record.model.notes.get("display_name")
    return name.strip() if isinstance(name, str) and name.strip() else None


def record_rows(record: RunRecord, run_dir: PathLike) -> list[dict[str, Cell]]:
    """The tidy rows of one record (``model_id`` is filled in by :func:`load_runs`)."""
    rows: list[dict[str, Cell]] = []
    for task_name, task in record.tasks.items():
        for key, entry in task.metrics.items():
            low, high = entry.ci
            rows.append(
                {
                    "model_id": record.model.name,
                    "model": record.model.name,
                    "model_fingerprint": record.model.fingerprint,
                    "model_kind": record.model.kind,
                    "source": record.model.source,
                    "display_name": _display_name(record),
                    "task": task_name,
                    "task_version": task.version,
                    "spec_hash": task.spec_hash,
                    "n_examples": task.n_examples,
                    "data_fingerprint": task.data.fingerprint,
                    "metric": key,
                    "metric_name": entry.metric,
                    "value": _or_nan(entry.value),
                    "ci_low": _or_nan(low),
                    "ci_high": _or_nan(high),
                    "stderr": _or_nan(entry.stderr),
                    "ci_method": entry.ci_method,
                    "n": entry.n,
                    "direction": direction_of(entry.higher_is_better, entry.ideal),
                    "higher_is_better": entry.higher_is_better,
                    "ideal": _or_nan(entry.ideal),
                    "signature": signature_text(entry.signature),
                    "prompt_format": prompt_format_key(task.formulation, task.settings),
                    "note": entry.note,
                    "run_id": record.run_id,
                    "created": record.created,
                    "run_dir": str(run_dir),
                }
            )
    return rows


def _fingerprint_tag(fingerprint: str) -> str:
    return fingerprint.split(":", 1)[-1][:8]


def _model_ids(frame: pd.DataFrame) -> pd.Series[str]:
    """Names shared by different checkpoints get ``@<fingerprint>`` so rows never merge them."""
    fingerprints = frame.groupby("model")["model_fingerprint"].nunique()
    shared = set(fingerprints[fingerprints > 1].index)
    return frame.apply(
        lambda row: f"{row['model']}@{_fingerprint_tag(row['model_fingerprint'])}"
        if row["model"] in shared
        else row["model"],
        axis=1,
    )


def load_runs(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Load run directories into a tidy DataFrame, one row per run × task × metric.

    Columns: see ``FRAME_COLUMNS``. Undefined values (``null`` in the record) are NaN;
    ``created`` is a UTC timestamp; ``direction`` is ``higher``, ``lower`` or ``ideal``.
    Every record is validated; a bad or unknown-version record raises ``RecordError``.
    """
    import pandas as pd

    rows: list[dict[str, Cell]] = []
    for run_dir in discover_runs(paths):
        rows.extend(record_rows(load_record(run_dir), run_dir))
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    if frame.empty:
        return frame
    frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    frame["model_id"] = _model_ids(frame)
    return frame
