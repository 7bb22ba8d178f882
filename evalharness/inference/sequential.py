"""Sequential rules: decide on a prefix of the examples, in a random order, and stop early.

Examples are scored in a seeded random order, in batches; after each batch every rule
checks its anytime-valid confidence sequence (:mod:`evalharness.inference.betting`) at its
threshold and is *settled* as soon as the sequence lies wholly on one side. Looking after
every batch costs nothing in error rate (Ville's inequality), unlike repeating a fixed-n
test, which inflates it. Two targets:

- ``population``: the examples are i.i.d. draws and the rule is about the population
  mean, as a non-inferiority test is. alpha is spent in two parts (a union bound):
  ``(1 - final_share) alpha`` on the anytime-valid sequence, and, if the rule is still
  unsettled when the examples run out, ``final_share alpha`` on the fixed-n t test of all of
  them (a one-sided test read off the two-sided t interval), so that a rule the sequence
  could not settle still gets nearly the full-data test's power. ``final_share=0`` is the
  pure sequential rule: unsettled at the end, it fails.
- ``test-set``: the rule is about the mean over the whole test set (the full-data value
  that a point-estimate rule such as ``min`` compares), estimated while sampling it without
  replacement; at the end the value is known exactly, so the decision is the full-data
  decision, and an early stop disagrees with it with probability at most alpha.

Each side of the sequence is at its level (two-sided confidence 1 - 2 level): passing when
the rule is false, and failing when it is true, each have probability at most alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats as scipy_stats

from evalharness.errors import MetricInputError, UsageError
from evalharness.inference.betting import confidence_bounds, log_capital
from evalharness.inference.checks import check_alpha, check_flag, check_margin, scores
from evalharness.stats import BoolArray, FloatArray, IntArray

__all__ = [
    "SequentialDecision",
    "SequentialRule",
    "SequentialRun",
    "checkpoints",
    "decide",
    "final_test_passes",
    "run_sequential",
    "settlement",
]

PASSED, FAILED, NOT_SETTLED = "passed", "failed", "not settled"


@dataclass(frozen=True)
class SequentialRule:
    """Is the mean of per-example scores above (or, with ``above=False``, below)
    ``threshold``? ``bounds`` is the range every score lies in (the betting sequence needs
    it); ``inclusive`` makes the test-set comparison >= (<=) rather than strict;
    ``final_share`` is the part of alpha kept for the final fixed-n test (population
    target only)."""

    threshold: float
    bounds: tuple[float, float]
    alpha: float
    above: bool = True
    target: Literal["population", "test-set"] = "population"
    inclusive: bool = False
    label: str = ""
    final_share: float = 0.5

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_flag(self.above, "above")
        check_flag(self.inclusive, "inclusive")
        if isinstance(self.final_share, bool) or not isinstance(self.final_share, (int, float)) or not 0 <= self.final_share < 1:
            raise UsageError(f"final_share must be a number in [0, 1), got {self.final_share!r}")
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UsageError(f"{self.label or 'sequential rule'}: the scores need finite bounds low < high, got {self.bounds}")
        if not low < self.threshold < high:
            raise UsageError(
                f"{self.label or 'sequential rule'}: threshold {self.threshold:g} is not strictly inside the scores' range "
                f"[{low:g}, {high:g}]: the rule would pass or fail without looking at any example"
            )
        if self.target not in ("population", "test-set"):
            raise UsageError(f"target must be 'population' or 'test-set', got {self.target!r}")

    @classmethod
    def noninferiority(
        cls, *, margin: float, bounds: tuple[float, float], alpha: float, label: str = "", final_share: float = 0.5
    ) -> SequentialRule:
        """Paired differences (candidate minus baseline, in the better direction) of scores
        in ``bounds``: passes when the mean difference is shown to be above -margin."""
        margin = check_margin(margin)
        span = bounds[1] - bounds[0]
        return cls(-margin, (-span, span), alpha, above=True, target="population", label=label, final_share=final_share)

    @property
    def sequence_alpha(self) -> float:
        """The level each side of the confidence sequence is run at."""
        return self.alpha * (1 - self.final_share) if self.population else self.alpha

    @property
    def final_alpha(self) -> float:
        """The level of the fixed-n test when the examples run out (0: none)."""
        return self.alpha * self.final_share if self.population else 0.0

    def scaled(self, values: FloatArray) -> FloatArray:
        """Scores mapped to [0, 1] so that passing means a high mean."""
        low, high = self.bounds
        return (values - low) / (high - low) if self.above else (high - values) / (high - low)

    def unscaled(self, value: float) -> float:
        low, high = self.bounds
        return low + value * (high - low) if self.above else high - value * (high - low)

    @property
    def scaled_threshold(self) -> float:
        return float(self.scaled(np.asarray(self.threshold, dtype=float)))

    @property
    def population(self) -> bool:
        return self.target == "population"

    def method(self) -> str:
        base = f"betting-cs-{'iid' if self.population else 'wor'}|alpha:{self.alpha:g}|bounds:{self.bounds[0]:g},{self.bounds[1]:g}"
        return base + (f"|final-t-share:{self.final_share:g}" if self.final_alpha else "")


@dataclass(frozen=True)
class SequentialDecision:
    """One rule's decision and the confidence sequence (confidence 1 - 2 alpha) when it
    was made."""

    label: str
    verdict: str
    passed: bool
    settled: bool
    examples_used: int
    examples_total: int
    estimate: float
    low: float
    high: float
    method: str

    @property
    def saving(self) -> float:
        """Fraction of the examples not needed."""
        return 1 - self.examples_used / self.examples_total


def checkpoints(total: int, batch_size: int) -> IntArray:
    """Numbers of examples seen after each batch: batch_size, 2 batch_size, ..., total."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size must be a positive integer, got {batch_size!r}")
    return np.unique(np.append(np.arange(batch_size, total, batch_size), total))


