"""Confidence intervals from per-example statistics.

Corpus metrics are recomputed on bootstrap resamples of per-example sufficient statistics
(Koehn 2004; sacrebleu's approach), so a CI costs one matrix product for additive metrics
instead of re-scoring text. Randomness is always a seeded ``numpy.random.Generator`` passed
in by the caller. The standard error reported for a bootstrap is the standard deviation of
the replicates (not that divided by sqrt(B)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["Interval", "bootstrap_interval", "mean_interval", "resample_counts"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    stderr: float
    method: str


def mean_interval(scores: np.ndarray, *, confidence: float = 0.95) -> Interval:
    """Analytic interval for a mean of per-example scores (Student t, ddof=1).

    Exact for the quantity it describes and needs no randomness; with one example the
    interval is undefined and reported as NaN rather than a fake zero width.
    """
    scores = np.asarray(scores, dtype=float)
    n = scores.size
    mean = float(scores.mean())
    if n < 2:
        return Interval(float("nan"), float("nan"), float("nan"), "analytic-t")
    stderr = float(scores.std(ddof=1) / np.sqrt(n))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * stderr
    return Interval(mean - half, mean + half, stderr, f"analytic-t-{confidence:g}")


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each example is drawn in each resample: shape ``(n_resamples, n)``.

    Equivalent to drawing indices with replacement, but lets additive statistics be
    aggregated with a single matrix product.
    """
    indices = rng.integers(0, n, size=(n_resamples, n))
    flat = (indices + (np.arange(n_resamples) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n)


def bootstrap_interval(
    stats: np.ndarray,
    *,
    aggregate: Callable[[np.ndarray], float],
    aggregate_sums: Callable[[np.ndarray], np.ndarray] | None,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap over examples.

    ``aggregate`` maps an ``(n, k)`` block of per-example statistics to the corpus score.
    When the metric is additive, ``aggregate_sums`` maps a ``(B, k)`` array of column sums to
    ``B`` scores and the whole bootstrap is one matrix product.
    """
    stats = np.asarray(stats, dtype=float)
    n = stats.shape[0]
    counts = resample_counts(n, n_resamples, rng)
    if aggregate_sums is not None:
        replicates = np.asarray(aggregate_sums(counts @ stats), dtype=float)
    else:
        replicates = np.array(
            [aggregate(np.repeat(stats, row, axis=0)) for row in counts], dtype=float
        )
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), "bootstrap")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    method = f"bootstrap-percentile-{confidence:g}-B{n_resamples}"
    return Interval(float(low), float(high), float(finite.std(ddof=1)), method)
