"""Gate policies: the YAML model, loading with line numbers, and validation against the task
registry and the runs *before* anything is evaluated.

A policy that names an unknown task or metric, holds a NaN or infinite threshold, or has a
rule that can never fire (a floor at or below the lowest value the metric can take, a drop
limit as wide as the metric's whole range, ...) or that contradicts another rule would let
the gate pass without checking anything; each is a :class:`SpecError` (exit 2) reported as
``file:line: rules[i].field: problem``, with a "did you mean" for misspelt names.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import ConfigDict, Field, model_validator

from evalharness.config import Location, StrictModel, load_config, where
from evalharness.errors import EvalHarnessError, SpecError, did_you_mean
from evalharness.records.record import RunRecord

if TYPE_CHECKING:
    from evalharness.spec.catalog import TaskCatalog
    from evalharness.spec.loader import Task

__all__ = [
    "BASELINE_CHECKS",
    "CHECK_NAMES",
    "TEST_CHECKS",
    "GatePolicy",
    "GateRule",
    "LoadedPolicy",
    "MarginSpec",
    "MetricFacts",
    "NoninferiorMargin",
    "WithinMargin",
    "largest_difference",
    "load_policy",
    "validate_policy",
]

# Every check a rule can hold, in the order results are shown.
CHECK_NAMES = (
    "min", "max", "max_distance_from_ideal", "max_drop", "max_drop_relative", "max_distance_increase", "noninferior", "within",
)
BASELINE_CHECKS = frozenset({"max_drop", "max_drop_relative", "max_distance_increase", "noninferior", "within"})
# Checks that are statistical tests of their own, at the rule's one-sided level alpha.
TEST_CHECKS = frozenset({"noninferior", "within"})
_IDEAL_CHECKS = frozenset({"max_distance_from_ideal", "max_distance_increase"})
_DROP_CHECKS = frozenset({"max_drop", "max_drop_relative"})


class _PolicyModel(StrictModel):
    # Strict types: `max_drop: "1"` or `significant: "yes"` are errors, not guesses; a NaN or
    # infinite threshold is refused (every comparison with NaN is false: the check could never fail).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _one_sided_alpha(alpha: float) -> str:
    return (
        f"alpha {alpha:g} is the one-sided level of 'noninferior'/'within' (their interval has confidence 1 - 2 alpha): "
        "it must be below 0.5"
    )


class _MarginModel(_PolicyModel):
    relative: bool = Field(default=False, description="margin is a fraction of the baseline's value (0.02 = 2%)")
    if TYPE_CHECKING:  # each subclass declares the field with its own bound and description
        margin: float

    @model_validator(mode="after")
    def _relative_below_one(self) -> _MarginModel:
        if self.relative and self.margin >= 1:
            raise ValueError(
                f"a relative margin is a fraction of the baseline value (0.02 = 2%), got {self.margin:g}: "
                "a change of 100% or more would pass any candidate"
            )
        return self


class NoninferiorMargin(_MarginModel):
    """Passes only when the lower bound of the paired (1 - 2 alpha) interval of candidate minus
    baseline, in the metric's better direction, is above -margin."""

    margin: float = Field(ge=0, description="the largest worsening that does not matter, in the metric's units")


class WithinMargin(_MarginModel):
    """Equivalence (two one-sided tests): the (1 - 2 alpha) interval lies inside (-margin, margin)."""

    margin: float = Field(gt=0, description="the largest change either way that does not matter")


