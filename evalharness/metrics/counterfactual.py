"""Counterfactual-probe metrics (prompting/counterfactual.py): prediction flips and score
changes between original and perturbed inputs, per swap group and for the worst group.

Statistics per example are two columns per swap group, ``(value, applicable)``, where
``applicable`` says the group's terms occurred in the example (an example without any of a
group's terms says nothing about it). The overall value pools all (example, group) pairs;
each group's value, with a bootstrap interval over examples, is stored as a breakdown; with
``worst_group: true`` the value is that of the worst group (largest flip rate, or largest
absolute mean change), as HELM reports worst-group fairness metrics. Ideal: 0.

Only swappable examples (with a term of some group) enter the metric: they are its ``n``, and
intervals resample them (an example's swaps are not independent of each other). A group's
flip rate is a proportion over its swappable examples: Wilson interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JSONObject, JsonValue, expect_object
from evalharness.metrics.base import Metric, SettingsInput
from evalharness.stats import (
    BoolArray,
    FloatArray,
    Interval,
    bootstrap_interval,
    wilson_interval,
)
from evalharness.types import CounterfactualPrediction, GroupResult, MetricResult

__all__ = ["CounterfactualScoreChange", "FlipRate"]


@dataclass(frozen=True)
class _Probe:
    """A counterfactual prediction's JSON contract (``CounterfactualPrediction.to_json``):
    the original answer and, per swap group, the perturbed answer, the flip and the gold."""

    original: JsonValue
    perturbed: JSONObject
    flipped: JSONObject
    gold: JSONObject


def _checked(name: str, prediction: JsonValue, index: int) -> _Probe:
    keys = {"original", "perturbed", "flipped", "gold"}
    if not isinstance(prediction, Mapping) or not keys <= set(prediction):
        raise MetricInputError(
            f"{name}: prediction {index} is not a counterfactual prediction (a task with a 'counterfactual:' section)"
        )
    per_group = {
        key: expect_object(prediction[key], f"{name}: prediction {index}: '{key}' (one entry per swap group)", error=MetricInputError)
        for key in ("perturbed", "flipped", "gold")
    }
    if not all(isinstance(flag, bool) for flag in per_group["flipped"].values()):  # "false" is not a flag
        raise MetricInputError(f"{name}: prediction {index}: 'flipped' should hold true or false per swap group, got {per_group['flipped']!r}")
    return _Probe(prediction["original"], per_group["perturbed"], per_group["flipped"], per_group["gold"])


def _ratio(stats: FloatArray) -> float:
    values, applicable = stats[:, 0::2].sum(), stats[:, 1::2].sum()
    return float(100.0 * values / applicable) if applicable > 0 else float("nan")


class WorstGroupSettings(StrictModel):
    worst_group: bool = False


class _GroupedCounterfactual(Metric):
    accepts = (CounterfactualPrediction,)
    higher_is_better = False
    ideal = 0.0
    settings: WorstGroupSettings
    Settings = WorstGroupSettings

    def _probes(self, predictions: Sequence[JsonValue]) -> list[_Probe]:
        return [_checked(self.name, prediction, index) for index, prediction in enumerate(predictions)]

    def _names(self, probes: Sequence[_Probe]) -> list[str]:
        names: set[str] = set()
        for probe in probes:
            names |= set(probe.perturbed)
        self.group_names = sorted(names)
        return self.group_names

    def entered(self, stats: FloatArray) -> BoolArray:
        return stats[:, 1::2].sum(axis=1) > 0

    def group_interval(self, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
        """Interval of one swap group's value from its ``(value, applicable)`` rows."""
        return bootstrap_interval(rows, aggregate=_ratio, aggregate_sums=None, rng=rng, n_resamples=n_resamples, confidence=confidence)

    def _per_group(self, stats: FloatArray) -> list[float]:
        return [_ratio(stats[:, 2 * g : 2 * g + 2]) for g in range(stats.shape[1] // 2)]

    def aggregate(self, stats: FloatArray) -> float:
        if not self.settings.worst_group:
            return _ratio(stats)
        values = [v for v in self._per_group(stats) if math.isfinite(v)]
        return max(values, key=abs) if values else float("nan")

    def undefined_reason(self, stats: FloatArray) -> str | None:
        if stats[:, 1::2].sum() == 0:
            return f"none of the {stats.shape[0]} examples contains a term of any swap group: nothing was perturbed"
        return None

    def example_scores(self, stats: FloatArray) -> FloatArray:
        applicable = stats[:, 1::2].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(applicable > 0, 100.0 * stats[:, 0::2].sum(axis=1) / applicable, np.nan)

    def result(self, stats: FloatArray, *, rng: np.random.Generator, n_resamples: int = 1000,
               confidence: float = 0.95, groups: Sequence[str] | None = None, seed: int | None = None) -> MetricResult:
        overall = super().result(stats, rng=rng, n_resamples=n_resamples, confidence=confidence, seed=seed)
        names = getattr(self, "group_names", [f"group{g}" for g in range(stats.shape[1] // 2)])
        breakdown = {}
        for g, name in enumerate(names):
            columns = stats[:, 2 * g : 2 * g + 2]
            rows = columns[columns[:, 1] > 0]
            if rows.shape[0] == 0:
                continue
            interval = self.group_interval(rows, rng=rng, n_resamples=n_resamples, confidence=confidence)
            breakdown[name] = GroupResult.computed(_ratio(rows), interval.low, interval.high, int(rows.shape[0]))
        return overall.replaced(groups=breakdown)


class FlipRate(_GroupedCounterfactual):
    """% of (example, swap group) pairs whose prediction changed under the swap."""

    name = "flip_rate"
    bounds = (0.0, 100.0)
    reference = "counterfactual prediction flip rate (HELM fairness perturbations)"
    interval_method = "wilson-or-bootstrap-percentile"

    def __init__(self, settings: SettingsInput = None) -> None:
        super().__init__(settings)
        if self.settings.worst_group:
            self.interval_method = "bootstrap-percentile"  # the largest of several rates

    def outcomes(self, rows: FloatArray) -> FloatArray | None:
        """0/1 per example only when each swappable example has exactly one swap group."""
        return super().outcomes(rows) if (rows[:, 1::2].sum(axis=1) == 1).all() else None

    def group_interval(self, rows: FloatArray, *, rng: np.random.Generator, n_resamples: int, confidence: float) -> Interval:
        interval = wilson_interval(int(rows[:, 0].sum()), rows.shape[0], confidence=confidence)
        return Interval(100.0 * interval.low, 100.0 * interval.high, 100.0 * interval.stderr, interval.method)

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        probes = self._probes(predictions)
        names = self._names(probes)
        stats = np.zeros((len(probes), 2 * len(names)))
        for row, probe in enumerate(probes):
            for g, name in enumerate(names):
                if name in probe.flipped:
                    stats[row, 2 * g : 2 * g + 2] = (float(bool(probe.flipped[name])), 1.0)
        return stats


class ScoreChangeSettings(WorstGroupSettings):
    metric: str = "accuracy"  # the per-example score compared (a registered metric)
    settings: dict[str, object] = {}  # the inner metric's, validated when it is built


class CounterfactualScoreChange(_GroupedCounterfactual):
    """Mean change of the per-example score (perturbed - original), on the inner metric's
    scale (accuracy: x100 per example, SQuAD F1 ...), against the perturbed gold answers."""

    name = "counterfactual_score_change"
    reference = "mean per-example score change under counterfactual swaps"
    settings: ScoreChangeSettings
    Settings = ScoreChangeSettings

    def __init__(self, settings: SettingsInput = None) -> None:
        from evalharness.metrics.registry import build_metric

        super().__init__(settings)
        low, high = build_metric(self.settings.metric, self.settings.settings).bounds
        self.bounds = (low - high, high - low)  # a change of the inner per-example score

    @classmethod
    def code_files(cls, settings: StrictModel) -> list[str]:
        """The inner metric's (an ``hf_evaluate`` inner metric runs its module)."""
        from evalharness.metrics.registry import metric_code_files

        assert isinstance(settings, ScoreChangeSettings)  # the caller validated them with cls.Settings
        return metric_code_files(settings.metric, settings.settings)

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        from evalharness.metrics.registry import build_metric

        inner = build_metric(self.settings.metric, self.settings.settings)
        probes = self._probes(predictions)
        names = self._names(probes)
        originals = [probe.original for probe in probes]
        base = inner.example_scores(np.asarray(inner.example_stats(originals, references), dtype=float))
        stats = np.zeros((len(probes), 2 * len(names)))
        for g, name in enumerate(names):
            rows = [i for i, probe in enumerate(probes) if name in probe.perturbed]
            if not rows:
                continue
            perturbed = [probes[i].perturbed[name] for i in rows]
            golds = [probes[i].gold.get(name, references[i]) for i in rows]
            golds = [gold if gold is not None else references[i] for gold, i in zip(golds, rows)]
            scores = inner.example_scores(np.asarray(inner.example_stats(perturbed, golds), dtype=float))
            for i, score in zip(rows, scores):
                stats[i, 2 * g : 2 * g + 2] = (score - base[i], 1.0)
        return stats / np.array([100.0, 1.0] * len(names)) if names else stats  # _ratio multiplies by 100
