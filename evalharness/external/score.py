"""Scoring outputs of systems that evalharness did not run: a prediction file -> metrics.

The file is read and aligned by :mod:`evalharness.external.predictions`, scored by the same
``scoring`` code as ``evalharness run``, and can be written as a run record
(``model.source = "predictions"``) so that published system outputs (WMT submissions, See et
al.'s summaries, SQuAD leaderboard predictions) sit in leaderboards, reports and ``compare``
next to evaluated checkpoints. One run directory holds one system: scoring the same system
on another task adds that task to the directory's record.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalharness.data.loader import LoadedData, load_examples, resolve_data_dir
from evalharness.errors import UsageError
from evalharness.evaluation.clusters import example_clusters
from evalharness.evaluation.scoring import gold_values, score_predictions, score_task
from evalharness.external.predictions import (
    Predictions,
    align_predictions,
    check_scorable,
    read_predictions,
)
from evalharness.records.environment import capture_environment
from evalharness.records.record import (
    RESULTS_FILE,
    MetricEntry,
    ModelEntry,
    RunRecord,
    load_record,
    write_record,
)
from evalharness.spec.catalog import TaskCatalog
from evalharness.spec.loader import Task

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
    metrics: dict[str, MetricEntry]
    run_dir: Path | None

    def to_json(self) -> dict[str, Any]:
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


def _prediction_note(predictions: Predictions) -> dict[str, Any]:
    return {
        "path": str(predictions.paths[0]),
        **({"no_answer_probs": str(predictions.paths[1])} if len(predictions.paths) > 1 else {}),
        "format": predictions.format,
        "fingerprint": predictions.fingerprint,
    }


def _combined_fingerprint(notes: dict[str, dict[str, Any]]) -> str:
    if len(notes) == 1:
        return next(iter(notes.values()))["fingerprint"]
    digest = hashlib.sha256()
    for task_name in sorted(notes):
        digest.update(f"{task_name}\0{notes[task_name]['fingerprint']}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]


def _existing_record(run_dir: Path, system: str) -> RunRecord | None:
    if not (run_dir / RESULTS_FILE).exists():
        return None
    record = load_record(run_dir)
    if record.model.source != "predictions" or record.model.name != system:
        raise UsageError(
            f"--run-dir {run_dir} already holds a run of '{record.model.name}' "
            f"({record.model.source}); use one run directory per system"
        )
    return record


def _write_run(run_dir: Path, config: ScoreConfig, result: ScoreResult, entry: Any, seconds: float) -> RunRecord:
    existing = _existing_record(run_dir, result.system)
    tasks = dict(existing.tasks) if existing else {}
    notes = dict(existing.model.notes.get("predictions", {})) if existing else {}
    tasks[result.task.name] = entry
    notes[result.task.name] = _prediction_note(result.predictions)
    paths = sorted({note["path"] for note in notes.values()})
    record = RunRecord(
        run_id=existing.run_id if existing else uuid.uuid4().hex[:12],
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=ModelEntry(
            name=result.system,
            path=paths[0] if len(paths) == 1 else ", ".join(paths),
            kind="external",
            fingerprint=_combined_fingerprint(notes),
            source="predictions",
            notes={"predictions": notes},
        ),
        tasks=tasks,
        skipped={name: why for name, why in (existing.skipped.items() if existing else []) if name not in tasks},
        settings={"seed": config.seed, "n_resamples": config.n_resamples, "data_dir": str(config.data_dir) if config.data_dir else None},
        environment=capture_environment(None),
        seconds=round((existing.seconds if existing else 0.0) + seconds, 3),
    )
    write_record(run_dir, record)
    return record


def score_file(config: ScoreConfig) -> ScoreResult:
    """Score one task's prediction file; with ``run_dir``, also write/extend its run record."""
    started = time.perf_counter()
    task = TaskCatalog(config.tasks_dirs).load(config.task)
    check_scorable(task)
    data = load_examples(task, resolve_data_dir(config.data_dir))
    predictions = read_predictions(config.predictions, task, format=config.format, no_answer_probs=config.no_answer_probs)
    decoded = align_predictions(predictions, task, data)
    if config.run_dir is None:
        entries, _, _ = score_predictions(
            task, [item.prediction for item in decoded], gold_values(task, data), seed=config.seed, n_resamples=config.n_resamples,
            clusters=example_clusters(task, data.examples),
        )
        return ScoreResult(task, data, predictions, config.system, entries, None)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    _existing_record(config.run_dir, config.system)  # refuse before spending time on scoring
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
    _write_run(config.run_dir, config, result, entry, time.perf_counter() - started)
    return result
