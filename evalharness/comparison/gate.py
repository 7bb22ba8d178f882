"""Release gates: check a candidate run against a policy of rules, optionally against a baseline.

A policy (:mod:`evalharness.comparison.gate_policy`) lists rules per task and metric:
absolute bounds, the largest allowed regression against the baseline (absolute or relative;
optionally only when the paired test of :mod:`evalharness.comparison.compare` finds it
significant), and bias rules on the distance from a metric's ``ideal`` value. Reads run
records only, never models.

Outcome: every rule was evaluated and passed (exit 0); some rule failed (1); the policy or
runs are unusable, or a rule could not be evaluated (no baseline for a baseline rule, task or
metric absent, value undefined), or nothing was checked at all (2). A rule marked
``optional: true`` that cannot be evaluated is reported as skipped instead. A gate never
passes a rule it did not check.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.comparison.compare import (
    CompareSettings,
    Comparison,
    MetricComparison,
    compare_runs,
)
from evalharness.comparison.gate_policy import (
    BASELINE_CHECKS,
    GatePolicy,
    GateRule,
    LoadedPolicy,
    load_policy,
    validate_policy,
)
from evalharness.errors import did_you_mean
from evalharness.records.record import MetricEntry, RunRecord, TaskEntry, load_record
from evalharness.stats import adjust_pvalues

__all__ = [
    "CHECKS",
    "CheckResult",
    "GatePolicy",
    "GateReport",
    "GateRule",
    "LoadedPolicy",
    "RuleResult",
    "evaluate_gate",
    "load_policy",
]

PASSED, FAILED, NOT_EVALUATED, SKIPPED = "passed", "failed", "not evaluated", "skipped"
STATUSES = (PASSED, FAILED, NOT_EVALUATED, SKIPPED)


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    check: str
    description: str
    status: str
    detail: str
    candidate: float | None = None
    baseline: float | None = None
    change: float | None = None
    p_value: float | None = None
    n: int | None = None  # examples that entered the metric (compared examples for baseline checks)


@dataclass(frozen=True)
class RuleResult:
    name: str
    task: str
    metric: str | None
    where: str
    checks: list[CheckResult]

    @property
    def status(self) -> str:
        """The worst status of its checks: failed, not evaluated, skipped, passed."""
        statuses = {check.status for check in self.checks}
        return next(status for status in (FAILED, NOT_EVALUATED, SKIPPED, PASSED) if status in statuses)


@dataclass(frozen=True)
class GateReport:
    """What :func:`evaluate_gate` found; rendered by :mod:`evalharness.comparison.gate_report`."""

    policy_path: str
    policy: GatePolicy
    candidate: dict[str, Any]
    baseline: dict[str, Any] | None
    rules: list[RuleResult]
    settings: CompareSettings
    notes: list[str] = field(default_factory=list)

    def _checks(self) -> list[CheckResult]:
        return [check for rule in self.rules for check in rule.checks]

    @property
    def checked_anything(self) -> bool:
        return any(check.status in (PASSED, FAILED) for check in self._checks())

    @property
    def exit_code(self) -> int:
        """0 every rule evaluated and passed; 1 a rule failed; 2 a rule could not be evaluated
        or nothing was checked (every rule skipped)."""
        statuses = {check.status for check in self._checks()}
        if NOT_EVALUATED in statuses or not self.checked_anything:
            return 2
        return 1 if FAILED in statuses else 0

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def verdict(self) -> str:
        return {0: "passed", 1: "failed", 2: "not evaluated"}[self.exit_code]

    def problems(self) -> list[str]:
        """Why the gate exits 2: each rule it could not evaluate, or that it checked nothing."""
        found = [
            f"{rule.where}: {rule.name}: {check.check}: {check.detail}"
            for rule in self.rules
            for check in rule.checks
            if check.status == NOT_EVALUATED
        ]
        if not self.checked_anything:
            found.append(f"{self.policy_path}: every rule was skipped, so the gate checked nothing")
        return found

    def counts(self) -> dict[str, int]:
        statuses = [rule.status for rule in self.rules]
        return {status: statuses.count(status) for status in STATUSES}


# -- checks: one small function per kind ------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    rule: GateRule
    alpha: float
    entry: MetricEntry
    comparison: MetricComparison | None  # present whenever a baseline check runs
    p_adjusted: float | None

    def describe(self, check: str) -> str:
        return describe_check(self.rule, check, self.alpha)

    @property
    def ideal(self) -> float:
        return self.entry.ideal  # validate_policy allows distance checks only on metrics with one


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.2f}"


def _check_min(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.entry.value >= limit
    return CheckResult("min", ctx.describe("min"), PASSED if ok else FAILED, f"{_fmt(ctx.entry.value)} {'≥' if ok else '<'} {limit:g}", ctx.entry.value, n=ctx.entry.n)


def _check_max(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.entry.value <= limit
    return CheckResult("max", ctx.describe("max"), PASSED if ok else FAILED, f"{_fmt(ctx.entry.value)} {'≤' if ok else '>'} {limit:g}", ctx.entry.value, n=ctx.entry.n)


def _check_distance(ctx: _Context, limit: float) -> CheckResult:
    distance = abs(ctx.entry.value - ctx.ideal)
    ok = distance <= limit
    detail = f"|{_fmt(ctx.entry.value)} - {ctx.ideal:g}| = {_fmt(distance)} {'≤' if ok else '>'} {limit:g}"
    return CheckResult("max_distance_from_ideal", ctx.describe("max_distance_from_ideal"), PASSED if ok else FAILED, detail, ctx.entry.value, n=ctx.entry.n)


def _regression(ctx: _Context, check: str, amount: float, limit: float, unit: str) -> CheckResult:
    """A regression check: fails when ``amount`` exceeds ``limit`` (and, for ``significant``
    rules, the paired test's adjusted p-value is below alpha). An observed change within the
    limit is described as a change, not as an improvement or a regression: only the paired
    test could say which."""
    comparison = ctx.comparison
    description = ctx.describe(check)
    values = {"candidate": comparison.value_b, "baseline": comparison.value_a, "change": comparison.change, "p_value": ctx.p_adjusted, "n": comparison.n}
    shown = f"{_fmt(amount)}{unit}"
    if amount <= limit:
        detail = f"drop {shown} within {_fmt(limit)}{unit}" if amount > 0 else f"no drop ({_fmt(-amount)}{unit} the other way)" if amount < 0 else "no change"
        return CheckResult(check, description, PASSED, detail, **values)
    if not ctx.rule.significant:
        return CheckResult(check, description, FAILED, f"regression {shown} > {_fmt(limit)}{unit}", **values)
    if ctx.p_adjusted is None:
        return CheckResult(check, description, FAILED, f"regression {shown} > {_fmt(limit)}{unit}; significance undefined", **values)
    significant = ctx.p_adjusted < ctx.alpha
    verdict = f"{'significant' if significant else 'not significant'} (p adj. {ctx.p_adjusted:.3g} {'<' if significant else '≥'} {ctx.alpha:g})"
    return CheckResult(check, description, FAILED if significant else PASSED, f"regression {shown} > {_fmt(limit)}{unit}, {verdict}", **values)


def _check_max_drop(ctx: _Context, limit: float) -> CheckResult:
    return _regression(ctx, "max_drop", ctx.comparison.worsening, limit, "")


def _check_max_drop_relative(ctx: _Context, limit: float) -> CheckResult:
    worsening, base = ctx.comparison.worsening, ctx.comparison.value_a
    relative = worsening / abs(base) if base else (math.inf if worsening > 0 else 0.0)
    return _regression(ctx, "max_drop_relative", 100 * relative, 100 * limit, "%")


def _check_distance_increase(ctx: _Context, limit: float) -> CheckResult:
    return _regression(ctx, "max_distance_increase", ctx.comparison.change, limit, "")


@dataclass(frozen=True)
class Check:
    run: Callable[[_Context, float], CheckResult]
    description: str  # formatted with the limit (and, for regressions, the significance clause)


# One per name in gate_policy.CHECK_NAMES; those in BASELINE_CHECKS need a baseline.
CHECKS: dict[str, Check] = {
    "min": Check(_check_min, "value ≥ {limit:g}"),
    "max": Check(_check_max, "value ≤ {limit:g}"),
    "max_distance_from_ideal": Check(_check_distance, "distance from ideal ≤ {limit:g}"),
    "max_drop": Check(_check_max_drop, "drop vs baseline ≤ {limit:g}{significance}"),
    "max_drop_relative": Check(_check_max_drop_relative, "drop vs baseline ≤ {limit:.1%}{significance}"),
    "max_distance_increase": Check(_check_distance_increase, "distance from ideal grows ≤ {limit:g}{significance}"),
}


def describe_check(rule: GateRule, name: str, alpha: float) -> str:
    """A check as shown in CI, e.g. ``drop vs baseline ≤ 1 if significant at 0.05``."""
    significance = f" if significant at {alpha:g}" if rule.significant else ""
    return CHECKS[name].description.format(limit=getattr(rule, name), significance=significance)


# -- evaluation -------------------------------------------------------------------------------


def _unevaluated(rule: GateRule) -> str:
    return SKIPPED if rule.is_optional else NOT_EVALUATED


def _absent(rule: GateRule, where: str, reason: str) -> RuleResult:
    check = CheckResult("present", "task and metric in the candidate run", _unevaluated(rule), reason)
    return RuleResult(rule.label, rule.task, rule.metric, where, [check])


def _find_entry(rule: GateRule, where: str, candidate: RunRecord) -> MetricEntry | RuleResult:
    """The candidate's entry for the rule, or why the rule cannot be evaluated."""
    task: TaskEntry | None = candidate.tasks.get(rule.task)
    if task is None:
        why = candidate.skipped.get(rule.task)
        reason = f"task '{rule.task}' is not in the candidate run" + (f" (skipped: {why.splitlines()[0]})" if why else did_you_mean(rule.task, candidate.tasks))
        return _absent(rule, where, reason)
    if rule.metric not in task.metrics:
        reason = f"metric '{rule.metric}' is not in the candidate's {rule.task} (has: {', '.join(task.metrics)}){did_you_mean(rule.metric, task.metrics)}"
        return _absent(rule, where, reason)
    entry = task.metrics[rule.metric]
    if entry.value is None:
        return _absent(rule, where, f"{rule.task} {rule.metric} is undefined (null) in the candidate run")
    return entry


def _needs_baseline(rule: GateRule) -> bool:
    return bool(BASELINE_CHECKS & set(rule.checks()))


def _baseline_targets(policy: GatePolicy, candidate: RunRecord, baseline: RunRecord | None) -> dict[str, list[str]]:
    """Task -> metric keys that baseline checks need compared (present in both runs)."""
    targets: dict[str, list[str]] = {}
    if baseline is None:
        return targets
    for rule in policy.rules:
        in_both = all(rule.task in run.tasks and rule.metric in run.tasks[rule.task].metrics for run in (candidate, baseline))
        if _needs_baseline(rule) and in_both and rule.metric not in targets.setdefault(rule.task, []):
            targets[rule.task].append(rule.metric)
    return {task: metrics for task, metrics in targets.items() if metrics}


def _adjusted(policy: GatePolicy, comparison: Comparison | None) -> dict[tuple[str, str], float | None]:
    """Adjusted p-values across the comparisons that 'significant' rules test (one each)."""
    if comparison is None:
        return {}
    keys = sorted({(r.task, r.metric) for r in policy.rules if r.significant and comparison.get(r.task, r.metric)})
    raw = [comparison.get(*key).p_value for key in keys]
    adjusted = adjust_pvalues(np.array([np.nan if p is None else p for p in raw], dtype=float), policy.correction)
    return {key: (float(p) if math.isfinite(p) else None) for key, p in zip(keys, adjusted)}


def _why_no_comparison(rule: GateRule, baseline: RunRecord | None, comparison: Comparison | None) -> str | None:
    """Why the rule's baseline checks cannot run (None: they can)."""
    if baseline is None:
        return "no baseline run given (--baseline)"
    task = baseline.tasks.get(rule.task)
    if task is None or rule.metric not in task.metrics:
        return f"the baseline run has no {rule.task} {rule.metric}"
    if task.metrics[rule.metric].value is None:
        return f"{rule.task} {rule.metric} is undefined (null) in the baseline run"
    found = comparison.get(rule.task, rule.metric) if comparison else None
    if found is None:
        reasons = comparison.not_compared if comparison else []
        reason = next((n["reason"] for n in reasons if (n["task"], n["metric"]) == (rule.task, rule.metric)), "not compared")
        return f"cannot compare {rule.task} {rule.metric} with the baseline: {reason}"
    if found.change is None:
        return "the difference from the baseline is undefined"
    return None


def _evaluate_rule(
    rule: GateRule,
    where: str,
    policy: GatePolicy,
    records: tuple[RunRecord, RunRecord | None],
    comparison: Comparison | None,
    adjusted: dict[tuple[str, str], float | None],
) -> RuleResult:
    found = _find_entry(rule, where, records[0])
    if isinstance(found, RuleResult):
        return found
    missing = _why_no_comparison(rule, records[1], comparison) if _needs_baseline(rule) else None
    alpha = rule.alpha if rule.alpha is not None else policy.alpha
    metric_comparison = comparison.get(rule.task, rule.metric) if comparison else None
    ctx = _Context(rule, alpha, found, metric_comparison, adjusted.get((rule.task, rule.metric)))
    results = []
    for name in rule.checks():
        if name in BASELINE_CHECKS and missing is not None:
            results.append(CheckResult(name, ctx.describe(name), _unevaluated(rule), missing, found.value, n=found.n))
        else:
            results.append(CHECKS[name].run(ctx, getattr(rule, name)))
    return RuleResult(rule.label, rule.task, rule.metric, where, results)


def _required_task(task: str, where: str, candidate: RunRecord) -> RuleResult:
    if task in candidate.tasks:
        check = CheckResult("required", "task present in the candidate run", PASSED, f"{task} present ({candidate.tasks[task].n_examples} examples)")
    else:
        why = candidate.skipped.get(task)
        reason = f"task '{task}' is not in the candidate run" + (f" (skipped: {why.splitlines()[0]})" if why else "")
        check = CheckResult("required", "task present in the candidate run", FAILED, reason)
    return RuleResult(f"required task {task}", task, None, where, [check])


def _run_info(path: Path, record: RunRecord) -> dict[str, Any]:
    return {"path": str(path), "run_id": record.run_id, "model": record.model.name, "fingerprint": record.model.fingerprint}


def evaluate_gate(
    policy: LoadedPolicy | str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    baseline: str | os.PathLike[str] | None = None,
    *,
    settings: CompareSettings | None = None,
    tasks_dirs: Sequence[str | os.PathLike[str]] = (),
) -> GateReport:
    """Check ``candidate`` against every rule of ``policy`` (and ``baseline`` when given).

    The policy is first validated against the task registry (built-in tasks plus
    ``tasks_dirs``) and both runs; any problem raises :class:`SpecError` before anything is
    evaluated. ``settings`` chooses the paired tests (seed, resamples,
    ``allow_different_data``); the significance level and multiple-comparison correction
    come from the policy.
    """
    from evalharness.spec.catalog import TaskCatalog

    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    settings = settings or CompareSettings()
    candidate_record = load_record(candidate)
    baseline_record = load_record(baseline) if baseline is not None else None
    validate_policy(loaded, TaskCatalog(tasks_dirs), (candidate_record, baseline_record))
    targets = _baseline_targets(loaded.policy, candidate_record, baseline_record)
    comparison = None
    if targets:
        # The gate corrects over its own family (the 'significant' rules), not over compare's.
        comparison = compare_runs(baseline, candidate, settings=replace(settings, correction="none"), metrics=targets)
    adjusted = _adjusted(loaded.policy, comparison)
    records = (candidate_record, baseline_record)
    results = [
        _evaluate_rule(rule, loaded.where("rules", index), loaded.policy, records, comparison, adjusted)
        for index, rule in enumerate(loaded.policy.rules)
    ]
    results += [
        _required_task(task, loaded.where("required_tasks", index), candidate_record)
        for index, task in enumerate(loaded.policy.required_tasks)
    ]
    notes = []
    if comparison is not None:
        notes += [f"{task.task}: {note}" for task in comparison.tasks for note in task.notes]
        notes += [f"{m.task} {m.metric}: {note}" for m in comparison.metrics for note in m.notes]
    if adjusted:
        tests = sorted({comparison.get(*key).method for key in adjusted})
        notes.append(
            f"significance: {len(adjusted)} paired test(s) ({'; '.join(tests)}), correction {loaded.policy.correction}, "
            f"seed {settings.seed}"
        )
    return GateReport(
        policy_path=str(loaded.path),
        policy=loaded.policy,
        candidate=_run_info(Path(candidate), candidate_record),
        baseline=_run_info(Path(baseline), baseline_record) if baseline_record is not None else None,
        rules=results,
        settings=settings,
        notes=notes,
    )