def settlement(
    x: FloatArray, threshold: float, *, alpha: float, at: IntArray, population: int | None = None
) -> tuple[IntArray, IntArray]:
    """For rows of [0, 1] observations (in processing order), the first checkpoint in ``at``
    where the sequence settles "mean > threshold" (+1) or "mean < threshold" (-1).

    Returns ``(index into at, outcome)`` per row; outcome 0 (index len(at) - 1) when
    never settled. The capital at a checkpoint uses only the observations before it, so
    computing the whole path at once is the same as checking batch by batch.
    """
    level = math.log(1 / alpha)
    columns = np.asarray(at) - 1
    up = log_capital(x, threshold, alpha=alpha, side=+1, population=population)[..., columns] >= level
    down = log_capital(x, threshold, alpha=alpha, side=-1, population=population)[..., columns] >= level
    settled = up | down
    first = np.where(settled.any(axis=-1), settled.argmax(axis=-1), len(columns) - 1)
    hit_up = np.take_along_axis(up, first[..., None], axis=-1)[..., 0]
    hit_down = np.take_along_axis(down, first[..., None], axis=-1)[..., 0]
    outcome = np.where(hit_up, 1, np.where(hit_down, -1, 0))
    return first, outcome


def _decision(rule: SequentialRule, values: FloatArray, used: int, total: int, outcome: int) -> SequentialDecision:
    seen = values[:used]
    x = rule.scaled(seen)
    population = None if rule.population else total
    if not rule.population and used == total:
        mean = float(seen.mean())
        passed = (mean >= rule.threshold if rule.inclusive else mean > rule.threshold) if rule.above else (
            mean <= rule.threshold if rule.inclusive else mean < rule.threshold)
        return SequentialDecision(rule.label, PASSED if passed else FAILED, passed, True, used, total, mean, mean, mean, rule.method())
    if outcome == 0 and used == total and rule.final_alpha:
        return _final_test(rule, seen)
    low, high = confidence_bounds(x, alpha=rule.sequence_alpha, population=population)
    bounds = sorted((rule.unscaled(low), rule.unscaled(high)))
    verdict = {1: PASSED, -1: FAILED, 0: NOT_SETTLED}[outcome]
    return SequentialDecision(rule.label, verdict, outcome == 1, outcome != 0, used, total, float(seen.mean()), bounds[0], bounds[1], rule.method())


