"""Checks an Every Eval Ever export the way the ``every-eval-ever`` validator does.

The package (0.3.0) needs Python >= 3.12 and huggingface-hub < 2, so it cannot be a
dependency; its two JSON Schemas are read straight out of its wheel (or a folder holding
them) for :func:`schema_problems`, and :func:`check_export` repeats its repository rules:
strict JSON, the ``data/<collection>/<developer>/<model>/<uuid4>.json`` layout, the samples
companion named by ``detailed_evaluation_results`` (same folder and UUID, ``total_rows``
equal to its lines, every line carrying the aggregate's ``evaluation_id`` and model id),
bounds required for continuous scores, finite scores inside them, and the model's
deployment/availability details. We add: the checksum matches and every instance line
points at an aggregate result.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import NoReturn

from evalharness.errors import UsageError
from evalharness.jsonvalues import JSONArray, JSONObject, JsonValue, expect_object

__all__ = ["check_export", "load_schemas", "schema_problems", "strict_json"]

_UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_AGGREGATE = re.compile(rf"{_UUID4}\.json")
_SCHEMA_FILES = {"aggregate": "eval.schema.json", "instance": "instance_level_eval.schema.json"}


class _Strict(ValueError):
    pass


def _no_constant(name: str) -> NoReturn:
    raise _Strict(f"non-finite number {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, JsonValue]]) -> JSONObject:
    result: JSONObject = {}
    for key, value in pairs:
        if key in result:
            raise _Strict(f"duplicate key {key!r}")
        result[key] = value
    return result


def strict_json(text: str) -> JsonValue:
    """Standard JSON only: no NaN/Infinity, no duplicate keys (as the package requires)."""
    value: JsonValue = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    return value


def _object(value: JsonValue) -> JSONObject:
    """A field read for checking: an object, or empty when it is not one (what it then lacks is
    reported as missing; the JSON Schema check names its type)."""
    return value if isinstance(value, dict) else {}


def _array(value: JsonValue) -> JSONArray:
    return value if isinstance(value, list) else []


def _path_problems(relative: str) -> list[str]:
    parts = relative.split("/")
    if len(parts) != 5 or parts[0] != "data":
        return [f"'{relative}' is not data/<collection>/<developer>/<model>/<file>"]
    if not _AGGREGATE.fullmatch(parts[4]):
        return [f"file name '{parts[4]}' is not <uuid4>.json"]
    bad = [part for part in parts[1:4] if part in {"", ".", "..", "data"} or re.search(r'[<>:"\\|?*\x00-\x1f]', part)]
    return [f"path component {bad[0]!r} is not a portable folder name"] if bad else []


def _read_lines(path: Path) -> tuple[list[JSONObject], list[str]]:
    rows: list[JSONObject] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = strict_json(line)
        except (ValueError, _Strict) as exc:
            problems.append(f"{path.name}:{number}: invalid JSON ({exc})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path.name}:{number}: not a JSON object")
            continue
        rows.append(row)
    return rows, problems


def _companion_problems(root: Path, relative: str, data: JSONObject) -> list[str]:
    expected = (PurePosixPath(relative).parent / f"{PurePosixPath(relative).stem}_samples.jsonl").as_posix()
    if data.get("detailed_evaluation_results") is None:
        return [f"sibling samples file {expected} exists but detailed_evaluation_results is missing"] if (root / expected).exists() else []
    detail = _object(data.get("detailed_evaluation_results"))
    problems = []
    if detail.get("file_path") != expected:
        problems.append(f"detailed_evaluation_results.file_path is {detail.get('file_path')!r}, expected {expected!r}")
    if detail.get("format") != "jsonl":
        problems.append("detailed_evaluation_results.format must be 'jsonl'")
    path = root / expected
    if not path.is_file():
        return problems + [f"samples companion {expected} not found"]
    rows, problems_in_lines = _read_lines(path)
    problems += problems_in_lines
    if not rows:
        problems.append("samples companion has no rows")
    if detail.get("total_rows") is not None and detail["total_rows"] != len(rows):
        problems.append(f"total_rows says {detail['total_rows']}, the companion has {len(rows)}")
    if detail.get("checksum") and hashlib.sha256(path.read_bytes()).hexdigest() != detail["checksum"]:
        problems.append("checksum does not match the samples companion")
    model_id = _object(data.get("model_info")).get("id")
    result_ids = {_object(result).get("evaluation_result_id") for result in _array(data.get("evaluation_results"))}
    for index, row in enumerate(rows, start=1):
        if row.get("evaluation_id") != data.get("evaluation_id"):
            problems.append(f"samples line {index}: evaluation_id differs from the aggregate's")
        if row.get("model_id") != model_id:
            problems.append(f"samples line {index}: model_id differs from model_info.id")
        if row.get("evaluation_result_id") not in result_ids:
            problems.append(f"samples line {index}: evaluation_result_id {row.get('evaluation_result_id')!r} names no aggregate result")
        if len(problems) > 20:
            break
    return problems


def _bound(value: JsonValue) -> float | None:
    if value in ("Infinity", "-Infinity"):
        return math.inf if value == "Infinity" else -math.inf
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _score_problems(data: JSONObject) -> list[str]:
    problems = []
    for index, result in enumerate(_array(data.get("evaluation_results"))):
        config, details = _object(_object(result).get("metric_config")), _object(_object(result).get("score_details"))
        low, high = _bound(config.get("min_score")), _bound(config.get("max_score"))
        if config.get("score_type") == "continuous" and (low is None or high is None):
            problems.append(f"evaluation_results[{index}]: a continuous score needs min_score and max_score")
        score = details.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            problems.append(f"evaluation_results[{index}].score_details.score is not a finite number")
        elif low is not None and high is not None and not low <= score <= high:
            problems.append(f"evaluation_results[{index}]: score {score} is outside [{low}, {high}]")
    return problems


def _model_problems(relative: str, data: JSONObject) -> list[str]:
    info = _object(data.get("model_info"))
    details = _object(info.get("additional_details"))
    problems = []
    if details.get("deployment_type") not in {"self_deployed", "externally_managed", "unknown"}:
        problems.append("model_info.additional_details.deployment_type is missing or invalid")
    if details.get("model_availability") not in {"open_weights", "closed_weights", "unknown"}:
        problems.append("model_info.additional_details.model_availability is missing or invalid")
    model_id = str(info.get("id", ""))
    parts = model_id.split("/")
    developer, name = (parts[0], "_".join(parts[1:])) if len(parts) > 1 else (info.get("developer"), parts[0])
    folders = relative.split("/")[2:4]
    if [str(developer).replace(":", "_"), name.replace(":", "_")] != folders:
        problems.append(f"model_info.id {model_id!r} is filed under {'/'.join(folders)}")
    return problems


def check_export(root: Path, aggregate_path: Path) -> list[str]:
    """Every rule the package's repository validator applies to one aggregate and its samples."""
    relative = aggregate_path.relative_to(root).as_posix()
    try:
        data = strict_json(aggregate_path.read_text(encoding="utf-8"))
    except (ValueError, _Strict) as exc:
        return [f"{relative}: invalid JSON ({exc})"]
    if not isinstance(data, dict):
        return [f"{relative}: not a JSON object"]
    return _path_problems(relative) + _companion_problems(root, relative, data) + _score_problems(data) + _model_problems(relative, data)


