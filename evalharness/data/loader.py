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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.config import StrictModel, validate_model
from evalharness.data.readers import READERS, Reader, Row, read_files
from evalharness.errors import DataError, SpecError, did_you_mean
from evalharness.jsonvalues import JSONArray, JSONObject, JsonValue, float_of
from evalharness.spec.kinds import TASK_KINDS, FieldType
from evalharness.spec.loader import Task
from evalharness.spec.schema import DataSource, HubSource, LocalSource, is_task_relative
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


def check_local_source(task: Task, local: LocalSource, loc: Sequence[str | int]) -> tuple[Reader, StrictModel]:
    """The reader of a local source and its validated options: the static check that
    ``tasks validate`` and ``run`` share (``loc`` is the source's place, e.g. ``("data", "local")``)."""
    if local.format not in READERS:
        raise SpecError(
            f"{task.where(*loc, 'format')}: unknown format '{local.format}'"
            f"{did_you_mean(local.format, READERS)} (known: {', '.join(sorted(READERS))})"
        )
    reader = READERS[local.format]
    if len(local.files) < reader.min_files:
        raise SpecError(
            f"{task.where(*loc, 'files')}: format '{local.format}' needs at least {reader.min_files} files"
        )
    options = validate_model(reader.options, local.options, str(task.path), prefix=(*loc, "options"), lines=task.lines)
    return reader, options


def local_file(task: Task, name: str, data_dir: Path | None) -> Path | None:
    """Where a local data file is: beside the task file (``./``, ``../``), absolute, or under
    the data directory (None when none is given)."""
    if is_task_relative(name):
        return task.path.parent / name
    if Path(name).is_absolute():
        return Path(name)
    return data_dir / name if data_dir is not None else None


def _local_files(task: Task, local: LocalSource, data_dir: Path | None) -> list[Path] | None:
    """The source's files when every one of them exists."""
    paths = [local_file(task, name, data_dir) for name in local.files]
    return [p for p in paths if p is not None] if all(p is not None and p.is_file() for p in paths) else None


def _read_local(task: Task, local: LocalSource, paths: list[Path], loc: Sequence[str]) -> tuple[list[Row], str]:
    reader, options = check_local_source(task, local, loc)
    rows = read_files(paths, reader, options)
    return rows, ", ".join(str(path) for path in paths)


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
        paths = {name: local_file(task, name, data_dir) for name in source.local.files}
        unplaced = [name for name, path in paths.items() if path is None]
        if unplaced:
            lines.append(
                f"  local files {unplaced}: no data directory given "
                f"(pass --data-dir DIR or set {DATA_DIR_ENV})"
            )
        missing = {name: path for name, path in paths.items() if path is not None and not path.is_file()}
        under = [name for name, path in missing.items() if data_dir is not None and path == data_dir / name]
        if under:
            lines.append(f"  local files not found under {data_dir}: {', '.join(under)}")
        beside = [str(path) for name, path in missing.items() if name not in under]
        if beside:
            lines.append(f"  local files not found: {', '.join(beside)} (named beside the task file {task.path} or absolutely)")
    if source.hub is not None:
        lines.append(f"  hub: {hub_error}")
    else:
        lines.append("  no hub dataset is defined for this task")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Field:
    """What coercing one field of one example needs: the task, its label map, the error."""

    task: Task
    label_values: dict[str, str] | None
    name: str
    example_id: str

    def fail(self, problem: str) -> DataError:
        return DataError(f"{self.task.name}: example {self.example_id}: field '{self.name}' {problem}")


def _text(value: object, field: _Field) -> str:
    if isinstance(value, (list, dict)):
        raise field.fail(f"should be text, got {type(value).__name__}")
    return str(value)


def _number(value: object, field: _Field) -> float:
    """A finite number; a boolean is not one."""
    number = None if isinstance(value, bool) else float_of(value)
    if number is None:
        raise field.fail(f"should be a number, got {value!r}")
    if not math.isfinite(number):
        raise field.fail(f"should be a finite number, got {value!r}")
    return number


def _integer(value: object, field: _Field) -> int:
    number = _number(value, field)
    if number != int(number):  # 3.7 is not silently 3
        raise field.fail(f"should be an integer, got {value!r}")
    return int(number)


def _text_list(value: object, field: _Field) -> JSONArray:
    if not isinstance(value, str | list | tuple):  # list() of a mapping would be its keys
        raise field.fail(f"should be a list of texts, got {type(value).__name__}")
    items: list[object] = [value] if isinstance(value, str) else list(value)
    if any(item is None or isinstance(item, list | dict | tuple) for item in items):
        raise field.fail("should be a list of texts; an entry is missing (None) or not text")
    return [str(item) for item in items]


