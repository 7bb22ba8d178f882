"""Sequential gates, the decision side: which rules can be decided on a growing random sample
of a task's examples, and each rule's state after every batch. Reads records only; the
orchestration that runs the candidate batch by batch is
:mod:`evalharness.evaluation.sequential`.

Every rule becomes one or two anytime-valid rules of :mod:`evalharness.inference.sequential`
on per-example scores in a seeded random order (betting confidence sequences: looking after
every batch does not inflate the error rate):

- ``min``/``max`` on a mean-of-examples metric: the test-set mean (sampling without
  replacement): when the examples run out the decision is the full-data decision exactly,
  and an early stop disagrees with it with probability at most alpha;
- ``max_drop``/``max_drop_relative`` (without ``significant``): the same on the per-example
  differences from the fully recorded baseline;
- ``noninferior``: the population mean of the differences, alpha split between the sequence
  and a final full-data t test (``final_share``); ``within``: two such one-sided rules.

Refused (exit 2, naming the rule): ``significant: true`` rules (a fixed-n test), distances
from an ideal value, metrics that are not means of bounded per-example scores, and tasks
that declare a ``cluster_field`` (examples of one source are not exchangeable one by one;
we refuse rather than randomise whole clusters, whose number is often too small for a
sequence to settle early).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evalharness.comparison.gate_policy import LoadedPolicy
from evalharness.comparison.gate_results import (
    FAILED,
    PASSED,
    CheckResult,
    RuleResult,
    SequentialRecord,
)
from evalharness.errors import RecordError, UsageError
from evalharness.inference import Margin, SequentialDecision, SequentialRule, decide
from evalharness.jsonvalues import JsonValue
from evalharness.records.record import RunRecord, samples_stats
from evalharness.types import finite_or_none

if TYPE_CHECKING:
    from evalharness.comparison.gate_policy import GateRule, MarginSpec
    from evalharness.metrics.base import Metric
    from evalharness.spec.catalog import TaskCatalog
    from evalharness.spec.loader import Task
    from evalharness.stats import FloatArray

__all__ = ["SequentialCheck", "SequentialState", "plan_checks"]

_SUPPORTED = ("min", "max", "max_drop", "max_drop_relative", "noninferior", "within")


@dataclass(frozen=True)
class SequentialCheck:
    """One check of one rule, as the anytime-valid rule(s) deciding it."""

    index: int  # the rule's position in the policy
    check: str
    description: str
    task: str
    key: str
    metric: Metric
    rules: tuple[SequentialRule, ...]
    paired: bool  # decided on candidate minus baseline (better direction), else on the candidate
    margin: float | None = None


def _metric(task_spec: Task, key: str) -> Metric:
    from evalharness.metrics.registry import build_metric

    for metric_spec in task_spec.spec.metrics:
        if metric_spec.result_key == key:
            return build_metric(metric_spec.name, metric_spec.settings)
    raise UsageError(f"task '{task_spec.name}' has no metric '{key}'")


def _why_not(rule: GateRule, check: str, task_spec: Task, metric: Metric, baseline: RunRecord | None) -> str | None:
    """Why ``--sequential`` cannot decide this check (None: it can)."""
    low, high = metric.bounds
    reasons = [
        (check not in _SUPPORTED, f"'{check}' is not decided sequentially (supported: {', '.join(_SUPPORTED)})"),
        (rule.significant, "'significant: true' is a fixed-n test; use 'noninferior', which --sequential decides"),
        (task_spec.spec.cluster_field is not None, (
            f"task {rule.task} declares cluster_field '{task_spec.spec.cluster_field}': its examples are not exchangeable one by "
            "one, so --sequential refuses it (run the full gate)"
        )),
        (not getattr(metric, "mean_of_examples", False) or not (math.isfinite(low) and math.isfinite(high)), (
            f"metric '{rule.metric}' ({metric.name}) is not a mean of bounded per-example scores"
        )),
        (metric.ideal is not None, f"metric '{rule.metric}' has an ideal value; distances are not decided sequentially"),
        (check in ("max_drop", "max_drop_relative", "noninferior", "within") and baseline is None, "it needs a --baseline run"),
    ]
    return next((reason for failing, reason in reasons if failing), None)


def _direction(metric: Metric) -> float:
    return 1.0 if metric.higher_is_better else -1.0


def _rules_for(
    check: str, limit: float | MarginSpec, metric: Metric, baseline_value: float | None, alpha: float, final_share: float, label: str
) -> tuple[tuple[SequentialRule, ...], float | None]:
    """``limit`` is the rule's value for ``check``: a number, or the margin of noninferior/within."""
    low, high = (float(b) for b in metric.bounds)
    span = high - low
    if not isinstance(limit, (int, float)):
        return _margin_rules(check, limit, (low, high), baseline_value, alpha, final_share, label)
    if check == "min":
        return (SequentialRule(float(limit), (low, high), alpha, above=True, target="test-set", inclusive=True, label=label),), None
    if check == "max":
        return (SequentialRule(float(limit), (low, high), alpha, above=False, target="test-set", inclusive=True, label=label),), None
    if check in ("max_drop", "max_drop_relative"):
        scale = 1.0
        if check == "max_drop_relative":
            assert baseline_value is not None  # a paired check: the baseline's mean is given
            scale = abs(baseline_value)
        drop = float(limit) * scale
        return (SequentialRule(-drop, (-span, span), alpha, above=True, target="test-set", inclusive=True, label=label),), drop
    raise AssertionError(f"'{check}' has no numeric limit")  # plan_checks passes only _SUPPORTED checks