def load_schemas(source: Path) -> dict[str, JSONObject]:
    """The aggregate and instance schemas from the package's wheel or a folder holding them."""
    texts: dict[str, str] = {}
    if source.is_dir():
        for kind, name in _SCHEMA_FILES.items():
            found = sorted(source.rglob(name))
            if found:
                texts[kind] = found[0].read_text(encoding="utf-8")
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            for kind, name in _SCHEMA_FILES.items():
                member = next((m for m in wheel.namelist() if m.endswith(f"/schemas/{name}")), None)
                if member:
                    texts[kind] = wheel.read(member).decode("utf-8")
    missing = [name for kind, name in _SCHEMA_FILES.items() if kind not in texts]
    if missing:
        raise UsageError(f"{source}: no {', '.join(missing)} here (give the every-eval-ever wheel or a folder with its schemas)")
    return {kind: expect_object(json.loads(text), f"{source}: {_SCHEMA_FILES[kind]}", error=UsageError)
            for kind, text in texts.items()}


def schema_problems(aggregate_path: Path, schemas: Mapping[str, Mapping[str, JsonValue]], samples_path: Path | None = None) -> list[str]:
    """JSON Schema (draft 7) errors of the aggregate and of each samples line."""
    try:
        from jsonschema import Draft7Validator
    except ImportError:
        raise UsageError("validating against the Every Eval Ever schemas needs the jsonschema package (pip install jsonschema)") from None
    problems = [f"{aggregate_path.name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                for e in Draft7Validator(schemas["aggregate"]).iter_errors(json.loads(aggregate_path.read_text(encoding="utf-8")))]
    if samples_path is not None:
        validator = Draft7Validator(schemas["instance"])
        for number, line in enumerate(samples_path.read_text(encoding="utf-8").split("\n"), start=1):
            if not line:
                continue
            problems += [f"{samples_path.name}:{number}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                         for e in validator.iter_errors(json.loads(line))]
            if len(problems) > 20:
                break
    return problems
