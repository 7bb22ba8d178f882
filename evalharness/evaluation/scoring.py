"""From predictions to a scored task entry and samples file: metrics → run record.

Shared by ``evalharness run`` (predictions from a model) and ``evalharness score``
(predictions from a file), so both produce identical records. Knows metrics and records,
never models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from evalharness.data.loader import LoadedData
from evalharness.evaluation.clusters import clustered_result, example_clusters
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import MetricInput
from evalharness.metrics.registry import build_metric
from evalharness.records.record import DataEntry, TaskEntry, write_samples
from evalharness.spec.kinds import TASK_KINDS
from evalharness.spec.loader import Task
from evalharness.types import PREDICTION_TYPES, Decoded, MetricResult, finite_or_none

__all__ = ["gold_values", "score_predictions", "score_task"]


def gold_values(task: Task, data: LoadedData) -> list[JsonValue]:
    """The field each example is scored against, per the task kind."""
    gold_field = TASK_KINDS[task.spec.kind].gold
    return [example.fields.get(gold_field) if gold_field else None for example in data.examples]


def score_predictions(
    task: Task,
    predictions: Sequence[MetricInput],
    golds: Sequence[JsonValue],
    *,
    seed: int,
    n_resamples: int,
    clusters: Sequence[str] | None = None,
) -> tuple[dict[str, MetricResult], dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]]:
    """Every metric of the task: results, per-example statistics and per-example scores.

    Each metric gets a fresh generator from ``seed`` so its interval does not depend on
    which other metrics the task lists. With ``clusters`` (one source id per example, see
    :mod:`evalharness.evaluation.clusters`) intervals resample whole clusters.
    """
    entries: dict[str, MetricResult] = {}
    stats: dict[str, npt.NDArray[np.float64]] = {}
    scores: dict[str, npt.NDArray[np.float64]] = {}
    for metric_spec in task.spec.metrics:
        metric = build_metric(metric_spec.name, metric_spec.settings)
        metric.check_inputs(predictions, golds)
        values = metric.values(predictions)
        metric_stats = np.asarray(metric.example_stats(values, golds), dtype=np.float64)
        groups = metric.example_groups(values, golds)
        result = metric.result(metric_stats, rng=np.random.default_rng(seed), n_resamples=n_resamples, groups=groups, seed=seed)
        if clusters is not None:
            result = clustered_result(metric, result, metric_stats, clusters, field=str(task.spec.cluster_field),
                                      seed=seed, n_resamples=n_resamples, groups=groups)
        key = metric_spec.result_key
        entries[key] = result
        stats[key] = metric_stats
        scores[key] = metric.example_scores(metric_stats)
    return entries, stats, scores


def score_task(
    task: Task,
    data: LoadedData,
    decoded: Sequence[Decoded],
    *,
    run_dir: Path,
    formulation: str,
    seed: int,
    n_resamples: int,
    seconds: float,
    settings: Mapping[str, object] | None = None,
    notes: Sequence[str] = (),
) -> TaskEntry:
    """Score one task's predictions, write its samples file and return its record entry."""
    golds = gold_values(task, data)
    predictions = [item.prediction for item in decoded]
    clusters = example_clusters(task, data.examples)
    entries, stats, scores = score_predictions(task, predictions, golds, seed=seed, n_resamples=n_resamples, clusters=clusters)
    rows = []
    for index, (example, item) in enumerate(zip(data.examples, decoded, strict=True)):
        rows.append(
            {
                "id": example.id,
                "input": item.input,
                "prediction": item.prediction.to_json() if isinstance(item.prediction, PREDICTION_TYPES) else item.prediction,
                "gold": golds[index],
                "scores": {name: finite_or_none(float(values[index])) for name, values in scores.items()},
                "stats": {name: values[index].tolist() for name, values in stats.items()},
                **({"cluster": clusters[index]} if clusters is not None else {}),
                **({"details": dict(item.extra)} if item.extra else {}),
            }
        )
    return TaskEntry(
        version=task.version,
        kind=task.spec.kind,
        spec_hash=task.spec_hash,
        formulation=formulation,
        n_examples=len(data.examples),
        data=DataEntry(
            source=data.source, location=data.location, fingerprint=data.fingerprint, n_available=data.n_available
        ),
        metrics=entries,
        settings=dict(settings or {}),
        notes=list(notes),
        samples=write_samples(run_dir, task.name, rows),
        seconds=round(seconds, 3),
        cluster_field=task.spec.cluster_field,
    )