def final_test_passes(values: FloatArray, threshold: float, *, alpha: float, above: bool = True) -> BoolArray:
    """The fixed-n decision on rows of values: the one-sided bound of the (1 - 2 alpha) t
    interval beyond ``threshold``. Rows without variance pass only on a t interval, so never."""
    n = values.shape[-1]
    mean = values.mean(axis=-1)
    half = scipy_stats.t.ppf(1 - alpha, n - 1) * values.std(axis=-1, ddof=1) / math.sqrt(n)
    with np.errstate(invalid="ignore"):
        return (mean - half > threshold) & (half > 0) if above else (mean + half < threshold) & (half > 0)


def _final_test(rule: SequentialRule, values: FloatArray) -> SequentialDecision:
    n, mean = values.size, float(values.mean())
    half = float(scipy_stats.t.ppf(1 - rule.final_alpha, n - 1) * values.std(ddof=1) / math.sqrt(n))
    passed = bool(final_test_passes(values, rule.threshold, alpha=rule.final_alpha, above=rule.above))
    verdict = PASSED if passed else FAILED
    method = rule.method() + f"|final:t-alpha:{rule.final_alpha:g}"
    return SequentialDecision(rule.label, verdict, passed, True, n, n, mean, mean - half, mean + half, method)


def decide(rule: SequentialRule, seen: object, *, total: int, ids: Sequence[object] | None = None) -> SequentialDecision:
    """The rule's state after the examples ``seen`` so far (in the order they were scored,
    which must be a random order; see :func:`run_sequential`). Call once per batch and
    stop checking a rule once it is settled."""
    values = scores(seen, name=rule.label or "scores", ids=ids, bounds=rule.bounds)
    if values.size > total:
        raise MetricInputError(f"{rule.label or 'scores'}: {values.size} scores seen but the test set has {total} examples")
    population = None if rule.population else total
    _, outcome = settlement(rule.scaled(values)[None, :], rule.scaled_threshold, alpha=rule.sequence_alpha,
                            at=np.array([values.size]), population=population)
    return _decision(rule, values, values.size, total, int(outcome[0]))


@dataclass(frozen=True)
class SequentialRun:
    """Decisions of several rules on one ordering of the examples; the run stops when every
    rule is settled."""

    decisions: tuple[SequentialDecision, ...]
    examples_used: int
    examples_total: int
    batch_size: int
    order: IntArray = field(repr=False)

    @property
    def saving(self) -> float:
        return 1 - self.examples_used / self.examples_total

    @property
    def passed(self) -> bool:
        return all(decision.passed for decision in self.decisions)


def run_sequential(
    rules: Sequence[tuple[SequentialRule, object]],
    *,
    batch_size: int,
    rng: np.random.Generator,
    ids: Sequence[object] | None = None,
) -> SequentialRun:
    """Process the examples in a random order (``rng.permutation``) in batches; each rule is
    decided at its first settled checkpoint, and the run uses the examples up to the last
    one. ``rules`` pairs each rule with its per-example scores on the same examples, aligned
    (for a paired rule, the per-example differences in the better direction)."""
    if not rules:
        raise UsageError("a sequential run needs at least one rule")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded numpy.random.Generator, got {type(rng).__name__}")
    arrays = [scores(values, name=rule.label or "scores", ids=ids, bounds=rule.bounds) for rule, values in rules]
    total = arrays[0].size
    if any(array.size != total for array in arrays):
        raise MetricInputError(f"sequential rules: score arrays of different lengths {[a.size for a in arrays]}; align them by example id")
    order = rng.permutation(total)
    at = checkpoints(total, batch_size)
    decisions = []
    for (rule, _), values in zip(rules, arrays):
        ordered = values[order]
        population = None if rule.population else total
        first, outcome = settlement(rule.scaled(ordered)[None, :], rule.scaled_threshold, alpha=rule.sequence_alpha, at=at, population=population)
        decisions.append(_decision(rule, ordered, int(at[first[0]]), total, int(outcome[0])))
    used = max(decision.examples_used for decision in decisions)
    return SequentialRun(tuple(decisions), used, total, batch_size, order)
