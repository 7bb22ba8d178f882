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
from typing import Generic, TypeVar

import numpy as np

from evalharness.comparison.compare import (
    CompareSettings,
    Comparison,
    MetricComparison,
    compare_runs,
)
from evalharness.comparison.decisions import (
    PairedData,
    PairedMetric,
    StatSettings,
    mde_for_drop,
    statistical_check,
)
from evalharness.comparison.gate_policy import (
    BASELINE_CHECKS,
    GatePolicy,
    GateRule,
    LoadedPolicy,
    MarginSpec,
    MetricFacts,
    largest_difference,
    load_policy,
    validate_policy,
)
from evalharness.comparison.gate_results import (
    FAILED,
    NOT_EVALUATED,
    PASSED,
    SKIPPED,
    CheckResult,
    ComparedFields,
    DetectableFields,
    GateReport,
    NoiseFields,
    RuleResult,
)
from evalharness.comparison.noise_floor import noise_floors, noise_warning
from evalharness.errors import EvalHarnessError, did_you_mean
from evalharness.jsonvalues import JSONObject
from evalharness.records.record import LoadedRun, RunRecord, TaskEntry, loaded_run
from evalharness.stats import adjust_pvalues
from evalharness.types import MetricResult

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

# -- checks: one small function per kind ------------------------------------------------------


@dataclass
class _Statistics:
    """What statistical checks need beyond the records' values: the runs' aligned per-example
    statistics (paired lazily, once per task) and the test settings."""

    paired: PairedData | None
    policy: GatePolicy
    settings: CompareSettings
    facts: dict[int, MetricFacts]
    floors: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)  # from the runs' noise.json
    _metrics: dict[tuple[str, str], PairedMetric] = field(default_factory=dict)

    def metric(self, rule: GateRule) -> PairedMetric:
        key = (rule.task, rule.metric)
        if key not in self._metrics:
            assert self.paired is not None  # statistical checks run only against a baseline
            self._metrics[key] = self.paired.metric(*key)
        return self._metrics[key]

    def for_rule(self, index: int, rule: GateRule, *, on_distance: bool) -> StatSettings:
        facts = self.facts.get(index)
        largest = largest_difference(facts, on_distance=on_distance) if facts is not None else math.inf
        return StatSettings(self.policy.alpha_of(rule), self.policy.power, self.settings.seed, self.settings.n_resamples, largest)