def _margin_rules(
    check: str, limit: MarginSpec, bounds: tuple[float, float], baseline_value: float | None, alpha: float, final_share: float, label: str
) -> tuple[tuple[SequentialRule, ...], float | None]:
    low, high = bounds
    span = high - low
    margin = Margin(float(limit.margin), bool(limit.relative)).absolute(baseline_value)  # a zero baseline is refused
    if check == "noninferior":
        return (SequentialRule.noninferiority(margin=margin, bounds=(low, high), alpha=alpha, label=label, final_share=final_share),), margin
    return (
        SequentialRule(-margin, (-span, span), alpha, above=True, label=label + " (lower)", final_share=final_share),
        SequentialRule(margin, (-span, span), alpha, above=False, label=label + " (upper)", final_share=final_share),
    ), margin


def plan_checks(
    loaded: LoadedPolicy,
    catalog: TaskCatalog,
    baseline: RunRecord | None,
    baseline_scores: Mapping[tuple[str, str], Mapping[str, float]],
    *,
    final_share: float,
) -> list[SequentialCheck]:
    """Every check of the policy as sequential rules; refuses (listing every problem with
    file:line) a policy with a check --sequential cannot decide."""
    from evalharness.comparison.gate import describe_check

    planned, problems = [], []
    for index, rule in enumerate(loaded.policy.rules):
        task_spec = catalog.load(rule.task)
        metric = _metric(task_spec, rule.metric)
        for check in rule.checks():
            reason = _why_not(rule, check, task_spec, metric, baseline)
            if reason is not None:
                problems.append(f"{loaded.where('rules', index, check)}: {rule.label}: --sequential cannot decide it: {reason}")
                continue
            paired = check not in ("min", "max")
            baseline_value = None
            if paired:
                values = list(baseline_scores[(rule.task, rule.metric)].values())
                baseline_value = float(np.mean(values))
            alpha = loaded.policy.alpha_of(rule)
            try:
                rules, margin = _rules_for(check, getattr(rule, check), metric, baseline_value, alpha, final_share, rule.label)
            except UsageError as exc:
                problems.append(f"{loaded.where('rules', index, check)}: {rule.label}: {exc}")
                continue
            description = describe_check(rule, check, alpha)
            planned.append(SequentialCheck(index, check, description, rule.task, rule.metric, metric, rules, paired, margin))
    if problems:
        raise UsageError("\n".join(problems))
    return planned


