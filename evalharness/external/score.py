"""Scoring outputs of systems that evalharness did not run: a prediction file -> metrics.

The file is read and aligned by :mod:`evalharness.external.predictions`, scored by the same
``scoring`` code as ``evalharness run``, and can be written as a run record
(``model.source = "predictions"``) so that published system outputs (WMT submissions, See et
al.'s summaries, SQuAD leaderboard predictions) sit in leaderboards, reports and ``compare``
next to evaluated checkpoints. One run directory holds one system: scoring the same system
on another task adds that task to the directory's record, through the same locked merge as
``evalharness run`` (:mod:`evalharness.records.store`), so several ``score --run-dir``
processes on one directory lose none of each other's tasks.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from evalharness.data.loader import LoadedData, load_examples, resolve_data_dir
from evalharness.errors import RecordError
from evalharness.evaluation.clusters import example_clusters
from evalharness.evaluation.scoring import gold_values, score_predictions, score_task
from evalharness.external.predictions import (
    Predictions,
    align_predictions,
    check_scorable,
    read_predictions,
)
from evalharness.jsonvalues import JSONObject, expect_object, expect_str
from evalharness.metrics.registry import refuse_untrusted_code
from evalharness.records.environment import capture_environment
from evalharness.records.record import RESULTS_FILE, ModelEntry, RunRecord, TaskEntry
from evalharness.records.store import (
    Commit,
    check_mergeable,
    merge_records,
    prepare_run_dir,
    update_record,
)
from evalharness.seeds import check_seed
from evalharness.spec.catalog import TaskCatalog
from evalharness.spec.loader import Task
from evalharness.types import MetricResult

__all__ = ["ScoreConfig", "ScoreResult", "score_file"]


@dataclass(frozen=True)
class ScoreConfig:
    """Everything ``evalharness score`` was asked to do."""

    task: str
    predictions: Path
    no_answer_probs: Path | None = None
    format: str | None = None
    data_dir: Path | str | None = None
    tasks_dirs: Sequence[Path | str] = ()
    run_dir: Path | None = None
    name: str | None = None
    seed: int = 1234
    n_resamples: int = 1000
    trust_task_code: bool = False  # let the task's metrics run code (an hf_evaluate module)

    @property
    def system(self) -> str:
        """``--name``, else the predictions file's name without extensions."""
        if self.name:
            return self.name
        stem = self.predictions.name
        for suffix in (".tar.gz", ".tgz", ".jsonl", ".json", ".txt"):
            stem = stem.removesuffix(suffix)
        return stem or str(self.predictions)


@dataclass(frozen=True)
class ScoreResult:
    task: Task
    data: LoadedData
    predictions: Predictions
    system: str
    metrics: dict[str, MetricResult]
    run_dir: Path | None
    commit: Commit | None = None  # with run_dir: which tasks the record gained, replaced or kept

    def to_json(self) -> JSONObject:
        """What ``evalharness score`` prints: every metric with value, CI, signature and n."""
        return {
            "task": self.task.name,
            "task_version": self.task.version,
            "spec_hash": self.task.spec_hash,
            "system": self.system,
            "n": len(self.data.examples),
            "predictions": _prediction_note(self.predictions),
            "data": {"source": self.data.source, "location": self.data.location, "fingerprint": self.data.fingerprint},
            "metrics": {key: entry.model_dump(mode="json") for key, entry in self.metrics.items()},
            "run_dir": str(self.run_dir) if self.run_dir else None,
        }


def _prediction_note(predictions: Predictions) -> JSONObject:
    return {
        "path": str(predictions.paths[0]),
        **({"no_answer_probs": str(predictions.paths[1])} if len(predictions.paths) > 1 else {}),
        "format": predictions.format,
        "fingerprint": predictions.fingerprint,
    }


