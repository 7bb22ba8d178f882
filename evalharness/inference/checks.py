"""Boundary checks for the inference functions: unusable inputs are refused, never guessed.

Scores come from run records, settings from gate policies; both are user input, so problems
are project errors that name the example (by id when the caller passes ids, else by
position), the argument and the value, and say what to do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evalharness.errors import MetricInputError, UsageError
from evalharness.stats import FloatArray, IntArray

__all__ = [
    "check_alpha",
    "check_confidence",
    "check_flag",
    "check_margin",
    "cluster_codes",
    "example_name",
    "paired_scores",
    "scores",
]


def example_name(index: int, ids: Sequence[object] | None) -> str:
    return f"example '{ids[index]}'" if ids is not None and index < len(ids) else f"example #{index}"


def scores(
    values: object,
    *,
    name: str,
    ids: Sequence[object] | None = None,
    bounds: tuple[float, float] | None = None,
    minimum: int = 1,
) -> FloatArray:
    """Per-example scores as a finite 1-d float array (within ``bounds`` when given)."""
    raw = np.asarray(values)
    if raw.dtype.kind in "USV" or (raw.dtype.kind == "O" and not all(_number_or_none(v) for v in raw.ravel())):
        raise MetricInputError(f"{name}: per-example scores must be numbers, got {raw.dtype} values")
    try:
        array = raw.astype(float)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name}: per-example scores must be numbers") from None
    if array.ndim != 1:
        raise MetricInputError(f"{name}: per-example scores must be one number per example, got shape {array.shape}")
    if ids is not None and len(ids) != array.size:
        raise MetricInputError(f"{name}: {array.size} scores but {len(ids)} example ids")
    if array.size < minimum:
        raise MetricInputError(
            f"{name}: {array.size} example(s); at least {minimum} are needed for an interval; evaluate more examples"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise MetricInputError(
            f"{name}: {example_name(int(bad[0]), ids)} has score {array[bad[0]]} ({bad.size} non-finite in all); "
            "an unscored example cannot be compared: re-score or drop it from both runs"
        )
    if bounds is not None:
        low, high = bounds
        outside = np.flatnonzero((array < low) | (array > high))
        if outside.size:
            raise MetricInputError(
                f"{name}: {example_name(int(outside[0]), ids)} has score {array[outside[0]]:g}, outside the metric's "
                f"range [{low:g}, {high:g}]; the scores are not this metric's per-example scores"
            )
    return array


def paired_scores(
    candidate: object,
    baseline: object,
    *,
    ids: Sequence[object] | None = None,
    bounds: tuple[float, float] | None = None,
    minimum: int = 2,
) -> tuple[FloatArray, FloatArray]:
    """Two score arrays of one length, aligned example by example."""
    cand = scores(candidate, name="candidate", ids=ids, bounds=bounds, minimum=minimum)
    base = scores(baseline, name="baseline", ids=ids, bounds=bounds, minimum=minimum)
    if cand.size != base.size:
        raise MetricInputError(
            f"paired scores: candidate has {cand.size} examples, baseline {base.size}; "
            "a paired comparison needs the same examples, aligned by id"
        )
    return cand, base


def _number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)))


def check_flag(value: object, name: str) -> bool:
    """A yes/no setting: only a real bool, since ``"false"`` is truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise UsageError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_alpha(alpha: float, *, name: str = "alpha", upper: float = 0.5) -> float:
    """An error rate strictly between 0 and ``upper`` (0.5 for one-sided tests, whose
    two-sided interval has confidence 1 - 2 alpha)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < upper:
        raise UsageError(f"{name} must be a number strictly between 0 and {upper:g}, got {alpha!r}")
    return float(alpha)


def check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise UsageError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def check_margin(margin: float, *, name: str = "margin") -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise UsageError(f"{name} must be a finite number >= 0, got {margin!r}")
    return float(margin)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def cluster_codes(clusters: object, n: int, *, ids: Sequence[object] | None = None) -> tuple[IntArray, int]:
    """Integer codes (0 .. G-1, in order of first appearance) for per-example cluster ids.

    A missing cluster id is refused rather than treated as its own cluster: silently making
    it a singleton would understate the dependence it was declared to capture.
    """
    values = list(np.asarray(clusters, dtype=object).ravel()) if not isinstance(clusters, list) else clusters
    if len(values) != n:
        raise MetricInputError(f"clusters: {len(values)} cluster ids for {n} examples; give one cluster id per example")
    codes = np.empty(n, dtype=np.int64)
    seen: dict[object, int] = {}
    for index, value in enumerate(values):
        value = value.item() if isinstance(value, np.generic) else value
        if _missing(value):
            raise MetricInputError(
                f"clusters: {example_name(index, ids)} has no cluster id ({value!r}); every example needs its source "
                "(paragraph, template, document) for cluster-robust intervals"
            )
        try:
            codes[index] = seen.setdefault(value, len(seen))
        except TypeError:  # unhashable, or holding something unhashable
            raise MetricInputError(f"clusters: {example_name(index, ids)} has an unusable cluster id {value!r}") from None
    return codes, len(seen)
