"""Run records: the versioned, validated files a run leaves behind.

A run directory holds ``results.json`` (this schema) and ``samples/<task>.jsonl`` (one line
per example: id, input, prediction, gold, per-example scores and the metric statistics that
``compare`` and ``rescore`` re-aggregate). Files are written atomically (temp file, fsync,
rename), so a crash never leaves a half-written file that parses. Readers reject unknown
schema versions and unknown fields instead of guessing (cf. inspect_ai's ``EvalLog``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalharness.errors import RecordError

__all__ = [
    "SCHEMA_VERSION",
    "DataEntry",
    "GroupEntry",
    "MetricEntry",
    "ModelEntry",
    "RunRecord",
    "TaskEntry",
    "atomic_write_text",
    "load_record",
    "read_samples",
    "samples_path",
    "write_record",
    "write_samples",
]

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupEntry(_Record):
    value: float | None
    ci: tuple[float | None, float | None]
    n: int


class MetricEntry(_Record):
    metric: str = Field(description="registry name; with settings, rebuilds the metric")
    settings: dict[str, Any] = Field(default_factory=dict)
    value: float | None = Field(description="None when undefined (e.g. NaN), never a fake 0")
    ci: tuple[float | None, float | None]
    stderr: float | None
    ci_method: str
    n: int
    higher_is_better: bool
    ideal: float | None = None
    signature: str
    groups: dict[str, GroupEntry] = Field(default_factory=dict)


class DataEntry(_Record):
    source: str
    location: str
    fingerprint: str
    n_available: int


class TaskEntry(_Record):
    version: int
    kind: str
    spec_hash: str
    formulation: str
    n_examples: int
    data: DataEntry
    metrics: dict[str, MetricEntry]
    settings: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    samples: str
    seconds: float
    execution: dict[str, Any] = Field(
        default_factory=dict,
        description="how the predictions were obtained: cache hits/misses, batch sizes, padding efficiency (optional)",
    )
    cluster_field: str | None = Field(
        default=None,
        description="the task's cluster field: each samples row then holds its 'cluster', and intervals resample clusters",
    )


class ModelEntry(_Record):
    name: str
    path: str
    kind: str
    fingerprint: str
    source: Literal["checkpoint", "predictions", "lm-eval"] = "checkpoint"
    architecture: str | None = None
    device: str | None = None
    dtype: str | None = None
    num_parameters: int | None = None
    revision: str | None = None
    notes: dict[str, Any] = Field(default_factory=dict)


class RunRecord(_Record):
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    created: str
    model: ModelEntry
    tasks: dict[str, TaskEntry]
    skipped: dict[str, str] = Field(default_factory=dict, description="task -> why it did not run")
    settings: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: undefined values are written as null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old content or all of the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def samples_path(run_dir: Path, task_name: str) -> Path:
    """``samples/glue/sst2.jsonl``; task names never leave the run directory."""
    relative = Path("samples", *task_name.split("/")).with_suffix(".jsonl")
    resolved = (run_dir / relative).resolve()
    if not resolved.is_relative_to(run_dir.resolve()):
        raise RecordError(f"task name '{task_name}' would write outside the run directory")
    return run_dir / relative


def write_samples(run_dir: Path, task_name: str, rows: Iterable[Mapping[str, Any]]) -> str:
    path = samples_path(run_dir, task_name)
    lines = (json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) for row in rows)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path.relative_to(run_dir).as_posix()


def write_record(run_dir: Path, record: RunRecord) -> Path:
    path = run_dir / RESULTS_FILE
    text = json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def _results_file(run: Path) -> Path:
    return run / RESULTS_FILE if run.is_dir() else run


def _reject_constant(name: str) -> Any:
    # Writers never emit NaN/Infinity (allow_nan=False): one here was typed in by hand.
    raise ValueError(f"{name} is not allowed in a run record (undefined values are written as null)")


def load_record(run: str | os.PathLike[str]) -> RunRecord:
    """Load and validate a run directory's ``results.json`` (or the file itself)."""
    path = _results_file(Path(run))
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except FileNotFoundError:
        raise RecordError(f"{path}: no run record here (expected {RESULTS_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc}); the file is truncated or corrupted") from None
    except ValueError as exc:  # NaN / Infinity
        raise RecordError(f"{path}: {exc}; the file was edited by hand or corrupted") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise RecordError(f"{path}: not an evalharness run record (no schema_version)")
    version = data["schema_version"]
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema_version {version!r} is not supported by this evalharness "
            f"(it reads version {SCHEMA_VERSION}); use a matching evalharness release"
        )
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        from evalharness.config import field_path

        problems = [f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise RecordError(f"{path}: invalid run record: " + "; ".join(problems[:5])) from None


def read_samples(run_dir: str | os.PathLike[str], task_name: str) -> list[dict[str, Any]]:
    """Per-example rows of one task, validated to be complete JSON lines."""
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    if task_name not in record.tasks:
        raise RecordError(f"{run_dir}: the run has no task '{task_name}'")
    path = run_dir / record.tasks[task_name].samples
    if not path.resolve().is_relative_to(run_dir.resolve()):
        raise RecordError(
            f"{run_dir / RESULTS_FILE}: tasks.{task_name}.samples '{record.tasks[task_name].samples}' "
            "points outside the run directory"
        )
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RecordError(f"{path}: samples file missing") from None
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise RecordError(f"{path}:{number}: corrupted samples line") from None
    expected = record.tasks[task_name].n_examples
    if len(rows) != expected:
        raise RecordError(f"{path}: {len(rows)} samples but the record says {expected}")
    return rows
