"""Release gates: check a candidate run against a policy of rules, optionally against a baseline.

A policy (YAML, validated like task specs: strict types, unknown keys rejected, errors as
``file:line: field: problem``) lists rules per task and metric: absolute bounds, the largest
allowed regression against the baseline (absolute or relative; optionally only when the
paired test of :mod:`evalharness.comparison.compare` finds it significant), and bias rules on the
distance from a metric's ``ideal`` value. Reads run records only, never models.

Outcome: every rule passes (exit 0), some rule fails (1), or the policy or runs are unusable
(2: raised as project errors). Rules that need a baseline are reported as not evaluated
when none is given, never silently passed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from evalharness.comparison.compare import (
    CompareSettings,
    Comparison,
    MetricComparison,
    compare_runs,
)
from evalharness.config import Location, StrictModel, load_config, where
from evalharness.errors import SpecError, did_you_mean
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

PASSED, FAILED, NOT_EVALUATED = "passed", "failed", "not evaluated"


class _PolicyModel(StrictModel):
    # Strict types: `max_drop: "1"` or `significant: "yes"` are errors, not guesses.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GateRule(_PolicyModel):
    """Checks on one task's metric (the metric's key in the run record)."""

    task: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    name: str | None = Field(default=None, description="shown in CI; default 'task metric'")
    min: float | None = Field(default=None, description="the value must be at least this")
    max: float | None = Field(default=None, description="the value must be at most this")
    max_drop: float | None = Field(default=None, ge=0, description="largest allowed regression against the baseline, in the metric's units")
    max_drop_relative: float | None = Field(default=None, ge=0, description="largest allowed regression as a fraction of the baseline value")
    max_distance_from_ideal: float | None = Field(default=None, ge=0, description="|value - ideal| must be at most this")
    max_distance_increase: float | None = Field(default=None, ge=0, description="largest allowed increase of |value - ideal| against the baseline")
    significant: bool = Field(default=False, description="fail a regression only when the paired test finds it significant")
    alpha: float | None = Field(default=None, gt=0, lt=1, description="significance level (default: the policy's)")
    required: bool = Field(default=True, description="a task missing from the candidate run fails the rule")

    @model_validator(mode="after")
    def _consistent(self) -> GateRule:
        checks = [name for name in CHECKS if getattr(self, name) is not None]
        if not checks:
            raise ValueError(f"a rule needs at least one check: {', '.join(CHECKS)}")
        if (self.significant or self.alpha is not None) and not any(CHECKS[name].needs_baseline for name in checks):
            raise ValueError("'significant' and 'alpha' apply to regressions against a baseline: add max_drop, max_drop_relative or max_distance_increase")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.task} {self.metric}"


class GatePolicy(_PolicyModel):
    """A gate policy file."""

    version: Literal[1] = 1
    description: str = ""
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level of 'significant' rules")
    correction: Literal["holm", "bh", "none"] = Field(default="holm", description="multiple-comparison correction across significant rules")
    required_tasks: list[str] = Field(default_factory=list, description="tasks the candidate run must contain")
    rules: list[GateRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> GatePolicy:
        if not self.rules and not self.required_tasks:
            raise ValueError("the policy has no rules and no required_tasks; it would pass anything")
        return self


# -- loading with line numbers ----------------------------------------------------------------


@dataclass(frozen=True)
class LoadedPolicy:
    path: Path
    policy: GatePolicy
    lines: dict[Location, int] = field(default_factory=dict, repr=False)

    def where(self, *loc: Any) -> str:
        return where(str(self.path), self.lines, loc)


def load_policy(path: str | os.PathLike[str]) -> LoadedPolicy:
    """Read and validate a gate policy; every problem is reported as ``file:line: field: ...``."""
    loaded = load_config(path, GatePolicy, what="a gate policy (a mapping with 'rules:')")
    return LoadedPolicy(loaded.path, loaded.value, loaded.lines)


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


@dataclass(frozen=True)
class RuleResult:
    name: str
    task: str
    metric: str | None
    where: str
    checks: list[CheckResult]

    @property
    def status(self) -> str:
        statuses = {check.status for check in self.checks}
        return FAILED if FAILED in statuses else NOT_EVALUATED if NOT_EVALUATED in statuses else PASSED


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

    @property
    def passed(self) -> bool:
        return all(rule.status != FAILED for rule in self.rules)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        statuses = [rule.status for rule in self.rules]
        return {status: statuses.count(status) for status in (PASSED, FAILED, NOT_EVALUATED)}


# -- checks: one small function per kind ------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    rule: GateRule
    index: int
    loaded: LoadedPolicy
    entry: MetricEntry
    baseline: MetricEntry | None
    comparison: MetricComparison | None
    p_adjusted: float | None
    missing_baseline: str | None  # why there is nothing to compare against

    @property
    def alpha(self) -> float:
        return self.rule.alpha if self.rule.alpha is not None else self.loaded.policy.alpha

    def describe(self, check: str) -> str:
        return describe_check(self.rule, check, self.alpha)

    def ideal(self, check: str) -> float:
        if self.entry.ideal is None:
            raise SpecError(
                f"{self.loaded.where('rules', self.index, check)}: metric '{self.rule.metric}' of {self.rule.task} "
                "has no ideal value; use min/max/max_drop"
            )
        return self.entry.ideal


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.2f}"


def _check_min(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.entry.value >= limit
    return CheckResult("min", ctx.describe("min"), PASSED if ok else FAILED, f"{_fmt(ctx.entry.value)} {'≥' if ok else '<'} {limit:g}", ctx.entry.value)


def _check_max(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.entry.value <= limit
    return CheckResult("max", ctx.describe("max"), PASSED if ok else FAILED, f"{_fmt(ctx.entry.value)} {'≤' if ok else '>'} {limit:g}", ctx.entry.value)


def _check_distance(ctx: _Context, limit: float) -> CheckResult:
    ideal = ctx.ideal("max_distance_from_ideal")
    distance = abs(ctx.entry.value - ideal)
    ok = distance <= limit
    detail = f"|{_fmt(ctx.entry.value)} - {ideal:g}| = {_fmt(distance)} {'≤' if ok else '>'} {limit:g}"
    return CheckResult("max_distance_from_ideal", ctx.describe("max_distance_from_ideal"), PASSED if ok else FAILED, detail, ctx.entry.value)


def _regression(ctx: _Context, check: str, amount: float, limit: float, unit: str) -> CheckResult:
    """A regression check: fails when ``amount`` exceeds ``limit`` (and, for ``significant``
    rules, the paired test's adjusted p-value is below alpha)."""
    comparison = ctx.comparison  # present: checks that need it run only when it is
    description = ctx.describe(check)
    values = {"candidate": comparison.value_b, "baseline": comparison.value_a, "change": comparison.change, "p_value": ctx.p_adjusted}
    exceeded = amount > limit
    shown = f"{_fmt(amount)}{unit}"
    if not exceeded:
        detail = f"regression {shown} within {_fmt(limit)}{unit}" if amount > 0 else f"improved by {_fmt(-amount)}{unit}" if amount < 0 else "no change"
        return CheckResult(check, description, PASSED, detail, **values)
    if not ctx.rule.significant:
        return CheckResult(check, description, FAILED, f"regression {shown} > {_fmt(limit)}{unit}", **values)
    if ctx.p_adjusted is None:
        return CheckResult(check, description, FAILED, f"regression {shown} > {_fmt(limit)}{unit}; significance undefined", **values)
    significant = ctx.p_adjusted < ctx.alpha
    verdict = f"{'significant' if significant else 'not significant'} (p adj. {ctx.p_adjusted:.3g} {'<' if significant else '≥'} {ctx.alpha:g})"
    return CheckResult(check, description, FAILED if significant else PASSED, f"regression {shown} > {_fmt(limit)}{unit}, {verdict}", **values)


def _no_ideal_for_drops(ctx: _Context, check: str) -> None:
    if ctx.entry.ideal is not None:
        raise SpecError(
            f"{ctx.loaded.where('rules', ctx.index, check)}: metric '{ctx.rule.metric}' of {ctx.rule.task} has an ideal "
            f"value ({ctx.entry.ideal:g}), so a 'drop' is ambiguous; use max_distance_increase"
        )


def _check_max_drop(ctx: _Context, limit: float) -> CheckResult:
    _no_ideal_for_drops(ctx, "max_drop")
    return _regression(ctx, "max_drop", ctx.comparison.worsening, limit, "")


def _check_max_drop_relative(ctx: _Context, limit: float) -> CheckResult:
    _no_ideal_for_drops(ctx, "max_drop_relative")
    worsening, base = ctx.comparison.worsening, ctx.comparison.value_a
    relative = worsening / abs(base) if base else (math.inf if worsening > 0 else 0.0)
    return _regression(ctx, "max_drop_relative", 100 * relative, 100 * limit, "%")


def _check_distance_increase(ctx: _Context, limit: float) -> CheckResult:
    ctx.ideal("max_distance_increase")
    return _regression(ctx, "max_distance_increase", ctx.comparison.change, limit, "")


@dataclass(frozen=True)
class Check:
    run: Callable[[_Context, float], CheckResult]
    needs_baseline: bool
    description: str  # formatted with the limit (and, for regressions, the significance clause)


CHECKS: dict[str, Check] = {
    "min": Check(_check_min, False, "value ≥ {limit:g}"),
    "max": Check(_check_max, False, "value ≤ {limit:g}"),
    "max_distance_from_ideal": Check(_check_distance, False, "distance from ideal ≤ {limit:g}"),
    "max_drop": Check(_check_max_drop, True, "drop vs baseline ≤ {limit:g}{significance}"),
    "max_drop_relative": Check(_check_max_drop_relative, True, "drop vs baseline ≤ {limit:.1%}{significance}"),
    "max_distance_increase": Check(_check_distance_increase, True, "distance from ideal grows ≤ {limit:g}{significance}"),
}


def describe_check(rule: GateRule, name: str, alpha: float) -> str:
    """A check as shown in CI, e.g. ``drop vs baseline ≤ 1 if significant at 0.05``."""
    significance = f" if significant at {alpha:g}" if rule.significant else ""
    return CHECKS[name].description.format(limit=getattr(rule, name), significance=significance)


# -- evaluation -------------------------------------------------------------------------------


def _missing(rule: GateRule, where: str, reason: str, *, fails: bool) -> RuleResult:
    status = FAILED if fails else NOT_EVALUATED
    return RuleResult(rule.label, rule.task, rule.metric, where, [CheckResult("present", "task and metric in the candidate run", status, reason)])


def _find_entry(rule: GateRule, index: int, loaded: LoadedPolicy, candidate: RunRecord) -> MetricEntry | RuleResult:
    where = loaded.where("rules", index)
    task: TaskEntry | None = candidate.tasks.get(rule.task)
    if task is None:
        why = candidate.skipped.get(rule.task)
        reason = f"task '{rule.task}' is not in the candidate run" + (f" (skipped: {why.splitlines()[0]})" if why else did_you_mean(rule.task, candidate.tasks))
        return _missing(rule, where, reason, fails=rule.required)
    if rule.metric not in task.metrics:
        reason = f"metric '{rule.metric}' is not in the candidate's {rule.task} (has: {', '.join(task.metrics)}){did_you_mean(rule.metric, task.metrics)}"
        return _missing(rule, where, reason, fails=True)
    entry = task.metrics[rule.metric]
    if entry.value is None:
        return _missing(rule, where, f"{rule.task} {rule.metric} is undefined (null) in the candidate run", fails=True)
    return entry


def _baseline_targets(policy: GatePolicy, candidate: RunRecord, baseline: RunRecord | None) -> dict[str, list[str]]:
    """Task -> metric keys that baseline checks need compared (present in both runs)."""
    targets: dict[str, list[str]] = {}
    if baseline is None:
        return targets
    for rule in policy.rules:
        needs = any(getattr(rule, name) is not None and check.needs_baseline for name, check in CHECKS.items())
        in_both = all(rule.task in run.tasks and rule.metric in run.tasks[rule.task].metrics for run in (candidate, baseline))
        if needs and in_both and rule.metric not in targets.setdefault(rule.task, []):
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


def _evaluate_rule(
    rule: GateRule,
    index: int,
    loaded: LoadedPolicy,
    records: tuple[RunRecord, RunRecord | None],
    comparison: Comparison | None,
    adjusted: dict[tuple[str, str], float | None],
) -> RuleResult:
    found = _find_entry(rule, index, loaded, records[0])
    if isinstance(found, RuleResult):
        return found
    baseline_entry, missing = None, None
    if records[1] is None:
        missing = "no baseline run given (--baseline)"
    elif rule.task not in records[1].tasks or rule.metric not in records[1].tasks[rule.task].metrics:
        missing = f"the baseline run has no {rule.task} {rule.metric}"
    else:
        baseline_entry = records[1].tasks[rule.task].metrics[rule.metric]
    metric_comparison = comparison.get(rule.task, rule.metric) if comparison else None
    if baseline_entry is not None and metric_comparison is None:
        reason = next((n["reason"] for n in comparison.not_compared if (n["task"], n["metric"]) == (rule.task, rule.metric)), "not compared")
        raise SpecError(f"{loaded.where('rules', index)}: cannot compare {rule.task} {rule.metric} with the baseline: {reason}")
    if metric_comparison is not None and metric_comparison.change is None:
        missing = "the difference from the baseline is undefined"
    ctx = _Context(rule, index, loaded, found, baseline_entry, metric_comparison, adjusted.get((rule.task, rule.metric)), missing)
    results = []
    for name, check in CHECKS.items():
        limit = getattr(rule, name)
        if limit is None:
            continue
        if check.needs_baseline and ctx.missing_baseline is not None:
            results.append(CheckResult(name, ctx.describe(name), NOT_EVALUATED, ctx.missing_baseline, found.value))
        else:
            results.append(check.run(ctx, limit))
    return RuleResult(rule.label, rule.task, rule.metric, loaded.where("rules", index), results)


def _run_info(path: Path, record: RunRecord) -> dict[str, Any]:
    return {"path": str(path), "run_id": record.run_id, "model": record.model.name, "fingerprint": record.model.fingerprint}


def evaluate_gate(
    policy: LoadedPolicy | str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    baseline: str | os.PathLike[str] | None = None,
    *,
    settings: CompareSettings | None = None,
) -> GateReport:
    """Check ``candidate`` against every rule of ``policy`` (and ``baseline`` when given).

    ``settings`` chooses the paired tests (seed, resamples, ``allow_different_data``); the
    significance level and multiple-comparison correction come from the policy.
    """
    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    settings = settings or CompareSettings()
    candidate_record = load_record(candidate)
    baseline_record = load_record(baseline) if baseline is not None else None
    targets = _baseline_targets(loaded.policy, candidate_record, baseline_record)
    comparison = None
    if targets:
        # The gate corrects over its own family (the 'significant' rules), not over compare's.
        comparison = compare_runs(baseline, candidate, settings=replace(settings, correction="none"), metrics=targets)
    adjusted = _adjusted(loaded.policy, comparison)
    results = [
        _evaluate_rule(rule, index, loaded, (candidate_record, baseline_record), comparison, adjusted)
        for index, rule in enumerate(loaded.policy.rules)
    ]
    for index, task in enumerate(loaded.policy.required_tasks):
        if task not in candidate_record.tasks:
            why = candidate_record.skipped.get(task)
            reason = f"task '{task}' is not in the candidate run" + (f" (skipped: {why.splitlines()[0]})" if why else "")
            status = FAILED
        else:
            reason, status = f"{task} present ({candidate_record.tasks[task].n_examples} examples)", PASSED
        check = CheckResult("required", "task present in the candidate run", status, reason)
        results.append(RuleResult(f"required task {task}", task, None, loaded.where("required_tasks", index), [check]))
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
