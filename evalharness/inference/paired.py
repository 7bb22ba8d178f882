"""The paired difference of a metric between a candidate and a baseline run on the same
examples, as an interval in the metric's better direction (positive: the candidate is better).

- Means of per-example scores (accuracy, exact match, F1...): the paired t interval, i.e.
  the t interval of the per-example differences (``scipy.stats.ttest_rel(...)
  .confidence_interval()``); with cluster ids, the CR1 cluster-robust interval of the same
  differences (:mod:`evalharness.inference.clustered`).
- Corpus metrics (BLEU, chrF, ratios of sums, distances from an ideal value): the paired
  bootstrap of :func:`evalharness.stats.paired_bootstrap` (Koehn 2004) over the metric's
  per-example statistics and its :class:`~evalharness.stats.Scorer`; with cluster ids, the
  paired cluster bootstrap.

An interval that would claim more than the data can give is not produced: when the paired
differences do not vary at all, the t interval (zero width) is replaced by the betting
confidence interval of :mod:`evalharness.inference.betting`, which holds for any bounded
scores at any n; without known bounds the interval is undefined and says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import stats as scipy_stats

from evalharness.errors import MetricInputError, UsageError
from evalharness.inference.betting import confidence_bounds
from evalharness.inference.checks import (
    check_confidence,
    check_flag,
    example_name,
    paired_scores,
)
from evalharness.inference.clustered import (
    FEW_CLUSTERS,
    cluster_bootstrap,
    cluster_robust_mean,
)
from evalharness.inference.estimate import Estimate
from evalharness.stats import FloatArray, Scorer, paired_bootstrap

__all__ = ["paired_bootstrap_difference", "paired_difference"]

# Paired differences smaller than this (relative to the scores) are float noise from
# recomputation, not a difference between systems.
_NOISE = 1e-9
# A percentile bound needs a few replicates beyond it to be more than one draw's accident.
_MIN_TAIL = 5
# More undefined resamples than this fraction and the interval no longer describes the data.
_MAX_UNDEFINED = 0.01


def _orient(candidate: FloatArray, baseline: FloatArray, higher_is_better: bool) -> FloatArray:
    return candidate - baseline if higher_is_better else baseline - candidate


def _span(bounds: tuple[float, float] | None) -> float | None:
    if bounds is None:
        return None
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return None
    return float(high - low)


def _no_variance(differences: FloatArray, confidence: float, bounds: tuple[float, float] | None) -> Estimate:
    """Every example differs by the same amount. A t interval would have zero width; with
    bounded scores the betting interval (valid for any n) is used instead."""
    n, mean = differences.size, float(differences.mean())
    span = _span(bounds)
    note = f"the paired differences are identical on all {n} examples"
    if span is None:
        nan = float("nan")
        return Estimate(mean, nan, nan, confidence, 0.0, n, "paired-t", float(n - 1), None,
                        (note + " and the metric has no finite bounds: no interval can be stood behind",))
    alpha = (1 - confidence) / 2
    scaled = (differences + span) / (2 * span)
    low, high = confidence_bounds(scaled, alpha=alpha)
    method = "paired-betting-cs"
    return Estimate(mean, 2 * span * low - span, 2 * span * high - span, confidence, 0.0, n, method, None, None,
                    (note + ": a t interval would have zero width, so the betting interval for bounded scores is used",))


def paired_difference(
    candidate: object,
    baseline: object,
    *,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
    clusters: object = None,
    ids: Sequence[object] | None = None,
) -> Estimate:
    """Interval of the mean per-example difference, candidate minus baseline, oriented so
    that positive is better. ``bounds`` are the per-example scores' possible range (checked,
    and used when the differences do not vary); ``clusters`` one source id per example."""
    confidence = check_confidence(confidence)
    higher_is_better = check_flag(higher_is_better, "higher_is_better")
    cand, base = paired_scores(candidate, baseline, ids=ids, bounds=bounds)
    differences = _orient(cand, base, higher_is_better)
    scale = max(1.0, float(np.max(np.abs(cand))), float(np.max(np.abs(base))))
    differences = np.where(np.abs(differences) <= _NOISE * scale, 0.0, differences)
    if clusters is not None:
        result = cluster_robust_mean(differences, clusters, confidence=confidence, ids=ids, name="paired differences")
        return replace(result, method="paired-" + result.method)
    n = differences.size
    sd = float(differences.std(ddof=1))
    if sd <= _NOISE * scale:
        return _no_variance(differences, confidence, bounds)
    mean, stderr = float(differences.mean()), sd / math.sqrt(n)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * stderr
    return Estimate(mean, mean - half, mean + half, confidence, stderr, n, "paired-t", float(n - 1))


def _check_stats(stats_candidate: object, stats_baseline: object, ids: Sequence[object] | None) -> tuple[FloatArray, FloatArray]:
    try:
        cand, base = np.asarray(stats_candidate, dtype=float), np.asarray(stats_baseline, dtype=float)
    except (TypeError, ValueError):
        raise MetricInputError("paired statistics must be numeric (examples, statistics) arrays") from None
    if cand.ndim != 2 or cand.shape != base.shape:
        raise MetricInputError(
            f"paired statistics: candidate {cand.shape} and baseline {base.shape} must be (examples, statistics) "
            "arrays of one shape, aligned by example id"
        )
    if cand.shape[0] < 2:
        raise MetricInputError(f"paired statistics: {cand.shape[0]} example(s); at least 2 are needed for an interval")
    for name, array in (("candidate", cand), ("baseline", base)):
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        if bad.size:
            raise MetricInputError(
                f"{name}: {example_name(int(bad[0]), ids)} has non-finite statistics ({bad.size} such examples); "
                "re-score it or drop it from both runs"
            )
    return cand, base


def _check_resamples(n_resamples: int, confidence: float) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise UsageError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    tail = (1 - confidence) / 2 * n_resamples
    if tail < _MIN_TAIL:
        needed = math.ceil(2 * _MIN_TAIL / (1 - confidence))
        raise UsageError(
            f"n_resamples={n_resamples} leaves {tail:.1f} replicates beyond each bound of a {confidence:.1%} interval; "
            f"use at least {needed}"
        )
    return n_resamples


def _undefined(observed: float, *, confidence: float, n: int, method: str, clusters: int | None, notes: tuple[str, ...]) -> Estimate:
    nan = float("nan")
    return Estimate(observed, nan, nan, confidence, nan, n, method, None, clusters, notes)


def _usable(observed: float, undefined: int, total: int, spread: float) -> str | None:
    """Why bootstrap replicates cannot give an interval, or None when they can."""
    if undefined > _MAX_UNDEFINED * total or not math.isfinite(observed):
        return f"the metric is undefined on {undefined} of {total} resamples (e.g. an empty subset); evaluate more examples"
    if spread <= _NOISE * max(1.0, abs(observed)):
        return "the resampled differences do not vary (the runs agree on every example): a zero-width interval would claim certainty the data cannot give"
    return None


def _from_replicates(
    observed: float, deltas: FloatArray, *, confidence: float, n: int, method: str, clusters: int | None, notes: tuple[str, ...]
) -> Estimate:
    finite = deltas[np.isfinite(deltas)]
    undefined = deltas.size - finite.size
    problem = _usable(observed, undefined, deltas.size, float(np.ptp(finite)) if finite.size else 0.0)
    if problem:
        return _undefined(observed, confidence=confidence, n=n, method=method, clusters=clusters, notes=notes + (problem,))
    if undefined:
        notes += (f"{undefined} of {deltas.size} resamples were undefined and left out",)
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Estimate(observed, float(low), float(high), confidence, float(finite.std(ddof=1)), n, method, None, clusters, notes)


def paired_bootstrap_difference(
    stats_candidate: object,
    stats_baseline: object,
    scorer: Scorer,
    *,
    rng: np.random.Generator,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    clusters: object = None,
    ids: Sequence[object] | None = None,
) -> Estimate:
    """Percentile interval of candidate minus baseline of ``scorer``'s compared statistic,
    oriented so that positive is better; resampling examples (exactly
    :func:`evalharness.stats.paired_bootstrap`'s draws), or whole clusters when ``clusters``
    is given. The seed is the caller's: record it with the generator that made ``rng``."""
    confidence = check_confidence(confidence)
    higher_is_better = check_flag(higher_is_better, "higher_is_better")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded numpy.random.Generator, got {type(rng).__name__}")
    n_resamples = _check_resamples(n_resamples, confidence)
    cand, base = _check_stats(stats_candidate, stats_baseline, ids)
    n = cand.shape[0]
    sign = 1.0 if higher_is_better else -1.0
    if clusters is not None:
        method = f"paired-cluster-bootstrap-percentile-B{n_resamples}"
        observed = sign * scorer.observed(base, cand)
        deltas, n_clusters = cluster_bootstrap(cand, base, scorer, clusters, rng=rng, n_resamples=n_resamples, ids=ids)
        if n_clusters < 2:
            note = f"all {n} examples are in one cluster: resampling it cannot show any spread"
            return _undefined(observed, confidence=confidence, n=n, method=method, clusters=n_clusters, notes=(note,))
        notes = (f"only {n_clusters} clusters: a cluster bootstrap is unreliable with so few",) if n_clusters < FEW_CLUSTERS else ()
        return _from_replicates(observed, sign * deltas, confidence=confidence, n=n, method=method, clusters=n_clusters, notes=notes)
    method = f"paired-bootstrap-percentile-B{n_resamples}"
    result = paired_bootstrap(base, cand, scorer, rng=rng, n_resamples=n_resamples, confidence=confidence)
    observed = sign * result.difference
    problem = _usable(observed, int(result.details["undefined_resamples"]), n_resamples,
                      result.ci_high - result.ci_low if math.isfinite(result.stderr) and result.stderr > 0 else 0.0)
    if problem:
        return _undefined(observed, confidence=confidence, n=n, method=method, clusters=None, notes=(problem,))
    undefined = int(result.details["undefined_resamples"])
    notes = (f"{undefined} of {n_resamples} resamples were undefined and left out",) if undefined else ()
    low, high = (result.ci_low, result.ci_high) if higher_is_better else (-result.ci_high, -result.ci_low)
    return Estimate(observed, low, high, confidence, result.stderr, n, method, None, None, notes)
