"""The metric protocol: per-example sufficient statistics first, corpus aggregation second.

Splitting a metric this way (as sacrebleu does for BLEU) makes confidence intervals, group
breakdowns and paired significance tests cheap and generic: they all re-aggregate rows of
the same statistics. A metric is a pure function of plain values; it never sees a model.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.stats import BoolArray, FloatArray, Interval, bootstrap_interval, wilson_interval
from evalharness.types import (
    PREDICTION_TYPES,
    GroupResult,
    MetricResult,
    Prediction,
    Signature,
    containing,
    finite_or_none,
)

if TYPE_CHECKING:
    from evalharness.spec.schema import TaskSpec

__all__ = [
    "INTERVALS",
    "AdditiveMetric",
    "Metric",
    "MetricInput",
    "NoSettings",
    "SettingsInput",
    "is_missing",
    "package_version",
]

# What ``compute`` scores: typed predictions (formulations, prediction files) or, from Python
# API callers, the plain JSON values of their contract; references are the examples' gold
# values (JSON values from the data). Each metric narrows the values it reads.
MetricInput = Prediction | JsonValue
# A metric's settings: a mapping (a task file's ``settings:``, a record's) or the validated model.
SettingsInput = Mapping[str, object] | StrictModel | None


class NoSettings(StrictModel):
    """For metrics without settings: any key given is an error."""


def package_version(name: str) -> str:
    """Installed version of a distribution; evalharness's own from the source it runs from."""
    if name == "evalharness":
        from evalharness.version import __version__

        return __version__
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class Metric(ABC):
    """One metric. Subclasses set the class attributes and implement the two functions.

    - ``example_stats(predictions, references)`` returns an ``(n, k)`` float array;
    - ``aggregate(stats)`` turns any set of rows into the corpus score.

    Metrics whose corpus score depends only on column sums set ``additive = True`` and
    implement ``aggregate_sums`` (vectorised over resamples). ``interval_method`` names the
    confidence interval (a key of :data:`INTERVALS`): ``"wilson"`` for proportions (every
    per-example score is one of the two ``bounds``), else the percentile bootstrap, which
    stays inside ``bounds`` by construction. Metrics scored on a subset of the examples
    (SQuAD v2 HasAns/NoAns, a BBQ context condition, swappable examples) say which rows
    entered them in ``entered``: ``n`` and the interval are over those rows only.
    ``paired_test`` names the test ``evalharness compare`` uses for a difference between two
    runs: ``"bootstrap"`` (any metric), ``"permutation"`` or ``"mcnemar"`` (0/1 per-example
    scores only).
    """

    name: ClassVar[str]
    # Class constants that a metric may set per instance from its settings (direction, bounds,
    # interval, implementation), hence not ClassVar.
    higher_is_better: bool = True
    ideal: ClassVar[float | None] = None
    bounds: tuple[float, float] = (-math.inf, math.inf)  # every value the metric can take
    accepts: ClassVar[tuple[type, ...]] = PREDICTION_TYPES  # the prediction types it scores (types.*Prediction)
    kind_hints: ClassVar[dict[str, str]] = {}  # task kind -> what to use instead, when it cannot score the kind
    reference: str  # the implementation this metric replicates, e.g. "sklearn"
    reference_package: ClassVar[str | None] = None  # its distribution, for the version
    interval_method: str = "bootstrap-percentile"
    additive: ClassVar[bool] = False
    # The value is the mean of ``example_scores`` over the rows that entered it (accuracy, exact
    # match, SQuAD F1): paired intervals are then t intervals of per-example differences.
    mean_of_examples: ClassVar[bool] = False
    paired_test: ClassVar[str] = "bootstrap"
    Settings: ClassVar[type[StrictModel]] = NoSettings

    def __init__(self, settings: SettingsInput = None) -> None:
        if isinstance(settings, StrictModel):
            self.settings = settings
        else:
            self.settings = self.Settings.model_validate(dict(settings or {}))

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        """Per-example sufficient statistics, shape ``(n, k)``."""

    @abstractmethod
    def aggregate(self, stats: FloatArray) -> float:
        """Corpus score from rows of statistics (any subset or resample)."""

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        """Scores from ``(B, k)`` column sums; only for ``additive`` metrics."""
        raise NotImplementedError(f"{self.name} is not additive")

    def example_scores(self, stats: FloatArray) -> FloatArray:
        """A per-example score on the metric's scale, for samples files and reports."""
        return np.array([self.aggregate(row[None, :]) for row in stats], dtype=float)

    def entered(self, stats: FloatArray) -> BoolArray:
        """Which rows entered the metric (a boolean mask); rows outside it hold zeros."""
        return np.ones(np.asarray(stats).shape[0], dtype=bool)

    def outcomes(self, rows: FloatArray) -> FloatArray | None:
        """Each row's 0/1 outcome when the metric is a proportion of them (every per-example
        score is one of the two ``bounds``); None when it is not."""
        low, high = self.bounds
        with np.errstate(invalid="ignore"):
            outcomes = (self.example_scores(rows) - low) / (high - low)
        return outcomes if np.isin(outcomes, (0.0, 1.0)).all() else None

    def example_groups(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> Sequence[str] | None:
        """The group of each example, for a per-group breakdown (a bias type, a swap group);
        None: no breakdown. The runner and ``score`` pass it to :meth:`result`."""
        grouped = self.reference_groups(references)
        return None if grouped is None else grouped[1]

    def reference_groups(self, references: Sequence[JsonValue]) -> tuple[str, list[str]] | None:
        """What the breakdown groups by and each example's group, when the references alone
        say it (BBQ categories, WinoBias sets); ``--limit`` reports its coverage from it."""
        return None

    def undefined_reason(self, stats: FloatArray) -> str | None:
        """Why :meth:`aggregate` is NaN on these rows (e.g. no example of the subset the
        metric is restricted to); None: no specific reason known."""
        return None

    @classmethod
    def spec_problem(cls, settings: StrictModel, spec: TaskSpec) -> str | None:
        """Why these settings cannot score this task spec (e.g. a positive label that is not
        one of the task's labels, accuracy on a regression task); None when they can."""
        return None

    @classmethod
    def code_files(cls, settings: StrictModel) -> list[str]:
        """Python files these settings make the metric load and run (an ``evaluate`` module);
        ``settings`` are validated with ``cls.Settings`` by the caller.

        Task files must not run code unless the user opts in (``--trust-task-code``), so the
        runner, ``score`` and ``rescore`` ask before anything runs; evalharness's own metrics
        run none.
        """
        return []

    # -- provided -----------------------------------------------------------------------
    def signature(self) -> Signature:
        """What determines the value: metric, settings, implementation and version, interval method."""
        impl = self.reference
        if self.reference_package:
            impl += f"=={package_version(self.reference_package)}"
        return Signature(
            metric=self.name,
            settings=self.settings.model_dump(mode="json"),
            context=self.signature_context(),
            implementation=impl,
            interval=self.interval_method,
            evalharness=package_version("evalharness"),
            extras=self.signature_extras(),
        )

    def signature_context(self) -> dict[str, str]:
        """Facts of the computation shown before the settings (e.g. perplexity's unit)."""
        return {}

    def signature_extras(self) -> dict[str, str]:
        """Facts of the reference implementation shown last (e.g. sacrebleu's own signature)."""
        return {}

    def values(self, predictions: Sequence[MetricInput]) -> list[JsonValue]:
        """The values the statistics are computed from: typed predictions (what formulations
        and prediction files give) as their JSON contract, after checking the metric accepts
        their type; plain values (Python API callers) as they are."""
        values: list[JsonValue] = []
        for index, prediction in enumerate(predictions):
            if isinstance(prediction, PREDICTION_TYPES):
                if not isinstance(prediction, self.accepts):
                    accepted = ", ".join(kind.__name__ for kind in self.accepts)
                    raise MetricInputError(f"{self.name}: prediction {index} is a {type(prediction).__name__}; it scores {accepted}")
                values.append(prediction.to_json())
            else:
                values.append(prediction)
        return values

    def check_inputs(self, predictions: Sequence[object], references: Sequence[object]) -> None:
        if len(predictions) != len(references):
            raise MetricInputError(
                f"{self.name}: {len(predictions)} predictions but {len(references)} references"
            )
        if len(references) == 0:
            raise MetricInputError(f"{self.name}: no examples to score")

    def interval(
        self, stats: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float
    ) -> Interval:
        """The interval of :attr:`interval_method` over the rows that entered the metric."""
        stats = np.asarray(stats, dtype=float)
        rows = stats[self.entered(stats)]
        return INTERVALS[self.interval_method](self, rows, rng=rng, n_resamples=n_resamples, confidence=confidence)

    def result(
        self,
        stats: FloatArray,
        *,
        rng: np.random.Generator,
        n_resamples: int = 1000,
        confidence: float = 0.95,
        groups: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> MetricResult:
        """Score pre-computed statistics (e.g. re-read from a run record); ``seed`` (the one
        ``rng`` was made from) goes into the signature."""
        stats = np.asarray(stats, dtype=float)
        value = float(self.aggregate(stats))
        interval = self.interval(stats, rng=rng, n_resamples=n_resamples, confidence=confidence)
        breakdown: dict[str, GroupResult] = {}
        if groups is not None:
            labels = np.asarray(groups, dtype=object)
            for group in sorted(set(groups)):
                rows = stats[labels == group]
                n_group = int(self.entered(rows).sum())
                if n_group == 0:
                    continue  # none of the group's examples entered this metric
                sub = self.interval(rows, rng=rng, n_resamples=n_resamples, confidence=confidence)
                breakdown[group] = GroupResult.computed(float(self.aggregate(rows)), sub.low, sub.high, n_group)
        note = self.undefined_note(value, stats, breakdown, groups)
        n = int(self.entered(stats).sum())
        resampled = "bootstrap" in interval.method
        run_part = {"n": n, "seed": seed if resampled else None, "resamples": n_resamples if resampled else None}
        return MetricResult(
            metric=self.name,
            settings=self.settings.model_dump(mode="json"),
            value=finite_or_none(value),
            ci=containing(value, interval.low, interval.high),
            stderr=finite_or_none(interval.stderr),
            n=n,
            higher_is_better=self.higher_is_better,
            signature=self.signature().model_copy(update=run_part),
            ci_method=interval.method,
            ideal=self.ideal,
            groups=breakdown,
            note=note,
        )

    def undefined_note(
        self, value: float, stats: FloatArray, breakdown: Mapping[str, GroupResult], groups: Sequence[str] | None
    ) -> str | None:
        """Why the value, or a group's value, came out undefined (None: every value is defined)."""

        def reason(rows: FloatArray) -> str:
            return self.undefined_reason(rows) or f"{self.name} is undefined on these {rows.shape[0]} examples"

        parts = [] if math.isfinite(value) else [reason(stats)]
        labels = np.asarray(groups if groups is not None else [], dtype=object)
        undefined = [group for group, result in breakdown.items() if result.value is None]
        if parts and len(undefined) == len(breakdown):
            return parts[0]  # every group is undefined for the same reason as the whole
        parts += [f"group {group}: {reason(stats[labels == group])}" for group in undefined]
        return "; ".join(parts) or None

    def compute(
        self,
        predictions: Sequence[MetricInput],
        references: Sequence[JsonValue],
        *,
        rng: np.random.Generator,
        n_resamples: int = 1000,
        confidence: float = 0.95,
        groups: Sequence[str] | None = None,
    ) -> MetricResult:
        """Score predictions against references with a confidence interval."""
        self.check_inputs(predictions, references)
        stats = np.asarray(self.example_stats(self.values(predictions), references), dtype=float)
        if stats.ndim != 2 or stats.shape[0] != len(references):
            raise AssertionError(f"{self.name}.example_stats returned shape {stats.shape}")
        return self.result(
            stats, rng=rng, n_resamples=n_resamples, confidence=confidence, groups=groups
        )


def _wilson(metric: Metric, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
    """A proportion of 0/1 outcomes, mapped onto the metric's bounds (x100: [0, 100])."""
    low, high = metric.bounds
    outcomes = metric.outcomes(rows)
    if outcomes is None:  # statistics re-read from a samples file that was edited or damaged
        raise MetricInputError(
            f"{metric.name}: per-example statistics are not 0/1 outcomes, so the proportion's Wilson interval "
            "is undefined; the samples file was edited or damaged (re-run the evaluation)"
        )
    interval = wilson_interval(int(outcomes.sum()), outcomes.size, confidence=confidence)
    span = high - low
    return Interval(low + span * interval.low, low + span * interval.high, span * interval.stderr, interval.method)


def _bootstrap(metric: Metric, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
    return bootstrap_interval(
        rows,
        aggregate=metric.aggregate,
        aggregate_sums=metric.aggregate_sums if metric.additive else None,
        rng=rng,
        n_resamples=n_resamples,
        confidence=confidence,
    )


def _wilson_or_bootstrap(metric: Metric, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
    """Wilson when every example is one 0/1 outcome; else (an example pools several
    outcomes, which are not independent) the percentile bootstrap over examples."""
    chosen = _bootstrap if metric.outcomes(rows) is None else _wilson
    return chosen(metric, rows, rng=rng, n_resamples=n_resamples, confidence=confidence)


class IntervalMethod(Protocol):
    """How a confidence interval is computed from the rows that entered a metric."""

    def __call__(
        self, metric: Metric, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float
    ) -> Interval: ...


# Confidence intervals by name (``Metric.interval_method``); each stays inside the metric's bounds.
INTERVALS: dict[str, IntervalMethod] = {
    "wilson": _wilson,
    "bootstrap-percentile": _bootstrap,
    "wilson-or-bootstrap-percentile": _wilson_or_bootstrap,
}


def is_missing(value: object) -> bool:
    """None or a float NaN: a reference or prediction that must not be scored silently."""
    return value is None or (isinstance(value, float) and math.isnan(value))


class AdditiveMetric(Metric):
    """A metric whose corpus score is a function of column sums of its statistics.

    Include a count column when the score is a mean, so sums carry ``n``.
    """

    additive = True

    @abstractmethod
    def aggregate_sums(self, sums: FloatArray) -> FloatArray: ...

    def aggregate(self, stats: FloatArray) -> float:
        return float(self.aggregate_sums(np.asarray(stats).sum(axis=0, keepdims=True))[0])
