"""Decision-grade gate checks: non-inferiority and equivalence against a baseline, and the
minimum detectable effect (MDE) of every rule with a test.

A rule that fails a drop "only when significant" passes every regression its data are too
thin to see. ``noninferior: {margin: M}`` asks the release question instead: it passes only
when the lower bound of the paired (1 - 2 alpha) interval of candidate minus baseline, in
the metric's better direction, is above -M; ``within: {margin: M}`` (two one-sided tests)
passes only when that interval lies inside (-M, M). Both use
:mod:`evalharness.inference`:

- metrics whose value is the mean of per-example scores (``Metric.mean_of_examples``,
  checked on the data) get the paired t interval of per-example differences, or the CR1
  cluster-robust interval when the task declares clusters;
- other metrics, and distances from an ideal value, get the paired (cluster) bootstrap over
  the metric's sufficient statistics, seeded with the gate's ``--seed`` (in the method).

Every test also reports the smallest true difference it would detect with the policy's
power (0.8) at its alpha, from n and the observed paired variance, and warns when the rule's
threshold is below it. Reads run records only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evalharness.comparison.gate_results import IntervalRecord, MdeRecord
from evalharness.comparison.pairing import (
    PairedTask,
    pair_task,
    task_clusters,
    task_stats,
)
from evalharness.errors import EvalHarnessError, RecordError, UsageError
from evalharness.inference import (
    Estimate,
    Margin,
    cannot_see,
    confidence_for,
    detectable_difference,
    detectable_from,
    equivalence,
    noninferiority,
    paired_bootstrap_difference,
    paired_difference,
)
from evalharness.inference.power import DetectableEffect
from evalharness.inference.rules import UNDETERMINED, Decision
from evalharness.records.record import RunRecord
from evalharness.stats import FloatArray, Scorer
from evalharness.types import finite_or_none

if TYPE_CHECKING:
    from evalharness.comparison.gate_policy import MarginSpec
    from evalharness.metrics.base import Metric

__all__ = ["CheckOutcome", "PairedData", "PairedMetric", "estimate", "mde_for_drop", "statistical_check"]


@dataclass(frozen=True)
class PairedMetric:
    """One metric's per-example statistics in both runs, aligned by example id, over the
    examples that entered it in either run."""

    task: str
    key: str
    metric: Metric
    stats_candidate: FloatArray
    stats_baseline: FloatArray
    ids: list[str]
    clusters: list[str] | None
    ideal: float | None
    higher_is_better: bool
    same_entered: bool

    def scorer(self, *, on_distance: bool) -> Scorer:
        metric = self.metric
        ideal = self.ideal
        transform = (lambda values: np.abs(values - ideal)) if on_distance else None
        return Scorer(metric.aggregate, metric.aggregate_sums if metric.additive else None, transform)

    def value(self, *, baseline: bool, on_distance: bool = False) -> float:
        scorer = self.scorer(on_distance=on_distance)
        stats = self.stats_baseline if baseline else self.stats_candidate
        return float(scorer.statistic(np.array([scorer.value(stats)]))[0])

    def example_scores(self) -> tuple[FloatArray, FloatArray]:
        return self.metric.example_scores(self.stats_candidate), self.metric.example_scores(self.stats_baseline)

    @property
    def mean_of_examples(self) -> bool:
        """Declared by the metric and true of these statistics: the value is the mean of the
        per-example scores over the same examples in both runs."""
        if not getattr(self.metric, "mean_of_examples", False) or not self.same_entered:
            return False
        for stats, scores in zip((self.stats_candidate, self.stats_baseline), self.example_scores()):
            value = float(self.metric.aggregate(stats))
            if not (np.isfinite(scores).all() and math.isclose(value, float(scores.mean()), rel_tol=1e-9, abs_tol=1e-9)):
                return False
        return True


class PairedData:
    """Pairs each task of the two runs once (as ``compare`` does: by example id) and gives
    each metric's aligned statistics and clusters."""

    def __init__(self, candidate: Path, baseline: Path, records: tuple[RunRecord, RunRecord]) -> None:
        self.dirs = (Path(baseline), Path(candidate))  # compare's order: A = baseline, B = candidate
        self.records = (records[1], records[0])
        self._tasks: dict[str, tuple[PairedTask, list[str] | None]] = {}

    def _task(self, task: str) -> tuple[PairedTask, list[str] | None]:
        if task not in self._tasks:
            paired, _ = pair_task(task, self.dirs, self.records)
            clusters, _ = task_clusters(paired, self.dirs)
            self._tasks[task] = (paired, clusters)
        return self._tasks[task]

    def metric(self, task: str, key: str) -> PairedMetric:
        from evalharness.metrics.registry import build_metric

        paired, clusters = self._task(task)
        entry = self.records[1].tasks[task].metrics[key]
        metric = build_metric(entry.metric, entry.settings)
        baseline = task_stats(paired, paired.rows_a, key, self.dirs[0])
        candidate = task_stats(paired, paired.rows_b, key, self.dirs[1])
        if baseline.shape != candidate.shape:
            raise RecordError(f"{task} {key}: per-example statistics have different shapes in the two runs ({baseline.shape} vs {candidate.shape})")
        entered_b, entered_c = metric.entered(baseline), metric.entered(candidate)
        rows = entered_b | entered_c
        if not rows.any():
            raise RecordError(f"{task} {key}: no example entered the metric in either run")
        ids = [example_id for example_id, keep in zip(paired.ids, rows) if keep]
        kept = [cluster for cluster, keep in zip(clusters, rows) if keep] if clusters is not None else None
        ideal = entry.ideal
        return PairedMetric(task, key, metric, candidate[rows], baseline[rows], ids, kept, ideal, entry.higher_is_better,
                            bool(np.array_equal(entered_b, entered_c)))