def _json(value: object, field: _Field) -> JsonValue:
    """A field kept as it is (``any``): a JSON value (an array read as a tuple is a list)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(item, field) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json(item, field) for key, item in value.items()}
    raise field.fail(f"should hold JSON values (text, numbers, lists, objects), found {type(value).__name__} {value!r}")


def _label(value: object, field: _Field) -> str:
    raw, mapping, labels = str(value), field.label_values, field.task.spec.labels or []
    label = mapping.get(raw, raw) if mapping else raw
    if mapping and raw not in mapping and raw not in labels:
        raise field.fail(f"has label value {raw!r}, not in data.label_values {sorted(mapping)}")
    if label not in labels:
        raise field.fail(f"has label {label!r}, not one of the task's labels {list(labels)}")
    return label


# Canonical field type -> how a raw value becomes it (spec/kinds.py).
_COERCE: dict[FieldType, Callable[[object, _Field], JsonValue]] = {
    "text": _text,
    "float": _number,
    "int": _integer,
    "text_list": _text_list,
    "label": _label,
    "any": _json,
}


def _coerce(value: object, kind: FieldType, field: _Field) -> JsonValue:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise field.fail("is missing (None/NaN)")
    return _COERCE[kind](value, field)


def _lookup(row: Row, column: str) -> tuple[bool, object]:
    """``(found, value)``; a dotted column ``a.b`` reads key ``b`` of the mapping in column
    ``a`` (hub SQuAD's nested ``answers.text``) unless a column is literally named ``a.b``."""
    if column in row:
        return True, row[column]
    value: object = row
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _columns(task: Task, rows: Sequence[Row], columns: dict[str, str], origin: str) -> dict[str, str]:
    """Canonical field -> column, decided from the spec and every row (never the first row
    alone: a column that only later rows have is still mapped, for every row)."""
    schema = TASK_KINDS[task.spec.kind]
    available = list(dict.fromkeys(key for row in rows for key in row))
    mapping: dict[str, str] = {}
    for field in [*schema.fields, "id"]:
        column = columns.get(field, field if field in available else None)
        if column is None:
            continue
        if column not in available and not any(_lookup(row, column)[0] for row in rows):
            raise DataError(
                f"{task.name}: column '{column}' (for field '{field}') not found in {origin}"
                f"{did_you_mean(column, available)}; columns are: {', '.join(sorted(map(str, available)))}"
            )
        mapping[field] = column
    absent = [field for field in schema.required if field not in mapping]
    if absent:
        raise DataError(
            f"{task.name}: {origin} provides no column for required field(s) {absent}; "
            f"map them under data.*.columns (columns are: {', '.join(sorted(map(str, available)))})"
        )
    return mapping


def _to_examples(
    task: Task, rows: Sequence[Row], columns: dict[str, str], origin: str, label_values: dict[str, str] | None
) -> list[Example]:
    """Every row through the same mapping: a row without a column that other rows have is an
    error naming it (an optional field may be explicitly empty or null; it is then absent)."""
    schema = TASK_KINDS[task.spec.kind]
    mapping = _columns(task, rows, columns, origin)
    examples: list[Example] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        values = {field: _lookup(row, column) for field, column in mapping.items()}
        has_id, raw_id = values.pop("id", (True, index))
        example_id = str(raw_id)
        lacking = [mapping[field] for field, (found, _) in values.items() if not found]
        lacking += [] if has_id else [mapping["id"]]
        if lacking:
            raise DataError(
                f"{task.name}: row {index + 1} of {origin}" + (f" (example {example_id})" if has_id else "")
                + f" has no column {', '.join(repr(column) for column in lacking)}, which other rows have; give every "
                "row every column (an empty value or null where an optional field does not apply)"
            )
        if raw_id is None or example_id.strip() == "":
            raise DataError(f"{task.name}: row {index + 1} of {origin} has an empty id (column '{mapping['id']}')")
        if example_id in seen:
            raise DataError(f"{task.name}: duplicate example id '{example_id}' in {origin}")
        seen.add(example_id)
        fields: JSONObject = {}
        for field, (_, value) in values.items():
            if field in schema.optional and (value in (None, "") or (isinstance(value, float) and math.isnan(value))):
                continue
            fields[field] = _coerce(value, schema.fields[field], _Field(task, label_values, field, example_id))
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
    paths = _local_files(task, local, data_dir) if local is not None else None
    if local is not None and paths is not None:
        rows, location = _read_local(task, local, paths, (*where.split("."), "local"))
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
    label_values = source.label_values if source.label_values is not None else task.spec.data.label_values
    examples = _to_examples(task, rows, columns, origin, label_values)
    n_available = len(examples)
    if limit is not None:
        examples = examples[:limit]
    return LoadedData(examples, fingerprint_examples(examples), kind, location, n_available)
