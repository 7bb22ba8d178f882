"""Backend parity: do two runs of the same model on two backends agree, request by request?

Reads two run records of the same tasks and examples (``evalharness parity`` writes them,
one per backend) and reports, per task:

- the largest (and mean) absolute difference of the per-request log-probabilities the
  samples carry (each choice's log-likelihood, a text's rolling log-likelihood);
- flipped predictions: examples whose discrete prediction (a label, a chosen index, a
  generated text) differs between the backends; predictions that are numbers are compared
  through their log-probabilities only;
- every metric's difference with the paired test the metric declares
  (:func:`evalharness.comparison.compare.compare_runs`).

This is the evidence a team needs before moving from ``hf`` to a serving engine: zero flips
and float-noise log-probability differences mean the serving engine computes the same model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from evalharness.comparison.compare import (
    CompareSettings,
    IncomparableRunsError,
    compare_runs,
)
from evalharness.comparison.pairing import rows_by_id
from evalharness.errors import RecordError
from evalharness.jsonvalues import (
    JSONObject,
    JsonValue,
    expect_array,
    expect_object,
    expect_str,
    finite_number,
    optional_object,
)
from evalharness.records.record import (
    RESULTS_FILE,
    RunRecord,
    atomic_write_text,
    load_record,
    loaded_run,
    write_record,
)
from evalharness.types import finite_or_none

__all__ = ["PARITY_FILE", "PARITY_SCHEMA", "TaskParity", "backend_parity", "record_parity"]

PARITY_SCHEMA = "evalharness.parity/1"
PARITY_FILE = "parity.json"
SHOWN_FLIPS = 10


@dataclass(frozen=True)
class TaskParity:
    task: str
    n: int
    logprobs_compared: int  # per-request log-probabilities found in both runs' samples
    max_abs_logprob_diff: float | None  # None: the task's samples carry no log-probabilities
    mean_abs_logprob_diff: float | None
    discrete_predictions: int  # examples whose predictions are labels, indices or texts
    flips: int
    flip_rate: float | None  # None: no discrete predictions to compare
    flipped_ids: list[str] = field(default_factory=list)  # the first few
    metrics: list[JSONObject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _logprobs(row: Mapping[str, JsonValue], where: str) -> list[float]:
    """The per-request log-probabilities one sample row carries, in request order."""
    details = optional_object(row.get("details"), f"{where}: details", error=RecordError)
    values: list[JsonValue] = []
    for key in ("loglikelihoods", "pseudo_loglikelihoods"):
        found = details.get(key)
        values.extend([] if found is None else expect_array(found, f"{where}: details.{key}", error=RecordError))
    prediction = row.get("prediction")
    if isinstance(prediction, dict) and "logprob" in prediction:
        values.append(prediction["logprob"])
    numbers = [finite_number(value) for value in values]
    if None in numbers:
        raise RecordError(f"{where}: a log-probability is not a finite number")
    return [number for number in numbers if number is not None]


def _discrete(value: object) -> bool:
    """A prediction without floats (labels, indices, texts) can flip; numbers only drift."""
    if isinstance(value, float):
        return False
    if isinstance(value, Mapping):
        return all(_discrete(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_discrete(item) for item in value)
    return True


def _task_parity(task: str, dirs: tuple[Path, Path]) -> TaskParity:
    rows_a, rows_b = rows_by_id(dirs[0], task), rows_by_id(dirs[1], task)
    ids = [example for example in rows_a if example in rows_b]
    differences: list[float] = []
    discrete, flipped, notes = 0, [], []
    for example in ids:
        a, b = rows_a[example], rows_b[example]
        values_a = _logprobs(a, f"{dirs[0]}: task '{task}', example '{example}'")
        values_b = _logprobs(b, f"{dirs[1]}: task '{task}', example '{example}'")
        if len(values_a) != len(values_b):
            notes.append(f"example {example}: {len(values_a)} vs {len(values_b)} log-probabilities; not compared")
        else:
            differences.extend(abs(x - y) if math.isfinite(x) and math.isfinite(y) else (0.0 if x == y else math.inf) for x, y in zip(values_a, values_b))
        if _discrete(a["prediction"]) and _discrete(b["prediction"]):
            discrete += 1
            if a["prediction"] != b["prediction"]:
                flipped.append(example)
    return TaskParity(
        task=task,
        n=len(ids),
        logprobs_compared=len(differences),
        max_abs_logprob_diff=finite_or_none(max(differences)) if differences else None,
        mean_abs_logprob_diff=finite_or_none(math.fsum(differences) / len(differences)) if differences else None,
        discrete_predictions=discrete,
        flips=len(flipped),
        flip_rate=len(flipped) / discrete if discrete else None,
        flipped_ids=flipped[:SHOWN_FLIPS],
        notes=notes[:SHOWN_FLIPS] + ([f"{len(notes) - SHOWN_FLIPS} more such examples"] if len(notes) > SHOWN_FLIPS else []),
    )


def backend_parity(
    run_a: str | os.PathLike[str], run_b: str | os.PathLike[str], *, settings: CompareSettings | None = None
) -> JSONObject:
    """The parity report of run B against run A (``parity.json``'s content).

    Refuses (:class:`IncomparableRunsError`) runs that did not evaluate the same examples or
    answered a task with different formulations: their requests cannot be paired.
    """
    runs = (loaded_run(run_a), loaded_run(run_b))
    dirs, records = (runs[0].directory, runs[1].directory), (runs[0].record, runs[1].record)
    comparison = compare_runs(runs[0], runs[1], settings=settings)
    tasks: list[TaskParity] = []
    for summary in comparison.tasks:
        formulations = (records[0].tasks[summary.task].formulation, records[1].tasks[summary.task].formulation)
        if formulations[0] != formulations[1]:
            raise IncomparableRunsError(
                f"{summary.task}: run {dirs[0]} used the formulation {formulations[0]} and run {dirs[1]} used "
                f"{formulations[1]}; their requests cannot be paired"
            )
        parity = _task_parity(summary.task, dirs)
        metrics = [
            {key: value for key, value in row.items() if key in _METRIC_FIELDS}
            for row in comparison.metric_rows()
            if row["task"] == summary.task
        ]
        tasks.append(replace(parity, metrics=metrics))
    return {
        "schema": PARITY_SCHEMA,
        "reference": {"run": str(dirs[0]), "backend": _backend(dirs[0], records[0])},
        "checked": {"run": str(dirs[1]), "backend": _backend(dirs[1], records[1])},
        "summary": _summary(tasks),
        "tasks": [asdict(task) for task in tasks],
        "not_compared": [{**reason} for reason in comparison.not_compared],
        "settings": asdict(comparison.settings),
    }


_METRIC_FIELDS = ("metric", "value_a", "value_b", "difference", "ci", "p_value", "p_adjusted", "test", "verdict", "n")


def _backend(run_dir: Path, record: RunRecord) -> str:
    backend = expect_object(record.settings.get("backend") or {}, f"{run_dir / RESULTS_FILE}: settings.backend", error=RecordError)
    return str(backend.get("name", "hf"))


def _summary(tasks: list[TaskParity]) -> JSONObject:
    differences = [task.max_abs_logprob_diff for task in tasks if task.max_abs_logprob_diff is not None]
    discrete = sum(task.discrete_predictions for task in tasks)
    flips = sum(task.flips for task in tasks)
    unbounded = any(task.logprobs_compared and task.max_abs_logprob_diff is None for task in tasks)
    return {
        "tasks": len(tasks),
        "examples": sum(task.n for task in tasks),
        "max_abs_logprob_diff": None if unbounded or not differences else max(differences),
        "flips": flips,
        "flip_rate": flips / discrete if discrete else None,
        "significant_metric_differences": sum(
            1 for task in tasks for metric in task.metrics if metric["verdict"] in ("improved", "regressed")
        ),
    }


def record_parity(report: Mapping[str, JsonValue], output: Path) -> Path:
    """Write ``parity.json`` into ``output`` and each task's parity into the checked run's
    record (``tasks.<task>.execution.parity``), so the evidence travels with the run."""
    path = output / PARITY_FILE
    atomic_write_text(path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    checked = expect_object(report["checked"], "parity report: checked", error=RecordError)
    run_dir = Path(expect_str(checked["run"], "parity report: checked.run", error=RecordError))
    record = load_record(run_dir)
    by_task: dict[str, JSONObject] = {}
    for item in expect_array(report["tasks"], "parity report: tasks", error=RecordError):
        task = expect_object(item, "parity report: tasks", error=RecordError)
        by_task[str(task["task"])] = task
    tasks = {}
    for name, entry in record.tasks.items():
        if name in by_task:
            parity: JSONObject = {key: value for key, value in by_task[name].items() if key != "task"}
            parity["reference"] = report["reference"]
            entry = entry.model_copy(update={"execution": {**entry.execution, "parity": parity}})
        tasks[name] = entry
    write_record(run_dir, record.model_copy(update={"tasks": tasks}))
    return path