def estimate(paired: PairedMetric, *, confidence: float, on_distance: bool, seed: int, n_resamples: int) -> Estimate:
    """Interval of candidate minus baseline of the compared quantity (the value, or the
    distance from the ideal), oriented so that positive is better."""
    if not on_distance and paired.mean_of_examples:
        candidate, baseline = paired.example_scores()
        return paired_difference(candidate, baseline, higher_is_better=paired.higher_is_better, confidence=confidence,
                                 bounds=paired.metric.bounds, clusters=paired.clusters, ids=paired.ids)
    result = paired_bootstrap_difference(
        paired.stats_candidate,
        paired.stats_baseline,
        paired.scorer(on_distance=on_distance),
        rng=np.random.default_rng(seed),
        higher_is_better=False if on_distance else paired.higher_is_better,
        confidence=confidence,
        n_resamples=n_resamples,
        clusters=paired.clusters,
        ids=paired.ids,
    )
    return replace(result, method=f"{result.method}|seed:{seed}")


def interval_record(est: Estimate) -> IntervalRecord:
    """The record form of an interval (undefined bounds are null, with the reason in notes)."""
    return {
        "estimate": finite_or_none(est.estimate),
        "low": finite_or_none(est.low),
        "high": finite_or_none(est.high),
        "confidence": est.confidence,
        "stderr": finite_or_none(est.stderr),
        "n": est.n,
        "method": est.method,
        "df": est.df,
        "clusters": est.clusters,
        "notes": list(est.notes),
        "oriented": "candidate minus baseline; positive is better",
    }


def mde_record(effect: DetectableEffect, *, power: float, method: str | None = None) -> MdeRecord:
    record: MdeRecord = {"value": finite_or_none(effect.value), "power": power, "alpha": effect.alpha, "method": method or effect.method}
    if effect.reason:
        record["reason"] = effect.reason
    return record


@dataclass(frozen=True)
class CheckOutcome:
    """A statistical check's outcome, in the fields a gate result records."""

    status: str  # "passed", "failed" or "undetermined"
    detail: str
    interval: IntervalRecord
    margin: float
    verdict: str
    p_value: float | None
    mde: MdeRecord
    mde_warning: str | None


@dataclass(frozen=True)
class StatSettings:
    alpha: float
    power: float
    seed: int
    n_resamples: int
    largest_difference: float  # of the compared quantity (inf when the metric is unbounded)


def _margin(paired: PairedMetric, spec: MarginSpec, *, on_distance: bool) -> float:
    baseline_value = paired.value(baseline=True, on_distance=on_distance)
    return Margin(float(spec.margin), bool(spec.relative)).absolute(baseline_value)