# A statistical check's margin as a policy gives it (``noninferior`` or ``within``).
MarginSpec = NoninferiorMargin | WithinMargin


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
    noninferior: NoninferiorMargin | None = Field(default=None, description="non-inferiority test against the baseline")
    within: WithinMargin | None = Field(default=None, description="equivalence test (TOST) against the baseline")
    significant: bool = Field(default=False, description="fail a regression only when the paired test finds it significant")
    alpha: float | None = Field(
        default=None, gt=0, lt=1,
        description="level of this rule's test (default: the policy's): of the paired test of 'significant', or the one-sided "
        "level of 'noninferior'/'within' (their interval has confidence 1 - 2 alpha)",
    )
    optional: bool = Field(
        default=False,
        description="a rule that cannot be evaluated (no baseline, task or metric absent, value undefined) is "
        "reported as skipped; otherwise it fails the gate with exit code 2",
    )
    required: bool | None = Field(default=None, description="older spelling: 'required: false' is 'optional: true'")

    @model_validator(mode="after")
    def _consistent(self) -> GateRule:
        checks = self.checks()
        if not checks:
            raise ValueError(f"a rule needs at least one check: {', '.join(CHECK_NAMES)}")
        if (self.significant or self.alpha is not None) and not BASELINE_CHECKS & set(checks):
            raise ValueError("'significant' and 'alpha' apply to regressions against a baseline: add max_drop, max_drop_relative or max_distance_increase")
        if self.significant and TEST_CHECKS & set(checks):
            tests = " and ".join(f"'{name}'" for name in checks if name in TEST_CHECKS)
            raise ValueError(
                f"{tests} is a test of its own (at 'alpha'); 'significant: true' cannot be combined with it: put a "
                "max_drop rule with 'significant: true' in a separate rule"
            )
        if self.alpha is not None and not self.significant and not TEST_CHECKS & set(checks):
            raise ValueError("'alpha' is the level of the paired test of a 'significant: true' rule; add 'significant: true' or remove 'alpha'")
        if self.alpha is not None and self.alpha >= 0.5 and TEST_CHECKS & set(checks):
            raise ValueError(_one_sided_alpha(self.alpha))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g}): no value can pass")
        if self.required is not None and "optional" in self.model_fields_set and self.required == self.optional:
            raise ValueError(f"'required: {str(self.required).lower()}' contradicts 'optional: {str(self.optional).lower()}'; keep 'optional'")
        return self

    def checks(self) -> list[str]:
        """The checks this rule holds, in display order."""
        return [name for name in CHECK_NAMES if getattr(self, name) is not None]

    @property
    def is_optional(self) -> bool:
        return self.optional or self.required is False

    @property
    def label(self) -> str:
        return self.name or f"{self.task} {self.metric}"


