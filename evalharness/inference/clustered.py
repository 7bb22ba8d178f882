"""Intervals when examples are not independent: cluster-robust standard errors and the
cluster bootstrap.

Examples that share a source (SQuAD questions on one paragraph, BBQ questions from one
template, WMT segments of one document, the counterfactual variants of one example) are
correlated, so an interval that treats them as independent is too narrow. The independent
units are the clusters:

- Means of per-example scores (and paired differences, which are means of per-example
  differences): the Liang-Zeger (1986) sandwich with the CR1 small-sample factor, as
  ``statsmodels`` ``OLS(y, ones).fit(cov_type="cluster")`` computes it:
  ``V = G/(G-1) * (N-1)/(N-K) * sum_g (sum_{i in g} e_i)^2 / N^2`` with K = 1, and a t
  interval with G - 1 degrees of freedom (statsmodels' ``df_resid_inference``; Cameron &
  Miller 2015, "A practitioner's guide to cluster-robust inference", Sec. VI).
- Corpus metrics (BLEU, ratios of sums): the cluster bootstrap (Cameron, Gelbach & Miller
  2008, the "pairs cluster bootstrap"): whole clusters are resampled with replacement and
  the metric recomputed from the examples they carry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from evalharness.inference.checks import check_confidence, cluster_codes, scores
from evalharness.inference.estimate import Estimate
from evalharness.stats import FloatArray, IntArray, Scorer, resample_counts

__all__ = ["FEW_CLUSTERS", "cluster_bootstrap", "cluster_robust_mean", "cluster_sums"]

# Below this many clusters the CR1 interval is known to be too narrow (Cameron & Miller 2015,
# Sec. VI): the result carries a note so the report can say so.
FEW_CLUSTERS = 30


def cluster_sums(values: npt.ArrayLike, codes: IntArray, n_clusters: int) -> FloatArray:
    """Per-cluster sums of rows of ``values`` (1-d or ``(n, k)``)."""
    array = np.asarray(values, dtype=float)
    out = np.zeros((n_clusters,) + array.shape[1:])
    np.add.at(out, codes, array)
    return out


def _cluster_notes(n_clusters: int) -> tuple[str, ...]:
    if n_clusters < FEW_CLUSTERS:
        return (f"only {n_clusters} clusters: cluster-robust intervals are too narrow with fewer than {FEW_CLUSTERS}",)
    return ()


def cluster_robust_mean(
    values: object,
    clusters: object,
    *,
    confidence: float = 0.95,
    ids: Sequence[object] | None = None,
    name: str = "scores",
) -> Estimate:
    """Mean of per-example values with a CR1 cluster-robust t interval (G - 1 df).

    With every example its own cluster this is exactly the ordinary t interval.
    """
    confidence = check_confidence(confidence)
    array = scores(values, name=name, ids=ids, minimum=2)
    codes, n_clusters = cluster_codes(clusters, array.size, ids=ids)
    n = array.size
    mean = float(array.mean())
    method = "cluster-robust-CR1-t"
    if n_clusters < 2:
        nan = float("nan")
        note = f"all {n} examples are in one cluster: there is no independent replication to estimate the spread from"
        return Estimate(mean, nan, nan, confidence, nan, n, method, None, n_clusters, (note,))
    residual_sums = cluster_sums(array - mean, codes, n_clusters)
    variance = n_clusters / (n_clusters - 1) * float(np.sum(residual_sums**2)) / n**2
    stderr = math.sqrt(variance)
    df = n_clusters - 1
    notes = _cluster_notes(n_clusters)
    if stderr <= 1e-12 * max(1.0, float(np.max(np.abs(array)))):
        nan = float("nan")
        note = "the cluster totals do not vary: a zero-width interval would claim certainty the data cannot give"
        return Estimate(mean, nan, nan, confidence, 0.0, n, method, float(df), n_clusters, notes + (note,))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * stderr
    return Estimate(mean, mean - half, mean + half, confidence, stderr, n, method, float(df), n_clusters, notes)


def _replicates(stats: FloatArray, scorer: Scorer, counts: IntArray, codes: IntArray, n_clusters: int) -> FloatArray:
    """Scores of the resamples given by per-cluster draw counts ``(B, G)``."""
    if scorer.aggregate_sums is not None:
        sums = counts.astype(float) @ cluster_sums(stats, codes, n_clusters)
        return np.asarray(scorer.aggregate_sums(sums), dtype=float)
    weights = counts[:, codes]
    return np.array([scorer.aggregate(np.repeat(stats, row, axis=0)) for row in weights], dtype=float)


def cluster_bootstrap(
    stats_candidate: FloatArray,
    stats_baseline: FloatArray | None,
    scorer: Scorer,
    clusters: object,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    ids: Sequence[object] | None = None,
) -> tuple[FloatArray, int]:
    """Replicates of the compared statistic (``scorer.statistic``) under resampling whole
    clusters with replacement: of the candidate alone, or of candidate minus baseline when a
    baseline is given (both scored on the *same* resampled clusters). Returns the replicates
    and the number of clusters."""
    codes, n_clusters = cluster_codes(clusters, stats_candidate.shape[0], ids=ids)
    counts = resample_counts(n_clusters, n_resamples, rng)
    candidate = scorer.statistic(_replicates(stats_candidate, scorer, counts, codes, n_clusters))
    if stats_baseline is None:
        return candidate, n_clusters
    return candidate - scorer.statistic(_replicates(stats_baseline, scorer, counts, codes, n_clusters)), n_clusters
