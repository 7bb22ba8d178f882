"""From a task's data source to validated Examples with a fingerprint.

Local files under the data directory are preferred (they work offline and are what the
user pointed at); otherwise the hub dataset is loaded with ``datasets.load_dataset``. When
neither works, the error says which files and which hub id were tried and how to provide
them. Values are coerced to the task kind's canonical types here, once, so a label outside
the label set or a missing reference is caught before any model runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalharness.config import validate_model
from evalharness.data.readers import READERS, read_files
from evalharness.errors import DataError, SpecError, did_you_mean
from evalharness.spec.kinds import TASK_KINDS, FieldType
from evalharness.spec.loader import Task
from evalharness.spec.schema import DataSource, HubSource, LocalSource
from evalharness.types import Example

__all__ = [
    "DATA_DIR_ENV",
    "LoadedData",
    "check_local_source",
    "fingerprint_examples",
    "load_examples",
    "resolve_data_dir",
]

DATA_DIR_ENV = "EVALHARNESS_DATA_DIR"
Row = dict[str, Any]


@dataclass(frozen=True)
class LoadedData:
    """Examples of one split and where they came from."""

    examples: list[Example]
    fingerprint: str
    source: str  # "local" or "hub"
    location: str  # the files or the hub id that were read
    n_available: int  # before --limit


def resolve_data_dir(explicit: str | os.PathLike[str] | None) -> Path | None:
    """``--data-dir`` if given, else ``$EVALHARNESS_DATA_DIR``, else None."""
    value = explicit if explicit is not None else os.environ.get(DATA_DIR_ENV)
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory '{path}' does not exist")
    return path


def fingerprint_examples(examples: Sequence[Example]) -> str:
    """Hash of the ids and canonical fields, in order: equal data hashes equally."""
    digest = hashlib.sha256()
    for example in examples:
        line = json.dumps([example.id, example.fields], sort_keys=True, ensure_ascii=False, default=str)
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()[:16]


def check_local_source(local: LocalSource, where: str) -> None:
    """Validate the reader name and its options (used by ``tasks validate`` too)."""
    if local.format not in READERS:
        raise SpecError(
            f"{where}.format: unknown format '{local.format}'"
            f"{did_you_mean(local.format, READERS)} (known: {', '.join(sorted(READERS))})"
        )


def _reader_options(local: LocalSource, task: Task, where: str):
    check_local_source(local, f"{task.path}: {where}")
    reader = READERS[local.format]
    options = validate_model(reader.options, local.options, str(task.path), prefix=(*where.split("."), "options"))
    return reader, options


def _read_local(task: Task, local: LocalSource, data_dir: Path, where: str) -> tuple[list[Row], str]:
    reader, options = _reader_options(local, task, where)
    rows = read_files([data_dir / name for name in local.files], reader, options)
    return rows, ", ".join(str(data_dir / name) for name in local.files)


def _read_hub(hub: HubSource) -> tuple[list[Row], str]:
    location = hub.path + (f" ({hub.name})" if hub.name else "") + f" split={hub.split}"
    if hub.revision:
        location += f" revision={hub.revision}"
    try:
        import datasets

        # A hub dataset with a loading script would run that script (datasets < 3 by default):
        # task files never run code. datasets >= 4 runs no scripts and ignores a False here.
        dataset = datasets.load_dataset(hub.path, hub.name, split=hub.split, revision=hub.revision, trust_remote_code=False)
    except Exception as exc:  # network, missing config, offline mode: all user-fixable
        raise DataError(f"could not load hub dataset {location}: {type(exc).__name__}: {exc}") from None
    return [dict(row) for row in dataset], location


def _missing_data_message(task: Task, source: DataSource, data_dir: Path | None, hub_error: str | None) -> str:
    lines = [f"{task.name}: evaluation data not found."]
    if source.local is not None:
        if data_dir is None:
            lines.append(
                f"  local files {source.local.files}: no data directory given "
                f"(pass --data-dir DIR or set {DATA_DIR_ENV})"
            )
        else:
            missing = [name for name in source.local.files if not (data_dir / name).is_file()]
            lines.append(f"  local files not found under {data_dir}: {', '.join(missing)}")
    if source.hub is not None:
        lines.append(f"  hub: {hub_error}")
    else:
        lines.append("  no hub dataset is defined for this task")
    return "\n".join(lines)


def _coerce(value: Any, kind: FieldType, *, field: str, example_id: str, task: Task) -> Any:
    def fail(problem: str) -> DataError:
        return DataError(f"{task.name}: example {example_id}: field '{field}' {problem}")

    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise fail("is missing (None/NaN)")
    if kind == "text":
        if isinstance(value, (list, dict)):
            raise fail(f"should be text, got {type(value).__name__}")
        return str(value)
    if kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise fail(f"should be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise fail(f"should be a finite number, got {value!r}")
        return number
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise fail(f"should be an integer, got {value!r}") from None
    if kind == "text_list":
        items = [value] if isinstance(value, str) else list(value)
        if any(item is None for item in items):
            raise fail("contains a missing (None) entry")
        return [str(item) for item in items]
    if kind == "label":
        raw = str(value)
        mapping = task.spec.data.label_values
        label = mapping.get(raw, raw) if mapping else raw
        if mapping and raw not in mapping and raw not in (task.spec.labels or []):
            raise fail(f"has label value {raw!r}, not in data.label_values {sorted(mapping)}")
        if label not in (task.spec.labels or []):
            raise fail(f"has label {label!r}, not one of the task's labels {task.spec.labels}")
        return label
    return value


def _lookup(row: Row, column: str) -> tuple[bool, Any]:
    """``(found, value)``; a dotted column ``a.b`` reads key ``b`` of the mapping in column
    ``a`` (hub SQuAD's nested ``answers.text``) unless a column is literally named ``a.b``."""
    if column in row:
        return True, row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _to_examples(task: Task, rows: list[Row], columns: dict[str, str], origin: str) -> list[Example]:
    schema = TASK_KINDS[task.spec.kind]
    available = set(rows[0]) if rows else set()
    mapping: dict[str, str] = {}
    for field in [*schema.fields, "id", *columns]:
        column = columns.get(field, field if field in available else None)
        if column is None:
            continue
        if column not in available and not (rows and _lookup(rows[0], column)[0]):
            raise DataError(
                f"{task.name}: column '{column}' (for field '{field}') not found in {origin}"
                f"{did_you_mean(column, available)}; columns are: {', '.join(sorted(available))}"
            )
        mapping[field] = column
    absent = [field for field in schema.required if field not in mapping]
    if absent:
        raise DataError(
            f"{task.name}: {origin} provides no column for required field(s) {absent}; "
            f"map them under data.*.columns (columns are: {', '.join(sorted(available))})"
        )
    field_types = {**schema.fields}
    examples: list[Example] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        example_id = str(_lookup(row, mapping["id"])[1]) if "id" in mapping else str(index)
        if example_id in seen:
            raise DataError(f"{task.name}: duplicate example id '{example_id}' in {origin}")
        seen.add(example_id)
        fields = {}
        for field, column in mapping.items():
            if field == "id":
                continue
            value = _lookup(row, column)[1]
            if field in schema.optional and value in (None, ""):
                continue
            fields[field] = _coerce(
                value, field_types.get(field, "any"), field=field, example_id=example_id, task=task
            )
        examples.append(Example(id=example_id, fields=fields))
    return examples


def load_examples(
    task: Task,
    data_dir: Path | None,
    *,
    limit: int | None = None,
    source: DataSource | None = None,
    where: str = "data",
) -> LoadedData:
    """Load the task's evaluation split (or another ``source``, e.g. a few-shot pool)."""
    source = source or task.spec.data
    hub_error: str | None = None
    local = source.local
    if local is not None and data_dir is not None and all((data_dir / f).is_file() for f in local.files):
        rows, location = _read_local(task, local, data_dir, f"{where}.local")
        origin, columns, kind = location, local.columns, "local"
    elif source.hub is not None:
        try:
            rows, location = _read_hub(source.hub)
        except DataError as exc:
            hub_error = str(exc)
            raise DataError(_missing_data_message(task, source, data_dir, hub_error)) from None
        origin, columns, kind = f"hub dataset {location}", source.hub.columns, "hub"
    else:
        raise DataError(_missing_data_message(task, source, data_dir, None))
    if not rows:
        raise DataError(f"{task.name}: {origin} contains no examples")
    examples = _to_examples(task, rows, columns, origin)
    n_available = len(examples)
    if limit is not None:
        examples = examples[:limit]
    return LoadedData(examples, fingerprint_examples(examples), kind, location, n_available)
