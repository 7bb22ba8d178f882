"""Semantic checks of a run record: numbers that parse but cannot be right.

The schema says a value is a float; these checks say it is one the metric can produce: finite,
inside the metric's ``bounds``, inside its own confidence interval, computed on at least one
example and on no more than the task has, with the direction the metric really has (a flipped
``higher_is_better`` would turn a gate's regression into an improvement). Metric names the
registry does not know (a newer evalharness, a test metric) get every check but range and
direction. Float noise is tolerated (Pearson can come out as ``100.00000000000001``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from evalharness.seeds import MAX_SEED
from evalharness.types import GroupResult, MetricResult

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric
    from evalharness.records.record import RunRecord, TaskEntry

__all__ = ["record_problems"]


def _slack(*values: float | None) -> float:
    return 1e-9 * max([1.0, *(abs(v) for v in values if v is not None and math.isfinite(v))])


def _number_problems(where: str, value: float | None, *, minimum: float | None = None) -> Iterator[str]:
    if value is None:
        return
    if not math.isfinite(value):
        yield f"{where}: {value} is not a finite number"
    elif minimum is not None and value < minimum:
        yield f"{where}: {value} is below {minimum:g}"


def _metric_facts(name: str) -> tuple[tuple[float, float], type[Metric]] | None:
    """The registered metric class's bounds and class, None for a name it does not know."""
    from evalharness.errors import EvalHarnessError
    from evalharness.metrics.registry import METRICS, metric_class

    if name not in METRICS:
        return None
    try:
        cls = metric_class(name)
    except (EvalHarnessError, ImportError):
        return None
    return cls.bounds, cls


def _value_problems(
    where: str, value: float | None, ci: tuple[float | None, float | None], n: int, n_examples: int, label: str, bounds: tuple[float, float] | None
) -> Iterator[str]:
    yield from _number_problems(f"{where}.value", value)
    for side, bound in zip(("low", "high"), ci):
        yield from _number_problems(f"{where}.ci.{side}", bound)
    if value is not None and math.isfinite(value) and bounds is not None:
        low, high = bounds
        if value < low - _slack(value, low) or value > high + _slack(value, high):
            yield f"{where}.value: {value:g} is outside {label}'s range [{low:g}, {high:g}]"
    low_ci, high_ci = ci
    if low_ci is not None and high_ci is not None and math.isfinite(low_ci) and math.isfinite(high_ci):
        if low_ci > high_ci + _slack(low_ci, high_ci):
            yield f"{where}.ci: low {low_ci:g} is above high {high_ci:g}"
        elif value is not None and math.isfinite(value) and not (low_ci - _slack(value, low_ci) <= value <= high_ci + _slack(value, high_ci)):
            yield f"{where}.ci: [{low_ci:g}, {high_ci:g}] does not contain the value {value:g}"
    if n < 0 or (n < 1 and value is not None):
        yield f"{where}.n: {n} (a value needs at least one example)"
    if n > n_examples:
        yield f"{where}.n: {n} is more than the task's n_examples {n_examples}"


def _direction_problems(where: str, entry: MetricResult, cls: type[Metric]) -> Iterator[str]:
    expected = cls.higher_is_better
    if "higher_is_better" in cls.Settings.model_fields:  # hf_evaluate: the direction is a setting
        expected = bool(entry.settings.get("higher_is_better", cls.Settings.model_fields["higher_is_better"].default))
    if entry.higher_is_better != expected:
        yield f"{where}.higher_is_better: {entry.higher_is_better} but {entry.metric} is {'higher' if expected else 'lower'}-is-better"
    if entry.ideal != cls.ideal:
        yield f"{where}.ideal: {entry.ideal} but {entry.metric}'s ideal is {cls.ideal}"


def _metric_problems(where: str, entry: MetricResult, n_examples: int) -> Iterator[str]:
    facts = _metric_facts(entry.metric)
    bounds = facts[0] if facts else None
    yield from _value_problems(where, entry.value, entry.ci, entry.n, n_examples, entry.metric, bounds)
    yield from _number_problems(f"{where}.stderr", entry.stderr, minimum=0.0)
    if facts:
        yield from _direction_problems(where, entry, facts[1])
    for name, group in entry.groups.items():
        yield from _group_problems(f"{where}.groups.{name}", group, n_examples, entry.metric, bounds)


def _group_problems(where: str, group: GroupResult, n_examples: int, label: str, bounds: tuple[float, float] | None) -> Iterator[str]:
    yield from _value_problems(where, group.value, group.ci, group.n, n_examples, label, bounds)
    if group.n < 1 and group.value is None:  # with a value, _value_problems has said it
        yield f"{where}.n: {group.n} (a group has at least one example)"


def _task_problems(where: str, task: TaskEntry) -> Iterator[str]:
    if task.n_examples < 1:
        yield f"{where}.n_examples: {task.n_examples} (a task scores at least one example)"
    if task.data.n_available < task.n_examples:
        yield f"{where}.data.n_available: {task.data.n_available} is fewer than n_examples {task.n_examples}"
    yield from _number_problems(f"{where}.seconds", task.seconds, minimum=0.0)
    for key, entry in task.metrics.items():
        yield from _metric_problems(f"{where}.metrics.{key}", entry, task.n_examples)


def _settings_problems(settings: Mapping[str, object]) -> Iterator[str]:
    seed = settings.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        yield f"settings.seed: {seed!r} is not an integer between 0 and {MAX_SEED}"
    resamples = settings.get("n_resamples")
    if resamples is not None and (isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 0):
        yield f"settings.n_resamples: {resamples!r} is not a non-negative integer"
    limit = settings.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        yield f"settings.limit: {limit!r} is not a positive integer"


def record_problems(record: RunRecord) -> list[str]:
    """Every semantic problem of ``record``, as ``field.path: what is wrong``."""
    problems = list(_settings_problems(record.settings))
    problems += _number_problems("seconds", record.seconds, minimum=0.0)
    for name, task in record.tasks.items():
        problems += _task_problems(f"tasks.{name}", task)
    problems += [f"skipped.{name}: the task is also in tasks" for name in record.skipped if name in record.tasks]
    return problems
