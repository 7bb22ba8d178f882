"""Correlation metrics for regression tasks (GLUE STS-B): replicate ``scipy.stats``, x100.

STS-B is scored by Pearson and Spearman correlation between predicted and gold similarity,
never by accuracy. A correlation has no notion of a "wrong" example, so a missing or
non-finite prediction cannot be scored silently: it is an error naming the example. When
either side is constant the coefficient is undefined and, as in scipy, the value is NaN
(written as null in run records), never a made-up number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue, float_of
from evalharness.metrics.base import AdditiveMetric, Metric, is_missing
from evalharness.stats import FloatArray
from evalharness.types import ScorePrediction

__all__ = ["Pearson", "Spearman"]


def _numbers(name: str, values: Sequence[object], what: str) -> FloatArray:
    out = np.empty(len(values), dtype=float)
    for index, value in enumerate(values):
        if is_missing(value) or isinstance(value, (str, bytes, bool)):
            problem = "is missing (None/NaN)" if is_missing(value) else f"is {value!r}, not a number"
            raise MetricInputError(
                f"{name}: {what} {index} {problem}; a correlation needs a real value for every example"
            )
        number = float_of(value)
        if number is None:
            raise MetricInputError(f"{name}: {what} {index} is {value!r}, not a number")
        if not math.isfinite(number):
            raise MetricInputError(f"{name}: {what} {index} is {number}, not a finite number")
        out[index] = number
    return out


class _Correlation(Metric):
    reference_package = "scipy"

    accepts = (ScorePrediction,)

    def _pairs(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> tuple[FloatArray, FloatArray]:
        return _numbers(self.name, predictions, "prediction"), _numbers(self.name, references, "reference")

    def example_scores(self, stats: FloatArray) -> FloatArray:
        """A correlation has no per-example value."""
        return np.full(stats.shape[0], np.nan)

    def _columns(self, stats: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The (prediction, reference) columns of the statistics."""
        return stats[:, 0], stats[:, 1]

    def undefined_reason(self, stats: FloatArray) -> str | None:
        if stats.shape[0] < 2:
            return f"a correlation needs at least 2 examples, there are {stats.shape[0]}"
        constant = [side for side, column in zip(("predictions", "references"), self._columns(stats)) if np.ptp(column) == 0]
        if constant:
            return f"the {' and the '.join(constant)} are constant over the {stats.shape[0]} examples: the correlation is 0/0"
        return None


def _pearson(x: FloatArray, y: FloatArray) -> float:
    from scipy import stats

    if x.size < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning: the NaN says it
        return 100.0 * float(stats.pearsonr(x, y).statistic)


class Pearson(_Correlation, AdditiveMetric):
    """Pearson's r x100 (``scipy.stats.pearsonr``).

    Statistics per example: (1, x, y, x², y², xy) with x and y shifted by their means over
    the call (r is shift-invariant; centring avoids cancellation in the sums). The point
    estimate is scipy's on the rows; bootstrap replicates use the closed form on column sums.
    """

    name = "pearson"
    bounds = (-100.0, 100.0)
    reference = "scipy.stats.pearsonr"

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        x, y = self._pairs(predictions, references)
        x, y = x - x.mean(), y - y.mean()
        return np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y])

    def aggregate(self, stats: FloatArray) -> float:
        stats = np.asarray(stats, dtype=float)
        return _pearson(stats[:, 1], stats[:, 2])

    def _columns(self, stats: FloatArray) -> tuple[FloatArray, FloatArray]:
        return stats[:, 1], stats[:, 2]

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        n, sx, sy, sxx, syy, sxy = (sums[:, i] for i in range(6))
        covariance = n * sxy - sx * sy
        variance = (n * sxx - sx * sx) * (n * syy - sy * sy)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = covariance / np.sqrt(variance)
        return np.where(variance > 0, 100.0 * np.clip(r, -1.0, 1.0), np.nan)


class Spearman(_Correlation):
    """Spearman's rho x100 (``scipy.stats.spearmanr``: Pearson's r of average ranks).

    Ranks depend on every other example, so the statistics are the raw (prediction, gold)
    pairs and the interval is a percentile bootstrap that re-ranks each resample.
    """

    name = "spearman"
    bounds = (-100.0, 100.0)
    reference = "scipy.stats.spearmanr"

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        x, y = self._pairs(predictions, references)
        return np.column_stack([x, y])

    def aggregate(self, stats: FloatArray) -> float:
        from scipy import stats as scipy_stats

        stats = np.asarray(stats, dtype=float)
        if stats.shape[0] < 2:
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 100.0 * float(scipy_stats.spearmanr(stats[:, 0], stats[:, 1]).statistic)
