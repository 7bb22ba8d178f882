"""Classification metrics (GLUE): replicate ``sklearn.metrics`` on label names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evalharness.errors import MetricInputError
from evalharness.metrics.base import AdditiveMetric, is_missing

__all__ = ["Accuracy", "check_references"]


def check_references(name: str, references: Sequence[Any]) -> None:
    """Refuse missing gold values: scoring against None would silently count as wrong."""
    for index, reference in enumerate(references):
        if is_missing(reference):
            raise MetricInputError(f"{name}: reference {index} is missing (None/NaN)")


class Accuracy(AdditiveMetric):
    """Share of exact label matches, x100 (``sklearn.metrics.accuracy_score``).

    Statistics per example: (correct, 1). A missing prediction (None) counts as wrong.
    """

    name = "accuracy"
    reference = "sklearn.metrics.accuracy_score"
    reference_package = "scikit-learn"
    mean_of_examples = True
    paired_test = "mcnemar"  # per-example outcomes are 0/1

    def example_stats(self, predictions: Sequence[Any], references: Sequence[Any]) -> np.ndarray:
        check_references(self.name, references)
        correct = [
            float(not is_missing(p) and p == r) for p, r in zip(predictions, references, strict=True)
        ]
        return np.column_stack([correct, np.ones(len(correct))])

    def aggregate_sums(self, sums: np.ndarray) -> np.ndarray:
        return 100.0 * sums[:, 0] / sums[:, 1]

    def example_scores(self, stats: np.ndarray) -> np.ndarray:
        return 100.0 * stats[:, 0]
