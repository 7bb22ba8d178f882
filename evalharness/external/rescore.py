"""``rescore``: recompute a run's metrics from its stored predictions, without the model.

After a metric is added to a task's YAML (or a metric's implementation is fixed), the run's
per-example predictions in ``samples/<task>.jsonl`` are scored again through the same
``scoring.score_task`` path as ``evalharness run``; the checkpoint is never loaded. The
task's data is read again for the references and must have the fingerprint the run
recorded, so a rescored number never mixes predictions with other references. The new
entries are written through the record store's locked update; a task that another writer
changed while it was being rescored is refused rather than overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalharness.data.loader import load_examples, resolve_data_dir
from evalharness.errors import DataError, RecordError
from evalharness.evaluation.scoring import score_task
from evalharness.jsonvalues import JsonValue, expect_int, expect_object, expect_str
from evalharness.metrics.registry import refuse_untrusted_code
from evalharness.records.record import (
    RESULTS_FILE,
    RunRecord,
    TaskEntry,
    load_record,
    read_samples,
)
from evalharness.records.store import update_record
from evalharness.spec.catalog import TaskCatalog
from evalharness.spec.predictions import parse_prediction
from evalharness.types import Decoded

__all__ = ["rescore_run"]


def _integer(run_dir: Path, name: str, value: JsonValue) -> int:
    """A run setting read as an integer (``seed``, ``n_resamples``, ``limit``)."""
    return expect_int(value, f"{run_dir / RESULTS_FILE}: settings.{name}", error=RecordError)


def _rescore_task(run_dir: Path, record: RunRecord, name: str, catalog: TaskCatalog, data_dir: Path | None) -> TaskEntry:
    entry = record.tasks[name]
    task = catalog.load(name)
    limit = record.settings.get("limit")
    data = load_examples(task, data_dir, limit=None if limit is None else _integer(run_dir, "limit", limit))
    if data.fingerprint != entry.data.fingerprint:
        raise DataError(
            f"{name}: the task's data ({data.location}) has fingerprint {data.fingerprint}, but the run "
            f"was scored on {entry.data.fingerprint}; rescoring would mix predictions with other references"
        )
    rows = read_samples(run_dir, name)
    ids = [example.id for example in data.examples]
    if [str(row.get("id")) for row in rows] != [str(i) for i in ids]:
        raise RecordError(f"{run_dir / entry.samples}: example ids do not match the task's data in order")
    path, kind, labels = run_dir / entry.samples, task.spec.kind, task.spec.labels or []
    counterfactual = task.spec.counterfactual is not None
    decoded = [
        Decoded(
            parse_prediction(kind, row["prediction"], f"{path}:{number}", labels=labels, fields=example.fields, counterfactual=counterfactual),
            row.get("input"),
            expect_object(row.get("details") or {}, f"{path}:{number}: details", error=RecordError),
        )
        for number, (row, example) in enumerate(zip(rows, data.examples, strict=True), start=1)
    ]
    rescored = score_task(
        task,
        data,
        decoded,
        run_dir=run_dir,
        formulation=entry.formulation,
        settings=entry.settings,
        notes=entry.notes,
        seed=_integer(run_dir, "seed", record.settings.get("seed", 1234)),
        n_resamples=_integer(run_dir, "n_resamples", record.settings.get("n_resamples", 1000)),
        seconds=entry.seconds,
    )
    return rescored.model_copy(update={"execution": {**entry.execution, "rescored_from": "samples"}})


def rescore_run(
    run_dir: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    tasks_dirs: Sequence[str | Path] = (),
    data_dir: str | Path | None = None,
    trust_task_code: bool = False,
) -> RunRecord:
    """Rescore ``tasks`` (default: all) of the run in ``run_dir`` and rewrite its record.

    Metrics that run code (an ``hf_evaluate`` module) need ``trust_task_code``, which is then
    recorded in the run's settings."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: no run directory here")
    record = load_record(run_dir)
    names = list(tasks) if tasks else list(record.tasks)
    unknown = [name for name in names if name not in record.tasks]
    if unknown:
        raise RecordError(f"{run_dir}: the run has no task {', '.join(unknown)} (it has: {', '.join(record.tasks)})")
    catalog = TaskCatalog(tasks_dirs)
    refuse_untrusted_code([catalog.load(name) for name in names], trusted=trust_task_code)
    recorded_data_dir = record.settings.get("data_dir")
    if data_dir is None and recorded_data_dir is not None:
        data_dir = expect_str(recorded_data_dir, f"{run_dir / RESULTS_FILE}: settings.data_dir", error=RecordError)
    data_root = resolve_data_dir(data_dir)
    updated = {name: _rescore_task(run_dir, record, name, catalog, data_root) for name in names}

    def change(current: RunRecord | None) -> RunRecord:
        moved = [name for name in names if current is None or current.tasks.get(name) != record.tasks[name]]
        if current is None or moved:
            raise RecordError(
                f"{run_dir}: task {', '.join(moved) or ', '.join(names)} changed while it was being rescored "
                "(another evalharness process wrote it); nothing was written, run rescore again"
            )
        settings = {**current.settings, "trust_task_code": True} if trust_task_code else current.settings
        return current.model_copy(update={"tasks": {**current.tasks, **updated}, "settings": settings})

    return update_record(run_dir, change).record
