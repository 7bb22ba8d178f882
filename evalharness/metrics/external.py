"""Means of per-example scores that another harness computed (imported runs).

``evalharness import lm-eval`` keeps lm-evaluation-harness's own per-example values (its
``acc`` of each document, say) when its results file declares the metric's aggregation as
``mean``. This metric re-aggregates those values exactly as lm-eval's ``mean`` aggregation
does, so ``compare`` can pair two imported runs (or an imported run and a re-import) on the
same documents. It never scores predictions itself: the values come with the samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric, SettingsInput
from evalharness.stats import FloatArray

__all__ = ["ExternalMean"]


class ExternalMeanSettings(StrictModel):
    source: str  # the harness that computed the per-example values, e.g. "lm-eval"
    metric: str  # its metric name, e.g. "acc"
    filter: str = "none"  # lm-eval's filter pipeline the values went through
    higher_is_better: bool = True


class ExternalMean(AdditiveMetric):
    """Mean of per-example values computed elsewhere (lm-eval's ``mean`` aggregation)."""

    name = "external_mean"
    reference = "lm_eval.api.metrics.mean"
    mean_of_examples = True
    paired_test = "permutation"
    settings: ExternalMeanSettings
    Settings = ExternalMeanSettings

    def __init__(self, settings: SettingsInput = None) -> None:
        super().__init__(settings)
        self.higher_is_better = self.settings.higher_is_better  # the source metric's, not a class constant

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        """``predictions`` are the imported per-example values; references are unused."""
        values = np.asarray(predictions, dtype=float)
        if not np.isfinite(values).all():
            raise MetricInputError(f"{self.name}: per-example values must be finite numbers")
        return np.column_stack([values, np.ones(values.size)])

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums[:, 0] / sums[:, 1]

    def example_scores(self, stats: FloatArray) -> FloatArray:
        return np.asarray(stats, dtype=float)[:, 0]