def _outcome(decision: Decision, est: Estimate, mde: MdeRecord, warning: str | None) -> CheckOutcome:
    status = "undetermined" if decision.verdict == UNDETERMINED else "passed" if decision.passed else "failed"
    detail = f"{decision.verdict}: {decision.detail}"
    if est.notes and decision.verdict != UNDETERMINED:
        detail += f" ({'; '.join(est.notes)})"
    return CheckOutcome(status, detail, interval_record(est), decision.margin, decision.verdict, decision.p_value, mde, warning)


def _noninferior(paired: PairedMetric, spec: MarginSpec, settings: StatSettings) -> CheckOutcome:
    on_distance = paired.ideal is not None
    margin = _margin(paired, spec, on_distance=on_distance)
    est = estimate(paired, confidence=confidence_for(settings.alpha), on_distance=on_distance, seed=settings.seed, n_resamples=settings.n_resamples)
    largest = settings.largest_difference if math.isfinite(settings.largest_difference) else None
    decision = noninferiority(est, margin=margin, alpha=settings.alpha, largest_difference=largest)
    effect = detectable_from(est, alpha=settings.alpha, power=settings.power)
    warning = cannot_see(effect, margin, what="drop")
    if warning and math.isfinite(effect.value):
        warning += f": with margin {margin:.4g} a candidate as good as the baseline passes with probability below {settings.power:g}"
    return _outcome(decision, est, mde_record(effect, power=settings.power), warning)


def _within(paired: PairedMetric, spec: MarginSpec, settings: StatSettings) -> CheckOutcome:
    margin = _margin(paired, spec, on_distance=False)
    if margin >= settings.largest_difference:
        raise UsageError(f"within margin {margin:.4g} is at least the largest possible change {settings.largest_difference:g}: the rule would pass any candidate")
    est = estimate(paired, confidence=confidence_for(settings.alpha), on_distance=False, seed=settings.seed, n_resamples=settings.n_resamples)
    decision = equivalence(est, margin=margin, alpha=settings.alpha)
    # Two one-sided tests at alpha, each with power (1 + power) / 2, show equivalence of a
    # candidate with no true difference with probability `power`.
    effect = detectable_difference(est.stderr, n=est.n, alpha=settings.alpha, power=(1 + settings.power) / 2, df=est.df)
    if not math.isfinite(est.stderr) and est.notes:
        effect = replace(effect, reason="; ".join(est.notes))
    method = effect.method.replace("mde-", "mde-tost-", 1).replace(f"power:{(1 + settings.power) / 2:g}", f"power:{settings.power:g}")
    warning = None
    if not math.isfinite(effect.value):
        warning = f"this gate cannot tell which change it can rule out with {effect.n} examples: {effect.reason}"
    elif margin < effect.value:
        warning = (
            f"this gate cannot show equivalence within {margin:.4g} with {effect.n} examples; it can show {effect.value:.4g} "
            f"(power {settings.power:g} at alpha {settings.alpha:g})"
        )
    return _outcome(decision, est, mde_record(effect, power=settings.power, method=method), warning)


_TESTS = {"noninferior": _noninferior, "within": _within}


def statistical_check(check: str, paired: PairedMetric, spec: MarginSpec, settings: StatSettings) -> CheckOutcome:
    """Run the ``noninferior`` or ``within`` check with margin ``spec``."""
    return _TESTS[check](paired, spec, settings)


def mde_for_drop(paired: PairedMetric, threshold: float, settings: StatSettings) -> tuple[MdeRecord, str | None]:
    """MDE of a ``significant: true`` regression rule (a two-sided paired test at alpha) and
    the warning when its limit ``threshold`` (in the compared quantity's units) is below it.
    When no interval can be made, the MDE is null with the reason (the rule's own test decides)."""
    on_distance = paired.ideal is not None
    try:
        est = estimate(paired, confidence=1 - settings.alpha, on_distance=on_distance, seed=settings.seed, n_resamples=settings.n_resamples)
        effect = detectable_from(est, alpha=settings.alpha, power=settings.power, two_sided=True)
    except EvalHarnessError as exc:
        return {"value": None, "power": settings.power, "alpha": settings.alpha, "method": "", "reason": str(exc)}, None
    what = "distance increase" if on_distance else "drop"
    return mde_record(effect, power=settings.power), cannot_see(effect, threshold, what=what)
