"""Classification metrics (GLUE): replicate ``sklearn.metrics`` on label names.

Every metric here keeps additive per-example statistics (confusion counts), so a bootstrap
interval is one matrix product and a group breakdown is a row subset. Predictions are label
names; a missing prediction (None) is a label of its own that never equals the gold label,
so it counts as wrong. Missing gold labels are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric, is_missing
from evalharness.stats import FloatArray
from evalharness.types import LabelPrediction

if TYPE_CHECKING:
    from evalharness.spec.schema import TaskSpec

__all__ = ["F1", "MCC", "Accuracy", "check_references", "zero_division_value"]

ZeroDivision = Literal["nan", 0, 1]


def check_references(name: str, references: Sequence[object]) -> None:
    """Refuse missing gold values: scoring against None would silently count as wrong."""
    for index, reference in enumerate(references):
        if is_missing(reference):
            raise MetricInputError(f"{name}: reference {index} is missing (None/NaN)")


def zero_division_value(policy: ZeroDivision) -> float:
    """The score of an undefined ratio under scikit-learn's ``zero_division`` policy."""
    return float("nan") if policy == "nan" else float(policy)


class _LabelMetric(AdditiveMetric):
    """Shared checks for metrics over label names."""

    reference_package = "scikit-learn"
    accepts = (LabelPrediction,)
    kind_hints = {"regression": "the task's labels are real values; use pearson/spearman (STS-B is a regression task)"}

    def example_scores(self, stats: FloatArray) -> FloatArray:
        """F1 and MCC exist only over a set of examples: no per-example value (null)."""
        return np.full(stats.shape[0], np.nan)


class Accuracy(_LabelMetric):
    """Share of exact label matches, x100 (``sklearn.metrics.accuracy_score``).

    Statistics per example: (correct, 1). A missing prediction (None) counts as wrong.
    """

    name = "accuracy"
    bounds = (0.0, 100.0)
    reference = "sklearn.metrics.accuracy_score"
    interval_method = "wilson"
    paired_test = "mcnemar"  # per-example outcomes are 0/1
    mean_of_examples = True

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        check_references(self.name, references)
        correct = [
            float(not is_missing(p) and p == r) for p, r in zip(predictions, references, strict=True)
        ]
        return np.column_stack([correct, np.ones(len(correct))])

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        return 100.0 * sums[:, 0] / sums[:, 1]

    def example_scores(self, stats: FloatArray) -> FloatArray:
        return 100.0 * stats[:, 0]


class F1Settings(StrictModel):
    positive_label: str
    zero_division: ZeroDivision = "nan"


class F1(_LabelMetric):
    """F1 of one class, x100: ``sklearn.metrics.f1_score(pos_label=..., average='binary')``.

    GLUE reports it for MRPC and QQP next to accuracy. With more than two labels it is the
    per-class F1 of ``positive_label`` (``f1_score(labels=[pos], average=None)``). Statistics
    per example: (true positive, false positive, false negative); F1 = 2tp / (2tp + fp + fn).
    With no positive in references or predictions F1 is undefined: ``zero_division`` decides
    (NaN by default, or 0/1 as scikit-learn allows).
    """

    name = "f1"
    bounds = (0.0, 100.0)
    reference = "sklearn.metrics.f1_score"
    settings: F1Settings
    Settings = F1Settings

    @classmethod
    def spec_problem(cls, settings: StrictModel, spec: TaskSpec) -> str | None:
        assert isinstance(settings, F1Settings)  # the caller validated them with cls.Settings
        problem = None
        labels = spec.labels or []
        if labels and settings.positive_label not in labels:
            problem = f"positive_label '{settings.positive_label}' is not one of the task's labels {labels}"
        return problem

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        check_references(self.name, references)
        positive = self.settings.positive_label
        gold = np.array([r == positive for r in references], dtype=float)
        pred = np.array([not is_missing(p) and p == positive for p in predictions], dtype=float)
        return np.column_stack([gold * pred, (1 - gold) * pred, gold * (1 - pred)])

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        tp, fp, fn = sums[:, 0], sums[:, 1], sums[:, 2]
        denominator = 2 * tp + fp + fn
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 100.0 * 2 * tp / denominator
        undefined = 100.0 * zero_division_value(self.settings.zero_division)
        return np.where(denominator > 0, scores, undefined)

    def undefined_reason(self, stats: FloatArray) -> str | None:
        return (
            f"no gold label and no prediction among the {stats.shape[0]} examples is the positive label "
            f"'{self.settings.positive_label}': F1 is 0/0 (zero_division: nan)"
        )


class MCCSettings(StrictModel):
    zero_division: ZeroDivision = 0


class MCC(_LabelMetric):
    """Matthews correlation coefficient x100 (``sklearn.metrics.matthews_corrcoef``), CoLA.

    The multiclass form (Gorodkin 2004) depends only on the number correct, n, and the true
    and predicted label counts, so the statistics per example are
    ``(correct, 1, one-hot gold label..., one-hot predicted label..., missing prediction)``
    over the labels seen in the call; the columns add up. When all predictions (or all gold
    labels) are one class the coefficient is 0/0: scikit-learn returns 0, which GLUE reports
    for a constant classifier; ``zero_division: nan`` reports it as undefined instead.
    """

    name = "mcc"
    bounds = (-100.0, 100.0)
    reference = "sklearn.metrics.matthews_corrcoef"
    settings: MCCSettings
    Settings = MCCSettings

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        check_references(self.name, references)
        labels = sorted({*references, *(p for p in predictions if not is_missing(p))}, key=repr)
        index = {label: position for position, label in enumerate(labels)}
        n, k = len(references), len(labels)
        stats = np.zeros((n, 3 + 2 * k))
        stats[:, 1] = 1.0
        for row, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            stats[row, 2 + index[reference]] = 1.0
            if is_missing(prediction):
                stats[row, 2 + 2 * k] = 1.0
                continue
            stats[row, 2 + k + index[prediction]] = 1.0
            stats[row, 0] = float(prediction == reference)
        return stats

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        k = (sums.shape[1] - 3) // 2
        correct, n = sums[:, 0], sums[:, 1]
        true_counts = sums[:, 2 : 2 + k]
        predicted_counts = sums[:, 2 + k :]  # the missing-prediction column is a class too
        cov_true_pred = correct * n - np.einsum("bk,bk->b", true_counts, predicted_counts[:, :k])
        cov_pred = n**2 - np.einsum("bk,bk->b", predicted_counts, predicted_counts)
        cov_true = n**2 - np.einsum("bk,bk->b", true_counts, true_counts)
        denominator = cov_pred * cov_true
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 100.0 * cov_true_pred / np.sqrt(denominator)
        undefined = 100.0 * zero_division_value(self.settings.zero_division)
        return np.where(denominator > 0, scores, undefined)

    def undefined_reason(self, stats: FloatArray) -> str | None:
        return (
            f"all {stats.shape[0]} predictions (or all gold labels) are one class: the Matthews correlation "
            "is 0/0 (zero_division: nan)"
        )