def _existing_notes(run_dir: Path | None, existing: RunRecord | None) -> dict[str, JSONObject]:
    """The prediction notes (task -> path, format, fingerprint) of the tasks already in the
    directory's record of this kind of system; a damaged one is refused naming its field."""
    if existing is None or existing.model.source != "predictions":
        return {}
    where = f"{run_dir / RESULTS_FILE if run_dir else RESULTS_FILE}: model.notes.predictions"
    notes = {}
    for task, value in expect_object(existing.model.notes.get("predictions", {}), where, error=RecordError).items():
        note = expect_object(value, f"{where}.{task}", error=RecordError)
        for key in ("path", "fingerprint"):
            expect_str(note.get(key), f"{where}.{task}.{key}", error=RecordError)
        notes[task] = note
    return notes


def _combined_fingerprint(notes: Mapping[str, JSONObject]) -> str:
    if len(notes) == 1:
        return str(next(iter(notes.values()))["fingerprint"])
    digest = hashlib.sha256()
    for task_name in sorted(notes):
        digest.update(f"{task_name}\0{notes[task_name]['fingerprint']}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]


def _settings(config: ScoreConfig) -> JSONObject:
    return {
        "seed": config.seed,
        "n_resamples": config.n_resamples,
        "data_dir": str(config.data_dir) if config.data_dir else None,
        **({"trust_task_code": True} if config.trust_task_code else {}),
    }


def _system(name: str, notes: Mapping[str, JSONObject]) -> ModelEntry:
    paths = sorted({str(note["path"]) for note in notes.values()})  # text: _existing_notes checks
    return ModelEntry(
        name=name,
        path=paths[0] if len(paths) == 1 else ", ".join(paths),
        kind="external",
        fingerprint=_combined_fingerprint(notes),
        source="predictions",
        notes={"predictions": {**notes}},
    )


def _record(config: ScoreConfig, result: ScoreResult, entry: TaskEntry, seconds: float, existing: RunRecord | None) -> RunRecord:
    """This task's record, with the prediction notes of the tasks already in the directory."""
    notes = _existing_notes(config.run_dir, existing)
    notes[result.task.name] = _prediction_note(result.predictions)
    return RunRecord(
        run_id=uuid.uuid4().hex[:12],
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=_system(result.system, notes),
        tasks={result.task.name: entry},
        settings=_settings(config),
        environment=capture_environment(None),
        seconds=round(seconds, 3),
    )


def _write_run(run_dir: Path, config: ScoreConfig, result: ScoreResult, entry: TaskEntry, seconds: float) -> Commit:
    return update_record(run_dir, lambda existing: merge_records(run_dir, existing, _record(config, result, entry, seconds, existing)))


def score_file(config: ScoreConfig) -> ScoreResult:
    """Score one task's prediction file; with ``run_dir``, also write/extend its run record."""
    started = time.perf_counter()
    check_seed(config.seed)
    task = TaskCatalog(config.tasks_dirs).load(config.task)
    check_scorable(task)
    refuse_untrusted_code([task], trusted=config.trust_task_code)
    data = load_examples(task, resolve_data_dir(config.data_dir))
    predictions = read_predictions(config.predictions, task, format=config.format, no_answer_probs=config.no_answer_probs)
    decoded = align_predictions(predictions, task, data)
    if config.run_dir is None:
        entries, _, _ = score_predictions(
            task, [item.prediction for item in decoded], gold_values(task, data), seed=config.seed, n_resamples=config.n_resamples,
            clusters=example_clusters(task, data.examples),
        )
        return ScoreResult(task, data, predictions, config.system, entries, None)
    # refuse before spending time on scoring: an unwritable directory, another system, other settings
    prepare_run_dir(config.run_dir)
    check_mergeable(config.run_dir, _system(config.system, {}), _settings(config), [task.name])
    entry = score_task(
        task,
        data,
        decoded,
        run_dir=config.run_dir,
        formulation=f"predictions:{predictions.format}",
        seed=config.seed,
        n_resamples=config.n_resamples,
        seconds=time.perf_counter() - started,
        settings={"predictions": _prediction_note(predictions), "seed": config.seed, "n_resamples": config.n_resamples},
    )
    result = ScoreResult(task, data, predictions, config.system, dict(entry.metrics), config.run_dir)
    commit = _write_run(config.run_dir, config, result, entry, time.perf_counter() - started)
    return replace(result, commit=commit)
