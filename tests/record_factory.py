"""Hand-built run records for exact leaderboard and report checks.

Records are written with the real ``records`` module (``write_record``/``write_samples``),
so they go through the same validation when read back as records made by ``evalharness run``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalharness.errors import RecordError
from evalharness.records.record import (
    DataEntry,
    ModelEntry,
    RunRecord,
    TaskEntry,
    write_record,
    write_samples,
)
from evalharness.types import GroupResult, MetricResult

SIGNATURE = "{name}|impl:test|evalharness:0.1.0"


def metric(
    value: float | None,
    *,
    ci: tuple[float | None, float | None] | None = None,
    stderr: float | None = None,
    name: str = "accuracy",
    n: int = 100,
    higher: bool = True,
    ideal: float | None = None,
    signature: str | None = None,
    groups: Mapping[str, tuple[float, float, float, int]] | None = None,
) -> MetricResult:
    """A metric entry; ``ci`` defaults to value ± 1, ``stderr`` to 0.5."""
    if ci is None:
        ci = (None, None) if value is None else (value - 1.0, value + 1.0)
    return MetricResult(
        metric=name,
        value=value,
        ci=ci,
        stderr=0.5 if stderr is None and value is not None else stderr,
        ci_method="test",
        n=n,
        higher_is_better=higher,
        ideal=ideal,
        signature=signature or SIGNATURE.format(name=name),
        groups={k: GroupResult(value=v, ci=(lo, hi), n=gn) for k, (v, lo, hi, gn) in (groups or {}).items()},
    )


def task(
    metrics: Mapping[str, MetricResult],
    *,
    n: int = 100,
    data: str = "sha256:data",
    version: int = 1,
    kind: str = "classification",
) -> TaskEntry:
    return TaskEntry(
        version=version,
        kind=kind,
        spec_hash="sha256:spec",
        formulation="classifier_head",
        n_examples=n,
        data=DataEntry(source="local", location="test.tsv", fingerprint=data, n_available=n),
        metrics=dict(metrics),
        samples="samples/placeholder.jsonl",
        seconds=0.5,
    )


def default_samples(entry: TaskEntry) -> list[dict[str, Any]]:
    """One row per example: alternately right and wrong on every metric."""
    rows = []
    for index in range(entry.n_examples):
        right = index % 2 == 0
        rows.append(
            {
                "id": str(index),
                "input": f"example sentence {index}",
                "prediction": "positive" if right else "negative",
                "gold": "positive",
                "scores": {key: 100.0 if right else 0.0 for key in entry.metrics},
                "stats": {key: [float(right), 1.0] for key in entry.metrics},
            }
        )
    return rows


def write_run(
    directory: Path,
    *,
    model: str,
    tasks: Mapping[str, TaskEntry],
    created: str = "2026-01-01T00:00:00+00:00",
    fingerprint: str | None = None,
    run_id: str | None = None,
    source: str = "checkpoint",
    samples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Path:
    """Write ``results.json`` and a samples file per task (``samples`` or default rows)."""
    directory = Path(directory)
    fingerprint = fingerprint or "sha256:" + hashlib.sha256(model.encode()).hexdigest()[:16]
    entries = {}
    for name, entry in tasks.items():
        rows = list((samples or {}).get(name) or default_samples(entry))
        try:
            relative = write_samples(directory, name, rows)
        except RecordError:  # a hostile task name that would leave the run directory
            relative = write_samples(directory, "t" + hashlib.sha256(name.encode()).hexdigest()[:8], rows)
        entries[name] = entry.model_copy(update={"samples": relative, "n_examples": len(rows)})
    record = RunRecord(
        run_id=run_id or hashlib.sha256(f"{model}{created}{directory}".encode()).hexdigest()[:12],
        created=created,
        model=ModelEntry(name=model, path=f"/models/{model}", kind="sequence_classifier", fingerprint=fingerprint, source=source),
        tasks=entries,
        settings={"seed": 1234},
        environment={"python": "3.11", "packages": {"evalharness": "0.1.0"}},
        seconds=1.5,
    )
    write_record(directory, record)
    return directory
