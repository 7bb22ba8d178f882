"""The noise floor of a run: how much its numbers move under changes that should not matter.

``evalharness noise RUN_DIR`` draws a seeded sample of each task's examples and reruns the
recorded checkpoint on it under each perturbation: other batch sizes (padding and batching
change the floating-point work), other run seeds (few-shot draws and any sampled decoding),
and another dtype where the device has one. It also re-scores the run's recorded statistics
with other bootstrap seeds (the spread of the interval bounds). Every rerun is fresh (its own
empty prediction cache) and is checked to have the same examples and golds.

The result is ``noise.json`` in the run directory (schema ``evalharness.noise/1``): per task
and metric the value on the sample under every setting, the spread (largest minus smallest),
the largest per-example change, the examples whose prediction changed, and the bootstrap
bounds' spread. ``floor`` is the spread of the value: a gate margin below it cannot tell a
regression from noise, and the gate says so. The run's own record is never modified.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from evalharness.errors import DataError, RecordError, UsageError
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.evaluation.settings import recorded_settings
from evalharness.jsonvalues import JSONObject, JsonValue, expect_int
from evalharness.records.record import (
    RunRecord,
    atomic_write_text,
    load_record,
    read_samples,
    samples_stats,
)
from evalharness.types import finite_or_none

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric

__all__ = ["NOISE_FILE", "NOISE_SCHEMA", "NoiseOptions", "measure_noise"]

NOISE_FILE = "noise.json"
NOISE_SCHEMA = "evalharness.noise/1"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class NoiseOptions:
    """Which perturbations to run, on how many examples per task."""

    sample: int = 200
    seed: int = 0  # of the sample
    batch_sizes: Sequence[int] = (1, 7)
    run_seeds: int = 1  # reruns with seeds seed+1 .. seed+run_seeds
    bootstrap_seeds: int = 5  # re-scorings of the recorded statistics with other bootstrap seeds
    dtypes: Sequence[str] | None = None  # None: another dtype on CUDA, none on CPU
    data_dir: str | None = None
    tasks_dirs: Sequence[str] = ()
    device: str | None = None  # default: the run's

    def __post_init__(self) -> None:
        if self.sample < 2:
            raise UsageError(f"--sample must be at least 2, got {self.sample}")
        if any(size < 1 for size in self.batch_sizes):
            raise UsageError(f"--batch-sizes must be positive integers, got {list(self.batch_sizes)}")
        if self.run_seeds < 0 or self.bootstrap_seeds < 0:
            raise UsageError("--run-seeds and --bootstrap-seeds must be at least 0")


def _base_config(record: RunRecord, options: NoiseOptions) -> RunConfig:
    settings = record.settings
    return RunConfig(**{
        **recorded_settings(settings),
        "model": record.model.path,
        "tasks": list(record.tasks),
        "data_dir": options.data_dir if options.data_dir is not None else settings.get("data_dir"),
        "tasks_dirs": list(options.tasks_dirs),
        "device": options.device or settings.get("device", "auto"),
        "fresh": True,
    })


def _perturbations(record: RunRecord, base: RunConfig, options: NoiseOptions) -> list[tuple[str, RunConfig]]:
    """(label, config) of every rerun; the dtype ones only where the device has another."""
    runs = [(f"batch_size={size}", base.updated(batch_size=size)) for size in options.batch_sizes]
    runs += [(f"seed={base.seed + k}", base.updated(seed=base.seed + k)) for k in range(1, options.run_seeds + 1)]
    dtypes = options.dtypes
    if dtypes is None:
        on_cuda = str(record.model.device or "").startswith("cuda")
        recorded = str(record.model.dtype or "")
        dtypes = (["bfloat16"] if "float32" in recorded else ["float32"]) if on_cuda else []
    runs += [(f"dtype={dtype}", base.updated(dtype=dtype)) for dtype in dtypes]
    return runs


Rows = Mapping[str, Mapping[str, JsonValue]]  # a task's samples rows by example id


def _sample(rows: Sequence[Mapping[str, JsonValue]], size: int, seed: int, task: str) -> list[str]:
    ids = [str(row["id"]) for row in rows]
    salt = sum(task.encode("utf-8"))
    chosen = np.random.default_rng([seed, salt]).choice(len(ids), size=min(size, len(ids)), replace=False)
    return [ids[i] for i in sorted(chosen)]


def _values(metric: Metric, rows: Rows, ids: Sequence[str], key: str) -> tuple[float, npt.NDArray[np.float64]]:
    stats = samples_stats([rows[i] for i in ids], key)
    entered = metric.entered(stats)
    value = float(metric.aggregate(stats[entered])) if entered.any() else float("nan")
    return value, metric.example_scores(stats)


def _bootstrap_spread(metric: Metric, stats: npt.NDArray[np.float64], seed: int, count: int, n_resamples: int) -> JSONObject | None:
    if count == 0:
        return None
    bounds = [metric.interval(stats, rng=np.random.default_rng(seed + k), n_resamples=n_resamples, confidence=0.95) for k in range(count + 1)]
    lows, highs = [b.low for b in bounds], [b.high for b in bounds]
    if not all(math.isfinite(v) for v in lows + highs):
        return {"seeds": count + 1, "low_spread": None, "high_spread": None, "method": bounds[0].method}
    return {"seeds": count + 1, "low_spread": max(lows) - min(lows), "high_spread": max(highs) - min(highs), "method": bounds[0].method}


def _spread(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) - min(finite) if len(finite) == len(values) and finite else None


def measure_noise(run_dir: str | Path, options: NoiseOptions, *, progress: Progress | None = None) -> JSONObject:
    """Rerun a sample of the run under every perturbation and write ``noise.json``."""
    from evalharness.metrics.registry import build_metric

    report = progress or (lambda message: None)
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    reference = {task: {str(row["id"]): row for row in read_samples(run_dir, task)} for task in record.tasks}
    samples = {task: _sample(list(rows.values()), options.sample, options.seed, task) for task, rows in reference.items()}
    base = _base_config(record, options)
    reruns: dict[str, dict[str, dict[str, JSONObject]]] = {}
    skipped = []
    if record.model.source != "checkpoint":
        skipped.append(f"the run's predictions came from {record.model.source}, not a checkpoint: no model to rerun")
        perturbations = []
    else:
        perturbations = _perturbations(record, base.updated(examples=samples), options)
        if not [label for label, _ in perturbations if label.startswith("dtype")]:
            skipped.append(f"dtype: the run was on {record.model.device or 'an unknown device'}; pass --dtypes to try another")
    with tempfile.TemporaryDirectory(prefix="evalharness-noise-") as workdir:
        for number, (label, config) in enumerate(perturbations):
            report(f"rerunning {sum(map(len, samples.values()))} examples with {label}")
            output = Path(workdir) / f"run{number}"
            config = config.updated(output=output, cache=Path(workdir) / f"cache{number}.sqlite")
            result = run_evaluation(config)
            reruns[label] = {task: {str(row["id"]): row for row in read_samples(output, task)} for task in result.record.tasks}
    tasks: JSONObject = {}
    seed = expect_int(record.settings.get("seed", 1234), f"{run_dir}: settings.seed", error=RecordError)
    for task, entry in record.tasks.items():
        ids = samples[task]
        metrics: JSONObject = {}
        for key, metric_entry in entry.metrics.items():
            metric = build_metric(metric_entry.metric, metric_entry.settings)
            value, scores = _values(metric, reference[task], ids, key)
            values: dict[str, float | None] = {"recorded": finite_or_none(value)}
            changed_examples: dict[str, int] = {}
            largest: dict[str, float | None] = {}
            for label, rows in reruns.items():
                _check_same_examples(task, label, reference[task], rows.get(task, {}), ids)
                other, other_scores = _values(metric, rows[task], ids, key)
                values[label] = finite_or_none(other)
                both = np.isfinite(scores) & np.isfinite(other_scores)
                largest[label] = float(np.max(np.abs(scores[both] - other_scores[both]))) if both.any() else None
                changed_examples[label] = sum(reference[task][i].get("prediction") != rows[task][i].get("prediction") for i in ids)
            stats = samples_stats(list(reference[task].values()), key)
            spread = _spread([v if v is not None else math.nan for v in values.values()])
            bootstrap = _bootstrap_spread(metric, stats, seed, options.bootstrap_seeds, base.statistics.n_resamples)
            metrics[key] = {
                "values": dict[str, JsonValue](values),
                "spread": spread,
                "max_example_change": dict[str, JsonValue](largest),
                "predictions_changed": dict[str, JsonValue](changed_examples),
                "bootstrap": bootstrap,
                "floor": spread,
            }
        tasks[task] = {"sample": len(ids), "of": len(reference[task]), "metrics": metrics}
    summary: JSONObject = {
        "schema": NOISE_SCHEMA,
        "run_id": record.run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sample": {"size": options.sample, "seed": options.seed},
        "perturbations": list[JsonValue]([label for label, _ in perturbations] + ([f"bootstrap seeds x{options.bootstrap_seeds + 1}"] if options.bootstrap_seeds else [])),
        "not_measured": list[JsonValue](skipped),
        "tasks": tasks,
    }
    atomic_write_text(run_dir / NOISE_FILE, json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return summary


def _check_same_examples(task: str, label: str, reference: Rows, rows: Rows, ids: Sequence[str]) -> None:
    """A rerun must have scored the same examples against the same golds."""
    missing = [i for i in ids if i not in rows]
    if missing:
        raise DataError(f"noise rerun {label}: task {task} lacks example '{missing[0]}'; the data changed since the run")
    differing = [i for i in ids if json.dumps(reference[i].get("gold"), sort_keys=True, default=str) != json.dumps(rows[i].get("gold"), sort_keys=True, default=str)]
    if differing:
        raise DataError(f"noise rerun {label}: task {task} example '{differing[0]}' has another gold answer than in the run; the data changed")
