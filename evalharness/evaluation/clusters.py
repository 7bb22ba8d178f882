"""Clustered examples: each example's source id, and metric intervals that resample sources.

Examples that share a source (SQuAD questions on one paragraph, BBQ questions from one
template, segments of one document) are correlated; an interval that treats them as
independent is too narrow. A task names the source in ``cluster_field``; every samples row
then records its ``cluster`` (what the gate's paired tests read back), and the metric's
interval is the cluster bootstrap (whole clusters resampled with replacement, Cameron,
Gelbach & Miller 2008), which, like the bootstrap over examples, stays inside the metric's
range. The method and the field are in the interval's method and the metric's signature.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from evalharness.errors import DataError
from evalharness.inference.clustered import FEW_CLUSTERS, cluster_bootstrap
from evalharness.spec.loader import Task
from evalharness.stats import Scorer
from evalharness.types import (
    Example,
    GroupResult,
    MetricResult,
    Signature,
    containing,
    finite_or_none,
)

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric

__all__ = ["cluster_id", "clustered_result", "example_clusters"]

_LONGEST_ID = 64  # longer source values (a SQuAD paragraph) are stored as a hash


def cluster_id(value: object) -> str:
    """A short, stable id for a source value: the text itself, or a hash of a long one."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) <= _LONGEST_ID:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and math.isnan(value))


def example_clusters(task: Task, examples: Sequence[Example]) -> list[str] | None:
    """Each example's cluster id from the task's ``cluster_field`` (None: no clusters);
    an example without a value is refused, since making it its own cluster would hide the
    dependence the field declares."""
    field = task.spec.cluster_field
    if field is None:
        return None
    head, *path = field.split(".")
    clusters = []
    for example in examples:
        value: object = example.fields.get(head)
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if _missing(value):
            raise DataError(
                f"{task.name}: example '{example.id}' has no value for cluster_field '{field}' (got {value!r}); "
                "every example needs its source (paragraph, template, document), or remove cluster_field from the task"
            )
        clusters.append(cluster_id(value))
    return clusters


def _interval(metric: Metric, rows: npt.NDArray[np.float64], clusters: npt.NDArray[np.object_], *, seed: int, n_resamples: int, confidence: float) -> tuple[float, float, float, int]:
    """Percentile cluster-bootstrap interval of the metric on ``rows``: (low, high, stderr, G)."""
    if rows.shape[0] == 0:
        nan = float("nan")
        return nan, nan, nan, 0
    scorer = Scorer(metric.aggregate, metric.aggregate_sums if metric.additive else None)
    replicates, n_clusters = cluster_bootstrap(rows, None, scorer, list(clusters), rng=np.random.default_rng(seed), n_resamples=n_resamples)
    finite = replicates[np.isfinite(replicates)]
    if n_clusters < 2 or finite.size < 2 or finite.size < 0.99 * replicates.size:
        nan = float("nan")
        return nan, nan, nan, n_clusters
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high), float(finite.std(ddof=1)), n_clusters


def clustered_result(
    metric: Metric,
    result: MetricResult,
    stats: npt.NDArray[np.float64],
    clusters: Sequence[str],
    *,
    field: str,
    seed: int,
    n_resamples: int,
    groups: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> MetricResult:
    """``result`` with its interval (and each group's) replaced by the cluster bootstrap over
    the examples that entered the metric. Fewer than 2 clusters: no interval (null)."""
    stats = np.asarray(stats, dtype=float)
    labels = np.asarray(clusters, dtype=object)
    entered = metric.entered(stats)
    low, high, stderr, n_clusters = _interval(metric, stats[entered], labels[entered], seed=seed, n_resamples=n_resamples, confidence=confidence)
    method = f"cluster-bootstrap-percentile-B{n_resamples}|field:{field}|clusters:{n_clusters}"
    if 0 < n_clusters < FEW_CLUSTERS:
        method += "|few-clusters"
    if not isinstance(result.signature, Signature):  # only records written before signatures had fields hold text
        raise TypeError(f"{result.metric}: a computed result has a structured signature")
    breakdown = dict(result.groups)
    if groups is not None:
        group_labels = np.asarray(groups, dtype=object)
        for name, group in result.groups.items():
            rows = (group_labels == name) & entered
            g_low, g_high, _, _ = _interval(metric, stats[rows], labels[rows], seed=seed, n_resamples=n_resamples, confidence=confidence)
            breakdown[name] = GroupResult.computed(group.value, g_low, g_high, group.n)
    return result.replaced(
        ci=containing(result.value, low, high),
        stderr=finite_or_none(stderr),
        ci_method=method,
        signature=result.signature.model_copy(update={"clusters": field}),
        groups=breakdown,
    )