class GatePolicy(_PolicyModel):
    """A gate policy file."""

    version: Literal[1] = 1
    description: str = ""
    alpha: float = Field(default=0.05, gt=0, lt=1, description="level of 'significant' rules and one-sided level of 'noninferior'/'within'")
    power: float = Field(default=0.8, gt=0, lt=1, description="power at which each test's minimum detectable effect is reported")
    correction: Literal["holm", "bh", "none"] = Field(default="holm", description="multiple-comparison correction across significant rules")
    required_tasks: list[str] = Field(default_factory=list, description="tasks the candidate run must contain")
    rules: list[GateRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> GatePolicy:
        if not self.rules and not self.required_tasks:
            raise ValueError("the policy has no rules and no required_tasks; it would pass anything")
        if self.alpha >= 0.5 and any(rule.alpha is None and TEST_CHECKS & set(rule.checks()) for rule in self.rules):
            raise ValueError(_one_sided_alpha(self.alpha))
        low = max([self.alpha] + [rule.alpha for rule in self.rules if rule.alpha is not None])
        if self.power <= low:
            raise ValueError(f"power {self.power:g} must be above every test's alpha (up to {low:g}): a test has power alpha at no effect")
        return self

    def alpha_of(self, rule: GateRule) -> float:
        return rule.alpha if rule.alpha is not None else self.alpha


@dataclass(frozen=True)
class LoadedPolicy:
    path: Path
    policy: GatePolicy
    lines: dict[Location, int] = field(default_factory=dict, repr=False)

    def where(self, *loc: str | int) -> str:
        return where(str(self.path), self.lines, loc)


def load_policy(path: str | os.PathLike[str]) -> LoadedPolicy:
    """Read and validate a gate policy; every problem is reported as ``file:line: field: ...``."""
    loaded = load_config(path, GatePolicy, what="a gate policy (a mapping with 'rules:')")
    return LoadedPolicy(loaded.path, loaded.value, loaded.lines)


# -- what a metric can be ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetricFacts:
    """What the policy needs to know about a task's metric: its range, ideal and direction."""

    metric: str
    bounds: tuple[float, float]
    ideal: float | None
    higher_is_better: bool

    @property
    def largest_distance(self) -> float:
        """The largest |value - ideal| the metric can show."""
        assert self.ideal is not None  # asked only of metrics with an ideal (distance checks)
        low, high = self.bounds
        return max(high - self.ideal, self.ideal - low)

    @property
    def largest_relative_drop(self) -> float:
        """The largest worsening as a fraction of a baseline value (the gate's relative drop)."""
        low, high = self.bounds
        if self.higher_is_better:  # worst: falling to `low` from the best baseline
            return math.inf if low < 0 else (1.0 - low / high if high > 0 else 0.0)
        return math.inf if low <= 0 else (high - low) / low  # worst: rising to `high` from `low`


def metric_facts(
    name: str, settings: Mapping[str, object], *, ideal: float | None | EllipsisType = ..., higher_is_better: bool | None = None
) -> MetricFacts:
    """Facts of a registered metric built with ``settings``; a metric this evalharness cannot
    build (a record from another version) has unknown bounds, so no range check applies."""
    from evalharness.metrics.registry import build_metric

    try:
        metric = build_metric(name, dict(settings))
        bounds, default_ideal, default_higher = metric.bounds, metric.ideal, metric.higher_is_better
    except (EvalHarnessError, ValueError):  # pydantic's ValidationError is a ValueError
        bounds, default_ideal, default_higher = (-math.inf, math.inf), None, True
    return MetricFacts(
        name,
        (float(bounds[0]), float(bounds[1])),
        default_ideal if isinstance(ideal, EllipsisType) else ideal,
        default_higher if higher_is_better is None else higher_is_better,
    )


class _Registry:
    """Tasks and metric keys the policy may name: the task registry plus both runs."""

    def __init__(self, catalog: TaskCatalog, runs: Iterable[RunRecord]) -> None:
        self.catalog = catalog
        self.runs = list(runs)
        self.registered = set(catalog.names())
        self.task_names = set(self.registered)
        for run in self.runs:
            self.task_names |= set(run.tasks) | set(run.skipped)
        self._specs: dict[str, Task | None] = {}

    def spec(self, task: str) -> Task | None:
        """The registry's task (None when it has none); a broken task file is an error."""
        if task not in self._specs:
            self._specs[task] = self.catalog.load(task) if task in self.registered else None
        return self._specs[task]

    def metrics(self, task: str) -> dict[str, MetricFacts]:
        """Metric key -> facts: the runs' entries first (they are what is gated), then the spec's."""
        facts: dict[str, MetricFacts] = {}
        for run in self.runs:
            for key, entry in (run.tasks[task].metrics.items() if task in run.tasks else ()):
                facts.setdefault(key, metric_facts(entry.metric, entry.settings, ideal=entry.ideal, higher_is_better=entry.higher_is_better))
        in_runs = any(task in run.tasks for run in self.runs)
        try:
            spec = self.spec(task)
        except EvalHarnessError:
            if in_runs:
                return facts  # the runs say what the task holds
            raise
        for metric in spec.spec.metrics if spec is not None else ():
            facts.setdefault(metric.result_key, metric_facts(metric.name, metric.settings))
        return facts


# -- validation -------------------------------------------------------------------------------


def _min_never_fires(limit: float, facts: MetricFacts) -> str | None:
    low, high = facts.bounds
    if limit <= low:
        return f"min {limit:g} is at or below the lowest value {facts.metric} can take ({low:g}): the check can never fail"
    if limit > high:
        return f"min {limit:g} is above the highest value {facts.metric} can take ({high:g}): the check can never pass"
    return None


def _max_never_fires(limit: float, facts: MetricFacts) -> str | None:
    low, high = facts.bounds
    if limit >= high:
        return f"max {limit:g} is at or above the highest value {facts.metric} can take ({high:g}): the check can never fail"
    if limit < low:
        return f"max {limit:g} is below the lowest value {facts.metric} can take ({low:g}): the check can never pass"
    return None


def _drop_never_fires(limit: float, facts: MetricFacts) -> str | None:
    low, high = facts.bounds
    if limit >= high - low:
        return f"max_drop {limit:g} is at least the whole range of {facts.metric} ([{low:g}, {high:g}]): the check can never fail"
    return None


def _relative_drop_never_fires(limit: float, facts: MetricFacts) -> str | None:
    largest = facts.largest_relative_drop
    if limit >= largest:
        low, high = facts.bounds
        return (
            f"max_drop_relative {limit:g} ({limit:.0%}) can never be exceeded: {facts.metric} cannot worsen by more than "
            f"{largest:.0%} of its baseline value (its range is [{low:g}, {high:g}])"
        )
    return None


def _distance_never_fires(limit: float, facts: MetricFacts) -> str | None:
    if limit >= facts.largest_distance:
        return (
            f"{limit:g} is at least the largest possible distance of {facts.metric} from its ideal {facts.ideal:g} "
            f"({facts.largest_distance:g}): the check can never fail"
        )
    return None


def largest_difference(facts: MetricFacts, *, on_distance: bool) -> float:
    """The largest change of the compared quantity: the metric's range, or the largest
    distance from its ideal."""
    return facts.largest_distance if on_distance else facts.bounds[1] - facts.bounds[0]


def _noninferior_never_fires(limit: NoninferiorMargin, facts: MetricFacts) -> str | None:
    largest = largest_difference(facts, on_distance=facts.ideal is not None)
    if not limit.relative and limit.margin >= largest:
        what = f"distance of {facts.metric} from its ideal {facts.ideal:g}" if facts.ideal is not None else f"change of {facts.metric}"
        return f"noninferior margin {limit.margin:g} is at least the largest possible {what} ({largest:g}): the check can never fail"
    return None


def _within_never_fires(limit: WithinMargin, facts: MetricFacts) -> str | None:
    largest = largest_difference(facts, on_distance=False)
    if not limit.relative and limit.margin >= largest:
        low, high = facts.bounds
        return f"within margin {limit.margin:g} is at least the whole range of {facts.metric} ([{low:g}, {high:g}]): the check can never fail"
    return None


# Why a check can never pass or never fail on a metric's range (None: it can do both).
# (the rule's limit for the check: a number or a margin, the metric's facts) -> why, or None
_NeverFires: TypeAlias = (
    Callable[[float, MetricFacts], str | None]
    | Callable[[NoninferiorMargin, MetricFacts], str | None]
    | Callable[[WithinMargin, MetricFacts], str | None]
)
_NEVER_FIRES: dict[str, _NeverFires] = {
    "min": _min_never_fires,
    "max": _max_never_fires,
    "max_distance_from_ideal": _distance_never_fires,
    "max_drop": _drop_never_fires,
    "max_drop_relative": _relative_drop_never_fires,
    "max_distance_increase": _distance_never_fires,
    "noninferior": _noninferior_never_fires,
    "within": _within_never_fires,
}


def _applies(rule: GateRule, check: str, facts: MetricFacts) -> str | None:
    """Why ``check`` does not apply to this metric at all, or None."""
    if check in _IDEAL_CHECKS and facts.ideal is None:
        return f"metric '{rule.metric}' of {rule.task} ({facts.metric}) has no ideal value; use min/max/max_drop"
    margin = getattr(rule, check) if check in TEST_CHECKS else None
    if margin is not None and margin.relative and facts.ideal is not None:
        return (
            f"metric '{rule.metric}' of {rule.task} has an ideal value ({facts.ideal:g}): a relative margin (a fraction of "
            "the baseline value) is ambiguous there; give an absolute margin"
        )
    if check in _DROP_CHECKS and facts.ideal is not None:
        return (
            f"metric '{rule.metric}' of {rule.task} has an ideal value ({facts.ideal:g}), so a 'drop' is ambiguous; "
            "use max_distance_increase"
        )
    return None


def _rule_problems(loaded: LoadedPolicy, index: int, rule: GateRule, registry: _Registry) -> tuple[list[str], MetricFacts | None]:
    """Problems of one rule and, when its task and metric are known, the metric's facts."""
    known = registry.task_names
    if rule.task not in known:
        hint = did_you_mean(rule.task, known)
        return [f"{loaded.where('rules', index, 'task')}: unknown task '{rule.task}'{hint} (not in the task registry or the runs; add --tasks-dir for your own tasks)"], None
    try:
        metrics = registry.metrics(rule.task)
    except EvalHarnessError as exc:
        return [f"{loaded.where('rules', index, 'task')}: cannot read task '{rule.task}': {exc}"], None
    if rule.metric not in metrics:
        hint = did_you_mean(rule.metric, metrics)
        return [f"{loaded.where('rules', index, 'metric')}: task '{rule.task}' has no metric '{rule.metric}'{hint} (has: {', '.join(metrics) or 'none'})"], None
    facts = metrics[rule.metric]
    problems = []
    for check in rule.checks():
        why = _applies(rule, check, facts) or _NEVER_FIRES[check](getattr(rule, check), facts)
        if why is not None:
            problems.append(f"{loaded.where('rules', index, check)}: {why}")
    return problems, facts


def _contradictions(loaded: LoadedPolicy, facts: dict[int, MetricFacts]) -> list[str]:
    """Rules on one task and metric whose absolute checks no value can pass together."""
    rules = loaded.policy.rules
    groups: dict[tuple[str, str], list[int]] = {}
    for index in facts:
        groups.setdefault((rules[index].task, rules[index].metric), []).append(index)
    problems = []
    for (task, metric), indices in groups.items():
        low, high = facts[indices[0]].bounds
        floor: tuple[float, int | None] = (low, None)  # (bound, rule index that sets it)
        ceiling: tuple[float, int | None] = (high, None)
        for index in indices:
            rule, ideal = rules[index], facts[index].ideal
            lows, highs = [rule.min], [rule.max]
            if rule.max_distance_from_ideal is not None:
                assert ideal is not None  # _applies refused distance checks on metrics without an ideal
                lows.append(ideal - rule.max_distance_from_ideal)
                highs.append(ideal + rule.max_distance_from_ideal)
            for value in (v for v in lows if v is not None):
                floor = max(floor, (value, index), key=lambda pair: pair[0])
            for value in (v for v in highs if v is not None):
                ceiling = min(ceiling, (value, index), key=lambda pair: pair[0])
        if floor[0] > ceiling[0]:
            places = sorted({i for i in (floor[1], ceiling[1]) if i is not None})
            problems.append(
                f"{loaded.where('rules', places[0])}: rules on {task} {metric} contradict each other "
                f"({' and '.join(loaded.where('rules', i) for i in places)}): the value would have to be at least "
                f"{floor[0]:g} and at most {ceiling[0]:g}, so the gate could never pass"
            )
    return problems


def validate_policy(loaded: LoadedPolicy, catalog: TaskCatalog, runs: Iterable[RunRecord | None] = ()) -> dict[int, MetricFacts]:
    """Check every rule against the task registry (``TaskCatalog``) and the runs before any
    evaluation; raises :class:`SpecError` listing every problem. Returns each rule's metric facts."""
    registry = _Registry(catalog, [run for run in runs if run is not None])
    problems: list[str] = []
    facts: dict[int, MetricFacts] = {}
    for index, rule in enumerate(loaded.policy.rules):
        found, rule_facts = _rule_problems(loaded, index, rule, registry)
        problems += found
        if rule_facts is not None and not found:
            facts[index] = rule_facts
    problems += _contradictions(loaded, facts)
    known = registry.task_names
    for index, task in enumerate(loaded.policy.required_tasks):
        if task not in known:
            problems.append(f"{loaded.where('required_tasks', index)}: unknown task '{task}'{did_you_mean(task, known)}")
    if problems:
        raise SpecError("\n".join(problems))
    return facts
