"""Run records: the versioned, validated files a run leaves behind.

A run directory holds ``results.json`` (this schema) and ``samples/<task>.<sha256>.jsonl``
(one line per example: id, input, prediction, gold, per-example scores and the metric
statistics that ``compare`` and ``rescore`` re-aggregate), named by the sha256 of its bytes.
Files are written atomically (temp file, fsync, rename), and samples never overwrite the ones
the current record names, so ``results.json`` and its samples are one unit: a crash leaves the
old pair or the new one (see :mod:`evalharness.records.store`). Readers reject unknown schema
versions and unknown fields instead of guessing (cf. inspect_ai's ``EvalLog``), numbers a
metric cannot produce (:mod:`evalharness.records.checks`) and samples whose bytes do not match
the hash their name promises.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NamedTuple, NoReturn, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from evalharness.errors import RecordError
from evalharness.jsonvalues import JSONObject, JsonValue, expect_object, optional_object
from evalharness.records.checks import record_problems
from evalharness.records.files import (
    atomic_write_text,
    samples_digest,
    samples_path,
    write_samples,
)
from evalharness.types import MetricResult

if TYPE_CHECKING:
    from evalharness.stats import FloatArray

__all__ = [
    "SCHEMA_VERSION",
    "DataEntry",
    "LoadedRun",
    "ModelEntry",
    "RESULTS_FILE",
    "RunRecord",
    "TaskEntry",
    "atomic_write_text",
    "load_record",
    "loaded_run",
    "parse_samples",
    "read_samples",
    "samples_path",
    "row_scores",
    "samples_stats",
    "write_record",
    "write_samples",
]

SCHEMA_VERSION: Literal[1] = 1
RESULTS_FILE = "results.json"


def _as_json(value: object) -> object:
    """What the record will hold once written: tuples as lists, paths as text, NaN and
    infinities as null (as ``model_dump(mode="json")`` writes them: JSON has no NaN); anything
    else is left for validation to refuse."""
    try:
        return to_jsonable_python(value, inf_nan_mode="null")
    except PydanticSerializationError:
        return value


# A free-form section of a record (settings, execution, notes, environment): JSON, held as it is written.
JsonSection: TypeAlias = Annotated[JSONObject, BeforeValidator(_as_json)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    metrics: dict[str, MetricResult]
    settings: JsonSection = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    samples: str
    seconds: float
    execution: JsonSection = Field(
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
    notes: JsonSection = Field(default_factory=dict)


class RunRecord(_Record):
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    created: str
    model: ModelEntry
    tasks: dict[str, TaskEntry]
    skipped: dict[str, str] = Field(default_factory=dict, description="task -> why it did not run")
    settings: JsonSection = Field(default_factory=dict)
    environment: JsonSection = Field(default_factory=dict)
    seconds: float = 0.0


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """Replace ``results.json`` atomically; a record its own loader would refuse is never written.

    Only :mod:`evalharness.records.store` writes into a run directory that may already hold
    a record (it merges under the record lock); this is its last step.
    """
    path = run_dir / RESULTS_FILE
    problems = record_problems(record)
    if problems:
        raise RecordError(f"{path}: refusing to write an implausible run record: " + "; ".join(problems[:5]))
    text = json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def _results_file(run: Path) -> Path:
    return run / RESULTS_FILE if run.is_dir() else run


def _reject_constant(name: str) -> NoReturn:
    # Writers never emit NaN/Infinity (allow_nan=False): one here was typed in by hand.
    raise ValueError(f"{name} is not allowed in a run record (undefined values are written as null)")


class LoadedRun(NamedTuple):
    """A run directory with its validated record, so one load serves several readers (the
    gate hands the runs it loaded to ``compare``)."""

    directory: Path
    record: RunRecord


def loaded_run(run: str | os.PathLike[str] | LoadedRun) -> LoadedRun:
    """``run`` as given when already loaded, else its directory loaded and validated."""
    return run if isinstance(run, LoadedRun) else LoadedRun(Path(run), load_record(run))


def load_record(run: str | os.PathLike[str]) -> RunRecord:
    """Load and validate a run directory's ``results.json`` (or the file itself)."""
    path = _results_file(Path(run))
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, parse_constant=_reject_constant)
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
        # strict: a number written as a string or a boolean was typed in by hand, not by a writer
        record = RunRecord.model_validate_json(text, strict=True)
    except ValidationError as exc:
        from evalharness.config import field_path

        problems = [f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise RecordError(f"{path}: invalid run record: " + "; ".join(problems[:5])) from None
    problems = record_problems(record)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RecordError(
            f"{path}: implausible run record: " + "; ".join(problems[:5]) + more
            + "; the file was edited by hand or corrupted"
        )
    return record


def _samples_file(run_dir: Path, record: RunRecord, task_name: str) -> Path:
    if task_name not in record.tasks:
        raise RecordError(f"{run_dir}: the run has no task '{task_name}'")
    relative = record.tasks[task_name].samples
    path = run_dir / relative
    if not path.resolve().is_relative_to(run_dir.resolve()):
        raise RecordError(f"{run_dir / RESULTS_FILE}: tasks.{task_name}.samples '{relative}' points outside the run directory")
    return path


def parse_samples(path: Path, data: bytes, expected: int, digest: str | None) -> list[JSONObject]:
    """The rows of a samples file's bytes: complete JSON lines, ``expected`` of them, matching
    ``digest`` (the sha256 in the file's name) when there is one."""
    try:
        # Only "\n" ends a row: str.splitlines() would also split inside a prediction that holds
        # U+2028, U+0085 or U+001C (JSON keeps them raw with ensure_ascii=False).
        lines = data.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
    except UnicodeDecodeError:
        raise RecordError(f"{path}: corrupted samples file (not UTF-8)") from None
    rows: list[JSONObject] = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise RecordError(f"{path}:{number}: corrupted samples line") from None
        rows.append(expect_object(row, f"{path}:{number}: samples line", error=RecordError))
    if len(rows) != expected:
        raise RecordError(f"{path}: {len(rows)} samples but the record says {expected}")
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise RecordError(
            f"{path}: the samples file does not match the sha256 its name records; it was modified "
            "after the run wrote it, so its predictions cannot be trusted (rerun or rescore the task)"
        )
    return rows


def read_samples(run_dir: str | os.PathLike[str], task_name: str, record: RunRecord | None = None) -> list[JSONObject]:
    """Per-example rows of one task, checked against the record (``record`` when the caller
    has loaded it): complete JSON lines, one per example, with the bytes the file's name promises."""
    run_dir = Path(run_dir)
    given = record is not None
    record = record if record is not None else load_record(run_dir)
    path = _samples_file(run_dir, record, task_name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if given:  # the caller's record and these samples would no longer be one run
            raise RecordError(f"{path}: samples file missing; was {run_dir} rewritten while it was read? Run the command again") from None
        # A writer may have replaced the record (and removed these samples) since it was read.
        record = load_record(run_dir)
        path = _samples_file(run_dir, record, task_name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecordError(f"{path}: samples file missing") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the samples file ({exc.strerror})") from None
    entry = record.tasks[task_name]
    return parse_samples(path, data, entry.n_examples, samples_digest(entry.samples))


def row_scores(row: Mapping[str, JsonValue], where: str) -> Mapping[str, JsonValue]:
    """A samples row's per-metric scores (none when it has none); ``scores`` that is not an
    object is refused naming ``where``."""
    return optional_object(row.get("scores"), f"{where}: scores", error=RecordError)


def samples_stats(rows: Sequence[Mapping[str, JsonValue]], key: str) -> FloatArray:
    """Metric ``key``'s per-example statistics of samples rows, one array row each (as scoring
    wrote them); a :class:`RecordError` naming the first row whose ones are missing, or when they
    are not numbers of one shape (text, booleans and nulls are refused, never converted)."""
    import numpy as np

    values: list[JsonValue] = []
    for row in rows:
        stats = row.get("stats")
        if not isinstance(stats, dict) or key not in stats:  # the message only on failure: a hot loop
            where = f"samples row '{row.get('id')}': stats"
            expect_object(stats, where, error=RecordError)
            raise RecordError(f"{where}: no per-example statistics for '{key}'")
        values.append(stats[key])
    if not values:
        return np.zeros((0, 0))
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise RecordError(f"samples: the per-example statistics for '{key}' are not numbers of one shape")
    numbers: FloatArray = array.astype(np.float64).reshape(len(values), -1)
    return numbers