@dataclass(frozen=True)
class _Context:
    rule: GateRule
    index: int
    where: str
    alpha: float
    entry: MetricResult
    comparison: MetricComparison | None  # present whenever a baseline check runs
    p_adjusted: float | None
    statistics: _Statistics

    def describe(self, check: str) -> str:
        return describe_check(self.rule, check, self.alpha)

    @property
    def value(self) -> float:
        """The candidate's value (``_find_entry`` gives a rule only a defined one)."""
        assert self.entry.value is not None
        return self.entry.value

    @property
    def ideal(self) -> float:
        assert self.entry.ideal is not None  # validate_policy allows distance checks only on metrics with one
        return self.entry.ideal

    @property
    def baseline(self) -> MetricComparison:
        """The comparison with the baseline, whose change is defined (``_why_no_comparison``
        keeps baseline checks from running otherwise)."""
        assert self.comparison is not None and self.comparison.change is not None
        return self.comparison

    @property
    def change(self) -> float:
        change = self.baseline.change
        assert change is not None
        return change

    @property
    def worsening(self) -> float:
        worsening = self.baseline.worsening
        assert worsening is not None  # defined with the change
        return worsening

    def compared_values(self) -> ComparedFields:
        comparison = self.baseline
        return {"candidate": comparison.value_b, "baseline": comparison.value_a, "change": comparison.change, "n": comparison.n}

    def noise(self, threshold: float | None) -> NoiseFields:
        warning = noise_warning(threshold, self.statistics.floors.get((self.rule.task, self.rule.metric)))
        return {"noise_warning": warning} if warning else {}

    def located(self, check: str, exc: EvalHarnessError) -> EvalHarnessError:
        """The same error, naming the rule it came from (file:line)."""
        return type(exc)(f"{self.where}: {self.rule.label}: {check}: {exc}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.2f}"


def _check_min(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.value >= limit
    return CheckResult("min", ctx.describe("min"), PASSED if ok else FAILED, f"{_fmt(ctx.value)} {'≥' if ok else '<'} {limit:g}", ctx.value, n=ctx.entry.n)


def _check_max(ctx: _Context, limit: float) -> CheckResult:
    ok = ctx.value <= limit
    return CheckResult("max", ctx.describe("max"), PASSED if ok else FAILED, f"{_fmt(ctx.value)} {'≤' if ok else '>'} {limit:g}", ctx.value, n=ctx.entry.n)


def _check_distance(ctx: _Context, limit: float) -> CheckResult:
    distance = abs(ctx.value - ctx.ideal)
    ok = distance <= limit
    detail = f"|{_fmt(ctx.value)} - {ctx.ideal:g}| = {_fmt(distance)} {'≤' if ok else '>'} {limit:g}"
    return CheckResult("max_distance_from_ideal", ctx.describe("max_distance_from_ideal"), PASSED if ok else FAILED, detail, ctx.value, n=ctx.entry.n)


def _detectable(ctx: _Context, check: str, threshold: float) -> DetectableFields:
    """The MDE fields of a 'significant' rule (its limit ``threshold`` in the compared units)."""
    if not ctx.rule.significant:
        return {}
    try:
        paired = ctx.statistics.metric(ctx.rule)
    except EvalHarnessError as exc:
        raise ctx.located(check, exc) from None
    settings = ctx.statistics.for_rule(ctx.index, ctx.rule, on_distance=paired.ideal is not None)
    mde, warning = mde_for_drop(paired, threshold, settings)
    return {"mde": mde, "mde_warning": warning}


def _regression(ctx: _Context, check: str, amount: float, limit: float, unit: str, threshold: float) -> CheckResult:
    """A regression check: fails when ``amount`` exceeds ``limit`` (and, for ``significant``
    rules, the paired test's adjusted p-value is below alpha). An observed change within the
    limit is described as a change, not as an improvement or a regression: only the paired
    test could say which. A significant rule also reports what its test could detect."""
    description = ctx.describe(check)
    compared, detectable, noise = ctx.compared_values(), _detectable(ctx, check, threshold), ctx.noise(threshold)

    def result(status: str, detail: str) -> CheckResult:
        return CheckResult(check, description, status, detail, p_value=ctx.p_adjusted, **compared, **detectable, **noise)

    shown = f"{_fmt(amount)}{unit}"
    if amount <= limit:
        detail = f"drop {shown} within {_fmt(limit)}{unit}" if amount > 0 else f"no drop ({_fmt(-amount)}{unit} the other way)" if amount < 0 else "no change"
        return result(PASSED, detail)
    if not ctx.rule.significant:
        return result(FAILED, f"regression {shown} > {_fmt(limit)}{unit}")
    if ctx.p_adjusted is None:
        return result(FAILED, f"regression {shown} > {_fmt(limit)}{unit}; significance undefined")
    significant = ctx.p_adjusted < ctx.alpha
    verdict = f"{'significant' if significant else 'not significant'} (p adj. {ctx.p_adjusted:.3g} {'<' if significant else '≥'} {ctx.alpha:g})"
    return result(FAILED if significant else PASSED, f"regression {shown} > {_fmt(limit)}{unit}, {verdict}")


def _check_max_drop(ctx: _Context, limit: float) -> CheckResult:
    return _regression(ctx, "max_drop", ctx.worsening, limit, "", limit)


def _check_max_drop_relative(ctx: _Context, limit: float) -> CheckResult:
    worsening, base = ctx.worsening, ctx.baseline.value_a
    assert base is not None  # _why_no_comparison: the baseline's value is defined
    relative = worsening / abs(base) if base else (math.inf if worsening > 0 else 0.0)
    return _regression(ctx, "max_drop_relative", 100 * relative, 100 * limit, "%", limit * abs(base))


def _check_distance_increase(ctx: _Context, limit: float) -> CheckResult:
    return _regression(ctx, "max_distance_increase", ctx.change, limit, "", limit)


def _check_test(ctx: _Context, check: str, spec: MarginSpec) -> CheckResult:
    """``noninferior`` or ``within``: the paired interval against the margin
    (:mod:`evalharness.comparison.decisions`). An interval that cannot be made leaves the
    rule not evaluated, never passed."""
    try:
        paired = ctx.statistics.metric(ctx.rule)
        on_distance = check == "noninferior" and paired.ideal is not None
        outcome = statistical_check(check, paired, spec, ctx.statistics.for_rule(ctx.index, ctx.rule, on_distance=on_distance))
    except EvalHarnessError as exc:
        raise ctx.located(check, exc) from None
    status = {"passed": PASSED, "failed": FAILED, "undetermined": _unevaluated(ctx.rule)}[outcome.status]
    return CheckResult(
        check, ctx.describe(check), status, outcome.detail, **ctx.compared_values(), p_value=outcome.p_value,
        interval=outcome.interval, margin=outcome.margin, verdict=outcome.verdict, mde=outcome.mde, mde_warning=outcome.mde_warning,
        **ctx.noise(outcome.margin),
    )


def _check_noninferior(ctx: _Context, spec: MarginSpec) -> CheckResult:
    return _check_test(ctx, "noninferior", spec)


def _check_within(ctx: _Context, spec: MarginSpec) -> CheckResult:
    return _check_test(ctx, "within", spec)


def _margin_text(spec: MarginSpec) -> str:
    return f"{spec.margin:.1%} of the baseline" if spec.relative else f"{spec.margin:g}"


def _describe_limit(template: str) -> Callable[[GateRule, str, float], str]:
    def describe(rule: GateRule, name: str, alpha: float) -> str:
        significance = f" if significant at {alpha:g}" if rule.significant else ""
        return template.format(limit=getattr(rule, name), significance=significance)

    return describe


def _describe_noninferior(rule: GateRule, name: str, alpha: float) -> str:
    assert rule.noninferior is not None  # described only for the checks a rule sets
    return f"non-inferior to baseline, margin {_margin_text(rule.noninferior)} (one-sided alpha {alpha:g})"


def _describe_within(rule: GateRule, name: str, alpha: float) -> str:
    assert rule.within is not None  # described only for the checks a rule sets
    return f"equivalent to baseline within ±{_margin_text(rule.within)} (TOST, alpha {alpha:g})"


_Limit = TypeVar("_Limit", float, MarginSpec)


@dataclass(frozen=True)
class Check(Generic[_Limit]):
    run: Callable[[_Context, _Limit], CheckResult]  # (context, the rule's limit for this check)
    describe: Callable[[GateRule, str, float], str]  # (rule, check name, alpha) -> text shown in CI


# One per name in gate_policy.CHECK_NAMES; those in BASELINE_CHECKS need a baseline.
CHECKS: dict[str, Check[float] | Check[MarginSpec]] = {
    "min": Check(_check_min, _describe_limit("value ≥ {limit:g}")),
    "max": Check(_check_max, _describe_limit("value ≤ {limit:g}")),
    "max_distance_from_ideal": Check(_check_distance, _describe_limit("distance from ideal ≤ {limit:g}")),
    "max_drop": Check(_check_max_drop, _describe_limit("drop vs baseline ≤ {limit:g}{significance}")),
    "max_drop_relative": Check(_check_max_drop_relative, _describe_limit("drop vs baseline ≤ {limit:.1%}{significance}")),
    "max_distance_increase": Check(_check_distance_increase, _describe_limit("distance from ideal grows ≤ {limit:g}{significance}")),
    "noninferior": Check(_check_noninferior, _describe_noninferior),
    "within": Check(_check_within, _describe_within),
}


def describe_check(rule: GateRule, name: str, alpha: float) -> str:
    """A check as shown in CI, e.g. ``drop vs baseline ≤ 1 if significant at 0.05``."""
    return CHECKS[name].describe(rule, name, alpha)


# -- evaluation -------------------------------------------------------------------------------


def _unevaluated(rule: GateRule) -> str:
    return SKIPPED if rule.is_optional else NOT_EVALUATED


def _absent(rule: GateRule, where: str, reason: str) -> RuleResult:
    check = CheckResult("present", "task and metric in the candidate run", _unevaluated(rule), reason)
    return RuleResult(rule.label, rule.task, rule.metric, where, [check])


def _find_entry(rule: GateRule, where: str, candidate: RunRecord) -> MetricResult | RuleResult:
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


def _compared(comparison: Comparison, task: str, metric: str) -> MetricComparison:
    """The comparison of a task and metric known to have been compared."""
    found = comparison.get(task, metric)
    assert found is not None
    return found


def _adjusted(policy: GatePolicy, comparison: Comparison | None) -> dict[tuple[str, str], float | None]:
    """Adjusted p-values across the comparisons that 'significant' rules test (one each)."""
    if comparison is None:
        return {}
    keys = sorted({(r.task, r.metric) for r in policy.rules if r.significant and comparison.get(r.task, r.metric)})
    raw = [_compared(comparison, *key).p_value for key in keys]
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
    index: int,
    where: str,
    statistics: _Statistics,
    records: tuple[RunRecord, RunRecord | None],
    comparison: Comparison | None,
    adjusted: dict[tuple[str, str], float | None],
) -> RuleResult:
    rule = statistics.policy.rules[index]
    found = _find_entry(rule, where, records[0])
    if isinstance(found, RuleResult):
        return found
    missing = _why_no_comparison(rule, records[1], comparison) if _needs_baseline(rule) else None
    metric_comparison = comparison.get(rule.task, rule.metric) if comparison else None
    ctx = _Context(rule, index, where, statistics.policy.alpha_of(rule), found, metric_comparison, adjusted.get((rule.task, rule.metric)), statistics)
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


def _run_info(path: Path, record: RunRecord) -> JSONObject:
    return {"path": str(path), "run_id": record.run_id, "model": record.model.name, "fingerprint": record.model.fingerprint}


def evaluate_gate(
    policy: LoadedPolicy | str | os.PathLike[str],
    candidate: str | os.PathLike[str] | LoadedRun,
    baseline: str | os.PathLike[str] | LoadedRun | None = None,
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
    candidate_run = loaded_run(candidate)
    baseline_run = loaded_run(baseline) if baseline is not None else None
    candidate_record = candidate_run.record
    baseline_record = baseline_run.record if baseline_run is not None else None
    facts = validate_policy(loaded, TaskCatalog(tasks_dirs), (candidate_record, baseline_record))
    targets = _baseline_targets(loaded.policy, candidate_record, baseline_record)
    comparison = None
    if targets and baseline is not None:  # targets need a baseline run
        # The gate corrects over its own family (the 'significant' rules), not over compare's.
        assert baseline_run is not None  # targets come from the baseline's tasks
        comparison = compare_runs(baseline_run, candidate_run, settings=replace(settings, correction="none"), metrics=targets)
    adjusted = _adjusted(loaded.policy, comparison)
    records = (candidate_record, baseline_record)
    paired = (
        PairedData(candidate_run.directory, baseline_run.directory, (candidate_record, baseline_run.record)) if baseline_run is not None else None
    )
    floors = noise_floors(candidate_run.directory, baseline_run.directory if baseline_run is not None else None)
    statistics = _Statistics(paired, loaded.policy, settings, facts, floors)
    results = [
        _evaluate_rule(index, loaded.where("rules", index), statistics, records, comparison, adjusted)
        for index in range(len(loaded.policy.rules))
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
        assert comparison is not None  # p-values come from it
        tests = sorted({_compared(comparison, *key).method for key in adjusted})
        notes.append(
            f"significance: {len(adjusted)} paired test(s) ({'; '.join(tests)}), correction {loaded.policy.correction}, "
            f"seed {settings.seed}"
        )
    return GateReport(
        policy_path=str(loaded.path),
        policy=loaded.policy,
        candidate=_run_info(candidate_run.directory, candidate_record),
        baseline=_run_info(baseline_run.directory, baseline_run.record) if baseline_run is not None else None,
        rules=results,
        settings=settings,
        notes=notes,
    )
