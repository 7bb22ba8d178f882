"""Confidence intervals and paired significance tests from per-example statistics.

Corpus metrics are recomputed on bootstrap resamples of per-example sufficient statistics
(Koehn 2004; sacrebleu's approach), so a CI costs one matrix product for additive metrics
instead of re-scoring text. Randomness is always a seeded ``numpy.random.Generator`` passed
in by the caller. The standard error reported for a bootstrap is the standard deviation of
the replicates (not that divided by sqrt(B)). Proportions (a share of 0/1 outcomes) get the
Wilson score interval instead. Neither can leave the range the metric can take.

Paired tests compare two systems on the *same* examples (rows aligned by example id):
the paired bootstrap (Koehn 2004, resampling exactly as sacrebleu's ``significance``
module does), approximate randomization (Noreen 1989; sacrebleu's ``ar`` test), McNemar's
exact test for 0/1 outcomes, and Holm / Benjamini-Hochberg adjustments across many tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

__all__ = [
    "BOOTSTRAP_PVALUES",
    "CORRECTIONS",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Interval",
    "McNemarResult",
    "PairedResult",
    "Scorer",
    "adjust_pvalues",
    "bootstrap_interval",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_permutation",
    "resample_counts",
    "wilson_interval",
]

# Per-example statistics, scores and replicates are float arrays; masks are boolean arrays;
# resample draws and their counts are integer arrays.
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    stderr: float
    method: str


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval (Wilson 1927) of a proportion ``successes / n``, on [0, 1].

    Unlike the Wald or Student-t interval of a mean of 0/1 outcomes it never leaves [0, 1]
    and keeps its coverage near 0 and 1 and for small n (Brown, Cai & DasGupta 2001); equal
    to ``statsmodels.stats.proportion.proportion_confint(method="wilson")``. The standard
    error is the binomial one, sqrt(p (1 - p) / n). No examples: NaN, never a fake zero width.
    """
    if n < 1:
        return Interval(float("nan"), float("nan"), float("nan"), f"wilson-{confidence:g}")
    ci = scipy_stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    p = successes / n
    return Interval(float(ci.low), float(ci.high), float(np.sqrt(p * (1 - p) / n)), f"wilson-{confidence:g}")


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> IntArray:
    """How often each example is drawn in each resample: shape ``(n_resamples, n)``.

    Equivalent to drawing indices with replacement, but lets additive statistics be
    aggregated with a single matrix product.
    """
    return _counts(rng.integers(0, n, size=(n_resamples, n)), n)


def _counts(indices: IntArray, n: int) -> IntArray:
    """Per-row draw counts of a ``(B, n)`` index matrix."""
    rows = indices.shape[0]
    flat = (indices + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n)


