"""Per-task samples as Parquet: a "details" dataset ready to push to the Hub.

One folder per model. Each task is a dataset config holding one Parquet file per run
(``<task>/details_<split>.parquet``); the card's ``configs`` list every run as a split named
after its timestamp and run id, plus ``latest`` pointing at the newest run's file, the layout
lm-evaluation-harness's details datasets use. A manifest (``details_manifest.json``) keeps
what each file holds, so exporting more runs adds splits, exporting a run again replaces
its files, and a folder of another model (or not made by us) is refused rather than mixed.

Every file has the same schema (:data:`SCHEMA_VERSION`, fixed columns, in this order):
``run_id, created, model_name, model_fingerprint, model_source, task, task_version,
spec_hash, data_fingerprint, formulation`` (provenance, one value per file), ``example_index``
(int64), ``id``, ``input``, ``prediction``, ``gold`` (JSON text: ``json.loads`` gives the
record's value back, whatever its shape), ``scores`` (a struct of float64, one field per
metric key; null where a metric has no per-example score), ``stats`` (JSON text: the metric's
per-example sufficient statistics) and ``details`` (JSON text or null).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import (
    TypedDict,  # pydantic validates typing.TypedDict only from Python 3.12
)

from evalharness.errors import UsageError
from evalharness.jsonvalues import JsonValue, finite_number
from evalharness.publish.common import PublishError, file_names
from evalharness.records.record import (
    RunRecord,
    atomic_write_text,
    load_record,
    read_samples,
    row_scores,
)

__all__ = ["MANIFEST", "SCHEMA_VERSION", "DetailsResult", "details_schema", "export_details"]

SCHEMA_VERSION = "evalharness.details/1"
MANIFEST = "details_manifest.json"
_PROVENANCE = ["run_id", "created", "model_name", "model_fingerprint", "model_source", "task", "spec_hash",
               "data_fingerprint", "formulation"]


class _Field(Protocol):
    @property
    def name(self) -> str: ...


class _Schema(Protocol):
    """What is used of a ``pyarrow.Schema`` (pyarrow has no types)."""

    @property
    def metadata(self) -> dict[bytes, bytes] | None: ...

    def with_metadata(self, metadata: Mapping[bytes, bytes]) -> _Schema: ...

    def __iter__(self) -> Iterator[_Field]: ...


class _Table(Protocol):
    """What is used of a ``pyarrow.Table``."""

    @property
    def schema(self) -> _Schema: ...

    def equals(self, other: _Table) -> bool: ...


# A manifest keeps whatever else it holds (extra keys) when it is written back.
@with_config(ConfigDict(extra="allow"))
class _TaskFile(TypedDict):
    config: str
    path: str
    rows: int


@with_config(ConfigDict(extra="allow"))
class _Run(TypedDict):
    run_id: str
    created: str
    tasks: dict[str, _TaskFile]


@with_config(ConfigDict(extra="allow"))
class _Manifest(TypedDict):
    """``details_manifest.json``: what each file of the folder holds."""

    schema: str
    model_name: str
    model_fingerprint: str
    runs: dict[str, _Run]


_MANIFEST = TypeAdapter(_Manifest)


@dataclass(frozen=True)
class DetailsResult:
    output: Path
    split: str
    files: dict[str, Path]  # task -> Parquet file
    card: Path


def details_schema(metric_keys: Sequence[str]) -> _Schema:
    """The Parquet schema of one task's file (documented in the module docstring)."""
    import pyarrow as pa

    text = pa.string()
    fields = [pa.field(name, text, nullable=False) for name in _PROVENANCE[:6]]
    fields.insert(6, pa.field("task_version", pa.int64(), nullable=False))
    fields += [pa.field(name, text, nullable=False) for name in _PROVENANCE[6:]]
    fields += [
        pa.field("example_index", pa.int64(), nullable=False),
        pa.field("id", text, nullable=False),
        pa.field("input", text),
        pa.field("prediction", text),
        pa.field("gold", text),
        pa.field("scores", pa.struct([pa.field(key, pa.float64()) for key in metric_keys])),
        pa.field("stats", text),
        pa.field("details", text),
    ]
    schema: _Schema = pa.schema(fields, metadata={b"evalharness.schema": SCHEMA_VERSION.encode()})
    return schema


def split_name(record: RunRecord) -> str:
    """``2026_01_01T00_00_00_00_00_<run id>``: a valid Hub split name, unique per run."""
    return re.sub(r"[^\w]+", "_", f"{record.created}_{record.run_id}").strip("_")


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)


def _table(record: RunRecord, task_name: str, rows: Sequence[Mapping[str, JsonValue]]) -> _Table:
    import pyarrow as pa

    task = record.tasks[task_name]
    keys = list(task.metrics)
    provenance = {"run_id": record.run_id, "created": record.created, "model_name": record.model.name,
                  "model_fingerprint": record.model.fingerprint, "model_source": record.model.source, "task": task_name,
                  "task_version": task.version, "spec_hash": task.spec_hash, "data_fingerprint": task.data.fingerprint,
                  "formulation": task.formulation}
    columns: dict[str, list[object]] = {name: [value] * len(rows) for name, value in provenance.items()}
    columns["example_index"] = list(range(len(rows)))
    columns["id"] = [str(row.get("id")) for row in rows]
    for name in ("input", "prediction", "gold"):
        columns[name] = [_json(row.get(name)) for row in rows]
    columns["scores"] = [{key: finite_number(scores.get(key)) for key in keys}
                         for scores in (row_scores(row, f"{task_name} samples, row {index}") for index, row in enumerate(rows))]
    columns["stats"] = [_json(row.get("stats") or {}) for row in rows]
    columns["details"] = [_json(row["details"]) if row.get("details") is not None else None for row in rows]
    schema = details_schema(keys)
    metadata = {**(schema.metadata or {}), b"evalharness.metrics": _json({k: m.model_dump(mode="json") for k, m in task.metrics.items()}).encode()}
    table: _Table = pa.table({field.name: columns[field.name] for field in schema}, schema=schema.with_metadata(metadata))
    return table