@dataclass
class SequentialState:
    """Each check's decision as batches arrive: a check is settled when its rules are (or one
    of two ``within`` rules fails), and is then never looked at again."""

    checks: list[SequentialCheck]
    orders: dict[str, list[str]]  # task -> example ids in the (seeded) random order
    baseline_scores: Mapping[tuple[str, str], Mapping[str, float]]
    decisions: dict[int, tuple[SequentialDecision, ...]] = field(default_factory=dict)

    def settled(self, task: str) -> bool:
        return all(position in self.decisions for position, check in enumerate(self.checks) if check.task == task)

    def update(self, task: str, used: int, candidate_rows: Mapping[str, Mapping[str, JsonValue]]) -> None:
        """Decide the task's unsettled checks on the first ``used`` examples of its order,
        from the candidate's samples rows (by id)."""
        ids = self.orders[task][:used]
        total = len(self.orders[task])
        for position, check in enumerate(self.checks):
            if check.task != task or position in self.decisions:
                continue
            values = self._values(check, ids, candidate_rows)
            decisions = tuple(decide(rule, values, total=total, ids=ids) for rule in check.rules)
            failed = any(d.settled and not d.passed for d in decisions)
            if failed or all(d.settled for d in decisions) or used == total:
                self.decisions[position] = decisions

    def _values(self, check: SequentialCheck, ids: Sequence[str], rows: Mapping[str, Mapping[str, JsonValue]]) -> FloatArray:
        try:
            stats = samples_stats([rows[i] for i in ids], check.key)
        except RecordError as exc:
            raise RecordError(f"{check.task}: the candidate's samples lack per-example statistics for '{check.key}' ({exc})") from None
        entered = check.metric.entered(stats)
        if not entered.all():
            raise UsageError(f"{check.task} {check.key}: not every example enters the metric, so --sequential cannot decide it")
        scores = check.metric.example_scores(stats)
        if not check.paired:
            return scores
        baseline = self.baseline_scores[(check.task, check.key)]
        return _direction(check.metric) * (scores - np.array([baseline[i] for i in ids], dtype=float))

    def examples_used(self, task: str) -> int:
        used = [d.examples_used for position, check in enumerate(self.checks) if check.task == task for d in self.decisions.get(position, ())]
        return max(used, default=0)

    def results(self, loaded: LoadedPolicy, candidate_rows: Mapping[str, Mapping[str, Mapping[str, JsonValue]]], *, order_seed: int, batch_size: int) -> list[RuleResult]:
        """One rule result per policy rule, each check with its sequential record."""
        checks_by_rule: dict[int, list[CheckResult]] = {}
        for position, check in enumerate(self.checks):
            decisions = self.decisions[position]
            checks_by_rule.setdefault(check.index, []).append(
                _check_result(check, decisions, candidate_rows[check.task], self.orders[check.task], self.baseline_scores,
                              order_seed=order_seed, batch_size=batch_size)
            )
        return [
            RuleResult(rule.label, rule.task, rule.metric, loaded.where("rules", index), checks_by_rule[index])
            for index, rule in enumerate(loaded.policy.rules)
        ]


def _describe(check: SequentialCheck, decisions: Sequence[SequentialDecision]) -> str:
    parts = []
    for decision in decisions:
        level = f"{100 * (1 - 2 * _sequence_alpha(check, decision)):g}%"
        what = "mean difference (candidate - baseline, better direction)" if check.paired else "mean"
        parts.append(
            f"{decision.verdict} after {decision.examples_used} of {decision.examples_total} examples: {what} "
            f"{decision.estimate:.4g}, {level} bounds [{decision.low:.4g}, {decision.high:.4g}] vs {decision_threshold(decision, check):.4g}"
        )
    return "; ".join(parts)


def _sequence_alpha(check: SequentialCheck, decision: SequentialDecision) -> float:
    rule = next(rule for rule in check.rules if rule.label == decision.label)
    return rule.final_alpha if "|final:" in decision.method else rule.sequence_alpha


def decision_threshold(decision: SequentialDecision, check: SequentialCheck) -> float:
    return next(rule.threshold for rule in check.rules if rule.label == decision.label)


def _check_result(
    check: SequentialCheck,
    decisions: Sequence[SequentialDecision],
    rows: Mapping[str, Mapping[str, JsonValue]],
    order: Sequence[str],
    baseline_scores: Mapping[tuple[str, str], Mapping[str, float]],
    *,
    order_seed: int,
    batch_size: int,
) -> CheckResult:
    passed = all(decision.passed for decision in decisions)
    used = max(decision.examples_used for decision in decisions)
    ids = order[:used]
    stats = samples_stats([rows[i] for i in ids], check.key)
    candidate = float(check.metric.aggregate(stats))
    baseline = float(np.mean([baseline_scores[(check.task, check.key)][i] for i in ids])) if check.paired else None
    sequential: SequentialRecord = {
        "examples_used": used,
        "examples_total": len(order),
        "saving": 1 - used / len(order),
        "order_seed": order_seed,
        "batch_size": batch_size,
        "method": "; ".join(decision.method for decision in decisions),
        "decisions": [
            {"rule": d.label, "verdict": d.verdict, "estimate": finite_or_none(d.estimate), "low": finite_or_none(d.low),
             "high": finite_or_none(d.high), "examples_used": d.examples_used}
            for d in decisions
        ],
    }
    return CheckResult(
        check.check,
        check.description,
        PASSED if passed else FAILED,
        _describe(check, decisions),
        candidate,
        baseline,
        None if baseline is None else candidate - baseline,
        None,
        used,
        margin=check.margin,
        verdict="; ".join(d.verdict for d in decisions),
        sequential=sequential,
    )