def bootstrap_interval(
    stats: npt.ArrayLike,
    *,
    aggregate: Callable[[FloatArray], float],
    aggregate_sums: Callable[[FloatArray], FloatArray] | None,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap over examples.

    Every replicate is the statistic of a resample, so the interval stays inside the range
    the statistic can take (a ROUGE or SQuAD F1 mean in [0, 100], a correlation in
    [-100, 100]) by construction; no clipping is needed or done.

    ``aggregate`` maps an ``(n, k)`` block of per-example statistics to the corpus score.
    When the metric is additive, ``aggregate_sums`` maps a ``(B, k)`` array of column sums to
    ``B`` scores and the whole bootstrap is one matrix product.
    """
    stats = np.asarray(stats, dtype=float)
    n = stats.shape[0]
    method = f"bootstrap-percentile-{confidence:g}-B{n_resamples}"
    if n < 2:  # every resample is the sample itself: a zero width that says nothing
        return Interval(float("nan"), float("nan"), float("nan"), method)
    counts = resample_counts(n, n_resamples, rng)
    if aggregate_sums is not None:
        replicates = np.asarray(aggregate_sums(counts @ stats), dtype=float)
    else:
        replicates = np.array(
            [aggregate(np.repeat(stats, row, axis=0)) for row in counts], dtype=float
        )
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), method)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return Interval(float(low), float(high), float(finite.std(ddof=1)), method)


# -- paired tests ------------------------------------------------------------------------

# Resamples are aggregated in blocks so that a large corpus (10^4 examples x 10^3 resamples)
# never materialises every count matrix at once; the random draws are made in one call so
# the stream matches sacrebleu's exactly.
_BLOCK = 256


@dataclass(frozen=True)
class Scorer:
    """How rows of per-example statistics become the number two systems are compared on.

    ``aggregate`` scores any block of rows; ``aggregate_sums`` (additive metrics only) scores
    ``(B, k)`` column sums at once. ``transform`` maps scores to the compared quantity, e.g.
    the distance from a metric's ideal value, where the distance is what is minimised.
    """

    aggregate: Callable[[FloatArray], float]
    aggregate_sums: Callable[[FloatArray], FloatArray] | None = None
    transform: Callable[[FloatArray], FloatArray] | None = None

    def statistic(self, values: npt.ArrayLike) -> FloatArray:
        values = np.asarray(values, dtype=float)
        return values if self.transform is None else np.asarray(self.transform(values), dtype=float)

    def value(self, stats: FloatArray) -> float:
        return float(self.aggregate(stats))

    def observed(self, stats_a: FloatArray, stats_b: FloatArray) -> float:
        """The compared statistic of B minus that of A on all rows."""
        values = self.statistic(np.array([self.value(stats_a), self.value(stats_b)]))
        return float(values[1] - values[0])

    def resampled(self, stats: FloatArray, indices: IntArray) -> FloatArray:
        """Scores of the resamples given by the rows of ``indices`` (shape ``(B, n)``)."""
        if self.aggregate_sums is None:
            return np.array([self.aggregate(stats[row]) for row in indices], dtype=float)
        n = stats.shape[0]
        blocks = [
            np.asarray(self.aggregate_sums(_counts(indices[start : start + _BLOCK], n) @ stats), dtype=float)
            for start in range(0, indices.shape[0], _BLOCK)
        ]
        return np.concatenate(blocks)

    def swapped(self, stats_a: FloatArray, stats_b: FloatArray, swap: BoolArray) -> tuple[FloatArray, FloatArray]:
        """Scores of the two pseudo-systems made by swapping the rows where ``swap`` is true."""
        if self.aggregate_sums is None:
            first = [self.aggregate(np.where(row[:, None], stats_b, stats_a)) for row in swap]
            second = [self.aggregate(np.where(row[:, None], stats_a, stats_b)) for row in swap]
            return np.array(first, dtype=float), np.array(second, dtype=float)
        delta = stats_b - stats_a
        total_a, total_b = stats_a.sum(axis=0), stats_b.sum(axis=0)
        blocks_a: list[FloatArray] = []
        blocks_b: list[FloatArray] = []
        for start in range(0, swap.shape[0], _BLOCK):
            moved = swap[start : start + _BLOCK].astype(float) @ delta
            blocks_a.append(np.asarray(self.aggregate_sums(total_a + moved), dtype=float))
            blocks_b.append(np.asarray(self.aggregate_sums(total_b - moved), dtype=float))
        return np.concatenate(blocks_a), np.concatenate(blocks_b)


@dataclass(frozen=True)
class PairedResult:
    """Difference B - A of the compared statistic, its interval and a two-sided p-value."""

    test: str
    difference: float
    ci_low: float
    ci_high: float
    stderr: float
    p_value: float
    method: str
    n: int
    details: dict[str, int] = field(default_factory=dict)


def _tolerance(observed: float) -> float:
    # Replicates equal to the observed statistic up to float noise count as "as extreme".
    return 1e-9 * max(1.0, abs(observed))


def _p_two_sided(deltas: FloatArray, observed: float) -> float:
    """Shifted bootstrap (Efron & Tibshirani 1993, ch. 16): the replicates centred on the
    observed difference approximate its null distribution; both tails count."""
    extreme = np.abs(deltas - observed) >= abs(observed) - _tolerance(observed)
    return (int(extreme.sum()) + 1) / (deltas.size + 1)


def _p_sacrebleu(deltas: FloatArray, observed: float) -> float:
    """sacrebleu 2.x ``_paired_bs_test`` / Moses ``bootstrap-hypothesis-difference-
    significance.pl``: absolute replicate differences centred on their mean, strictly
    greater than the observed absolute difference, with the +1 of ``_compute_p_value``.
    Effectively one-sided: under no difference it rejects about twice as often as alpha."""
    sample = np.abs(deltas)
    centred = sample - sample.mean()
    return (int((centred > abs(observed)).sum()) + 1) / (deltas.size + 1)


BOOTSTRAP_PVALUES: dict[str, Callable[[FloatArray, float], float]] = {
    "two-sided": _p_two_sided,
    "sacrebleu": _p_sacrebleu,
}


def _check_pair(stats_a: npt.ArrayLike, stats_b: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    stats_a, stats_b = np.asarray(stats_a, dtype=float), np.asarray(stats_b, dtype=float)
    if stats_a.ndim != 2 or stats_a.shape != stats_b.shape or stats_a.shape[0] == 0:
        raise ValueError(f"paired statistics must be two non-empty (n, k) arrays of one shape, got {stats_a.shape} and {stats_b.shape}")
    return stats_a, stats_b


def paired_bootstrap(
    stats_a: npt.ArrayLike,
    stats_b: npt.ArrayLike,
    scorer: Scorer,
    *,
    rng: np.random.Generator,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    pvalue: str = "two-sided",
) -> PairedResult:
    """Paired bootstrap (Koehn 2004) over examples: both systems are scored on the same
    resampled examples, so the spread of their difference reflects the pairing.

    Indices are drawn as sacrebleu's ``_paired_bs_test`` draws them
    (``rng.choice(n, size=(B, n), replace=True)``, the same stream as ``rng.integers``), so
    with ``pvalue="sacrebleu"`` and its seed the p-value is sacrebleu's. Two runs with
    identical statistics on every example get p = 1 under either definition (sacrebleu would
    report 1/(B+1) for a system compared with itself).
    """
    stats_a, stats_b = _check_pair(stats_a, stats_b)
    p_function = BOOTSTRAP_PVALUES[pvalue]
    n = stats_a.shape[0]
    observed = scorer.observed(stats_a, stats_b)
    indices = rng.integers(0, n, size=(n_resamples, n))
    deltas = scorer.statistic(scorer.resampled(stats_b, indices)) - scorer.statistic(scorer.resampled(stats_a, indices))
    finite = deltas[np.isfinite(deltas)]
    method = f"paired-bootstrap-B{n_resamples}-p:{pvalue}"
    details = {"n_resamples": n_resamples, "undefined_resamples": int(deltas.size - finite.size)}
    # One example: every resample is the sample, so any difference would look "significant".
    if n < 2 or finite.size == 0 or not np.isfinite(observed):
        nan = float("nan")
        return PairedResult("paired-bootstrap", observed, nan, nan, nan, nan, method, n, details)
    identical = np.array_equal(stats_a, stats_b)
    p_value = 1.0 if identical else p_function(finite, observed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    stderr = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return PairedResult("paired-bootstrap", observed, float(low), float(high), stderr, float(p_value), method, n, details)


def paired_permutation(
    stats_a: npt.ArrayLike,
    stats_b: npt.ArrayLike,
    scorer: Scorer,
    *,
    rng: np.random.Generator,
    n_permutations: int = 10000,
) -> tuple[float, float, dict[str, int]]:
    """Approximate randomization (Noreen 1989; Riezler & Maxwell 2005; sacrebleu's ``ar``):
    under no difference, which system produced each example's output is exchangeable, so
    outputs are swapped per example at random and the corpus statistic recomputed.

    Returns ``(observed difference, p-value, details)``; the p-value counts swaps at least
    as extreme as observed, plus one (so a system against itself gets p = 1).
    """
    stats_a, stats_b = _check_pair(stats_a, stats_b)
    n = stats_a.shape[0]
    observed = scorer.observed(stats_a, stats_b)
    swap = rng.integers(2, size=(n_permutations, n), dtype=bool)
    first, second = scorer.swapped(stats_a, stats_b, swap)
    deltas = scorer.statistic(second) - scorer.statistic(first)
    finite = deltas[np.isfinite(deltas)]
    details = {"n_permutations": n_permutations, "undefined_permutations": int(deltas.size - finite.size)}
    if finite.size == 0 or not np.isfinite(observed):
        return observed, float("nan"), details
    extreme = np.abs(finite) >= abs(observed) - _tolerance(observed)
    return observed, (int(extreme.sum()) + 1) / (finite.size + 1), details


@dataclass(frozen=True)
class McNemarResult:
    only_a: int  # examples A gets right and B wrong
    only_b: int  # examples B gets right and A wrong
    p_value: float


def mcnemar_exact(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike) -> McNemarResult:
    """McNemar's test (1947), exact form: under no difference the discordant examples split
    as Binomial(b + c, 1/2). Two-sided p = min(1, 2 * P(X <= min(b, c))), as
    ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(f"paired outcomes must be two 1-d arrays of one length, got {correct_a.shape} and {correct_b.shape}")
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((~correct_a & correct_b).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return McNemarResult(only_a, only_b, 1.0)
    p_value = min(1.0, 2.0 * float(scipy_stats.binom.cdf(min(only_a, only_b), discordant, 0.5)))
    return McNemarResult(only_a, only_b, p_value)


def _holm(p: FloatArray) -> FloatArray:
    """Holm (1979) step-down: controls the family-wise error rate under any dependence."""
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _benjamini_hochberg(p: FloatArray) -> FloatArray:
    """Benjamini & Hochberg (1995) step-up: controls the false discovery rate."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


CORRECTIONS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "holm": _holm,
    "bh": _benjamini_hochberg,
    "none": lambda p: p.copy(),
}


def adjust_pvalues(p_values: npt.ArrayLike, method: str) -> FloatArray:
    """Adjusted p-values for a family of tests (``statsmodels`` ``multipletests``'s
    ``pvals_corrected`` for ``holm`` and ``fdr_bh``). NaN entries are not tests: they stay
    NaN and do not count towards the family size."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction '{method}' (known: {', '.join(CORRECTIONS)})")
    p_values = np.asarray(p_values, dtype=float)
    out = np.full(p_values.shape, np.nan)
    tested = np.isfinite(p_values)
    if tested.any():
        out[tested] = CORRECTIONS[method](p_values[tested])
    return out
