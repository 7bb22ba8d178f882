"""Real run records for compare/gate tests, written through the same scoring path as
``evalharness run`` (``scoring.score_task`` -> ``records.write_record``), from predictions
instead of a model. Also a few small metrics the registry does not have yet (a
lower-is-better error rate, a bias score with an ideal value, and a BLEU stand-in), which
tests register with ``monkeypatch.setitem(METRICS, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.data.loader import LoadedData, fingerprint_examples
from evalharness.metrics.base import AdditiveMetric
from evalharness.records.record import ModelEntry, RunRecord, write_record
from evalharness.evaluation.scoring import score_task
from evalharness.spec.loader import load_task
from evalharness.types import Decoded, Example

CLASSIFICATION_TASK = """\
version: 1
kind: classification
data: {local: {files: [x.tsv], format: tsv}}
labels: [negative, positive]
metrics: [accuracy]
"""

GENERATION_TASK = """\
version: 1
kind: generation
data: {local: {files: [x.txt], format: txt}}
metrics: [bleu]
"""


@dataclass(frozen=True)
class TaskRun:
    """One task of a run: its spec text, examples (id, fields) and predictions."""

    name: str
    spec: str
    examples: Sequence[Example]
    predictions: Sequence[Any]


def classification(name: str, golds: Sequence[str], predictions: Sequence[str], *, ids: Sequence[str] | None = None, spec: str = CLASSIFICATION_TASK) -> TaskRun:
    ids = list(ids) if ids is not None else [str(i) for i in range(len(golds))]
    examples = [Example(id=i, fields={"text": f"example {i}", "label": gold}) for i, gold in zip(ids, golds)]
    return TaskRun(name, spec, examples, list(predictions))


def correct_to_predictions(golds: Sequence[str], correct: Sequence[bool]) -> list[str]:
    """Predictions that are right exactly where ``correct`` is true (binary labels)."""
    flip = {"negative": "positive", "positive": "negative"}
    return [gold if ok else flip[gold] for gold, ok in zip(golds, correct)]


def write_run(run_dir: Path, tasks: Sequence[TaskRun], *, model: str = "model", seed: int = 1234, n_resamples: int = 200) -> Path:
    """Score ``tasks`` and write a complete run directory (results.json and samples)."""
    run_dir = Path(run_dir)
    specs = run_dir / "specs"
    entries = {}
    for item in tasks:
        path = specs / f"{item.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.spec, encoding="utf-8")
        task = load_task(path, item.name)
        data = LoadedData(list(item.examples), fingerprint_examples(item.examples), "local", "test data", len(item.examples))
        decoded = [Decoded(prediction=p, input=dict(e.fields)) for p, e in zip(item.predictions, item.examples)]
        entries[item.name] = score_task(
            task, data, decoded, run_dir=run_dir, formulation="predictions", seed=seed, n_resamples=n_resamples, seconds=0.0
        )
    record = RunRecord(
        run_id=f"{model}-run",
        created="2026-01-01T00:00:00+00:00",
        model=ModelEntry(name=model, path=f"/models/{model}", kind="predictions", fingerprint=f"sha256:{model}", source="predictions"),
        tasks=entries,
    )
    write_record(run_dir, record)
    return run_dir


# -- metrics for tests ------------------------------------------------------------------------


class ErrorRate(AdditiveMetric):
    """Share of wrong labels x100: lower is better; tested with approximate randomization."""

    name = "error_rate"
    higher_is_better = False
    reference = "1 - sklearn.metrics.accuracy_score"
    mean_of_examples = True
    paired_test = "permutation"

    def example_stats(self, predictions, references) -> np.ndarray:
        wrong = [float(p != r) for p, r in zip(predictions, references, strict=True)]
        return np.column_stack([wrong, np.ones(len(wrong))])

    def aggregate_sums(self, sums: np.ndarray) -> np.ndarray:
        return 100.0 * sums[:, 0] / sums[:, 1]

    def example_scores(self, stats: np.ndarray) -> np.ndarray:
        return 100.0 * stats[:, 0]


class PositiveShare(AdditiveMetric):
    """Share of 'positive' predictions x100 with ideal 50, shaped like a stereotype score
    (CrowS-Pairs): the distance from 50 is what is minimised."""

    name = "positive_share"
    reference = "share of predictions equal to 'positive'"
    ideal = 50.0
    paired_test = "mcnemar"  # 0/1 outcomes, but a distance from an ideal needs the bootstrap

    def example_stats(self, predictions, references) -> np.ndarray:
        positive = [float(p == "positive") for p in predictions]
        return np.column_stack([positive, np.ones(len(positive))])

    def aggregate_sums(self, sums: np.ndarray) -> np.ndarray:
        return 100.0 * sums[:, 0] / sums[:, 1]