def _write_parquet(path: Path, table: _Table) -> None:
    """Atomically, then read back: a file that does not round-trip is never left behind."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        pq.write_table(table, temp)
        back: _Table = pq.read_table(temp)
        if not back.equals(table) or back.schema.metadata != table.schema.metadata:
            raise PublishError(f"{path}: the Parquet file does not read back as written")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _manifest(output: Path, record: RunRecord) -> _Manifest:
    """The folder's manifest; refuses a folder that holds something else."""
    path = output / MANIFEST
    if not path.is_file():
        foreign = [p.name for p in output.iterdir()] if output.is_dir() else []
        if foreign:
            raise UsageError(
                f"--output {output}: the folder is not empty and holds no {MANIFEST} (not an evalharness details "
                f"dataset: {', '.join(sorted(foreign)[:5])}); give an empty folder or an earlier export's"
            )
        return {"schema": SCHEMA_VERSION, "model_name": record.model.name, "model_fingerprint": record.model.fingerprint, "runs": {}}
    text = path.read_text(encoding="utf-8")
    try:
        manifest = _MANIFEST.validate_json(text, strict=True)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the file"
        raise PublishError(f"{path}: {where}: {problem['msg']} (not as evalharness writes its manifest); "
                           "export into a new folder") from None
    if manifest["model_fingerprint"] != record.model.fingerprint:
        raise UsageError(
            f"--output {output} holds details of model '{manifest['model_name']}' ({manifest['model_fingerprint']}), not of "
            f"'{record.model.name}' ({record.model.fingerprint}); use one details folder per model"
        )
    return manifest


def _moment(created: str) -> str:
    """A sortable UTC form of an ISO timestamp (``latest`` is the newest run, whatever its offset)."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        return created
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()


def _card_text(manifest: _Manifest) -> str:
    """The dataset card: one config per task, a split per run and ``latest`` for the newest."""
    from huggingface_hub import DatasetCardData

    from evalharness.leaderboard.output import markdown_escape

    configs: dict[str, list[tuple[str, str, str]]] = {}
    for split, run in manifest["runs"].items():
        for task_name, info in run["tasks"].items():
            configs.setdefault(info["config"], []).append((_moment(run["created"]), split, info["path"]))
    config_list = []
    for config, runs in sorted(configs.items()):
        runs.sort()
        files = [{"split": split, "path": path} for _, split, path in runs]
        config_list.append({"config_name": config, "data_files": files + [{"split": "latest", "path": runs[-1][2]}]})
    data = DatasetCardData(pretty_name=f"evalharness details of {manifest['model_name']}", configs=config_list)
    name = markdown_escape(manifest["model_name"])
    body = (
        f"# Evaluation details of {name}\n\nPer-example predictions and scores written by evalharness "
        f"(model fingerprint {markdown_escape(manifest['model_fingerprint'])}). Each config is a task; each split a run "
        "(its timestamp and run id); `latest` is the newest run.\n\nSchema "
        f"`{SCHEMA_VERSION}`: provenance columns, then `example_index`, `id`, `input`, `prediction`, `gold` "
        "(JSON text), `scores` (float64 per metric), `stats` (JSON sufficient statistics), `details` (JSON).\n"
    )
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def export_details(run_dir: str | Path, output: str | Path) -> DetailsResult:
    """Write one Parquet file per task of the run and (re)write the card and manifest."""
    from huggingface_hub import DatasetCard

    record = load_record(run_dir)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: not a folder")
    manifest = _manifest(output, record)
    split = split_name(record)
    earlier = {task: info["config"] for run in manifest["runs"].values() for task, info in run["tasks"].items()}
    fresh = file_names(record.tasks)
    stems = {**earlier, **{task: earlier.get(task, fresh[task]) for task in record.tasks}}
    if len(set(stems.values())) != len(stems):
        raise PublishError(f"{output}: two tasks would share one config name; export into a new folder")
    files: dict[str, Path] = {}
    tasks: dict[str, _TaskFile] = {}
    for task_name in record.tasks:
        rows = read_samples(run_dir, task_name)
        path = output / stems[task_name] / f"details_{split}.parquet"
        _write_parquet(path, _table(record, task_name, rows))
        files[task_name] = path
        tasks[task_name] = {"config": stems[task_name], "path": path.relative_to(output).as_posix(), "rows": len(rows)}
    manifest["runs"][split] = {"run_id": record.run_id, "created": record.created, "tasks": tasks}
    atomic_write_text(output / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    card = output / "README.md"
    atomic_write_text(card, _card_text(manifest))
    DatasetCard.load(card)  # huggingface_hub parses the header it will validate on upload
    return DetailsResult(output, split, files, card)
