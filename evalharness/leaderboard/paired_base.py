"""What the paired leaderboard tests share with their aggregate extension
(``paired_aggregate``): the verdict of a tested change, a column's tests, the scorer of a
metric and the resamples a family of tests needs. A leaf of ``paired`` and ``paired_aggregate``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evalharness.stats import Scorer

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric
    from evalharness.comparison.compare import CompareSettings, MetricComparison

__all__ = ["ColumnTests", "Pair", "family_settings", "scorer_of", "verdict_of"]

Pair = tuple[str, str]


def verdict_of(change: float | None, p_adjusted: float | None, alpha: float, lower_is_better: bool) -> str:
    """``compare``'s verdict of a tested change (B - A of the compared quantity)."""
    if change is None or p_adjusted is None:
        return "undefined"
    if p_adjusted >= alpha or change == 0:
        return "no significant change"
    return "improved" if (change < 0) == lower_is_better else "regressed"


@dataclass
class ColumnTests:
    """Every pair of one column: ``tests[(a, b)]`` is B = ``b`` against A = ``a`` (``a`` the
    better row on the point value), ``p_adjusted`` over every pair of the column."""

    key: str
    settings: CompareSettings | None = None  # what the tests ran with (resamples raised for the family)
    tests: dict[Pair, MetricComparison] = field(default_factory=dict)
    untested: dict[Pair, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(self, a: str, b: str) -> MetricComparison | None:
        return self.tests.get((a, b))


def scorer_of(metric: Metric, ideal: float | None) -> Scorer:
    """As ``compare``: metrics with an ideal value are compared on the distance from it."""
    transform = None if ideal is None else (lambda values: np.abs(values - ideal))
    return Scorer(metric.aggregate, metric.aggregate_sums if metric.additive else None, transform)


def family_settings(settings: CompareSettings, pairs: int) -> CompareSettings:
    """``settings`` with enough resamples (and permutations) that the smallest p-value the
    test can give (1 / (B + 1)) survives the correction across ``pairs`` comparisons: with
    ``compare``'s 1000 resamples no pair of a 20-system board (190 pairs) could ever be
    separated after Holm, and every board would be one big tie."""
    from dataclasses import replace

    if settings.correction == "none" or pairs <= 1:
        return settings
    needed = math.ceil(2 * pairs / settings.alpha / 1000) * 1000
    return replace(settings, n_resamples=max(settings.n_resamples, needed), n_permutations=max(settings.n_permutations, needed))
