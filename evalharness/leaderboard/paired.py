"""Paired tests between every two rows of a leaderboard, one column at a time.

Every system on a board was scored on the same examples, so two rows are compared the way
``evalharness compare`` compares two runs: the metric's per-example statistics are read back
from the samples files, re-aggregated, and tested with the paired test the metric declares
(paired bootstrap, McNemar) with ``compare``'s settings. Each result is a
:class:`~evalharness.comparison.compare.MetricComparison` equal to what ``compare_runs`` gives
for that pair (``tests/test_site_v2.py`` checks it), p-values still unadjusted: the caller
picks the family (all pairs of a column for rank clusters, all metrics of a pair for the
model-vs-model page).

Why not just call ``compare_runs`` for every pair: a 20-system board has 190 pairs. The
paired bootstrap of ``compare`` seeds a fresh generator per comparison, so every pair of a
column is resampled with the *same* indices; scoring each system once on those resamples
and differencing gives the same numbers in a fraction of the time. Columns where that does
not hold (example ids in another order, clustered examples, the permutation test, different
subsets entering the metric) fall back to ``compare_runs`` pair by pair.

A pair that cannot be tested (samples missing or damaged, samples that do not reproduce the
recorded value, different examples) is reported with the reason; it is never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from evalharness.errors import EvalHarnessError, RecordError
from evalharness.leaderboard.paired_aggregate import aggregate_tests
from evalharness.leaderboard.paired_base import (
    ColumnTests,
    family_settings,
    scorer_of,
    verdict_of,
)
from evalharness.records.record import samples_stats
from evalharness.stats import BOOTSTRAP_PVALUES, Scorer, adjust_pvalues, mcnemar_exact

if TYPE_CHECKING:
    import pandas as pd

    from evalharness.comparison.compare import CompareSettings, MetricComparison
    from evalharness.jsonvalues import JSONObject, JsonValue
    from evalharness.metrics.base import Metric
    from evalharness.records.record import RunRecord, TaskEntry
    from evalharness.stats import FloatArray
    from evalharness.types import MetricResult

__all__ = ["ColumnRow", "ColumnTests", "PairedTests", "verdict_of"]


@dataclass(frozen=True)
class ColumnRow:
    """A board row's cell of one column, as the tidy frame holds it."""

    run_dir: Path
    task: str
    metric: str
    value: float


def _column_rows(frame: pd.DataFrame, order: Sequence[str]) -> dict[str, ColumnRow]:
    """The cells of ``frame`` (one column's rows) of the models in ``order``, in that order."""
    by_model = {
        str(model): ColumnRow(Path(str(run_dir)), str(task), str(metric), float(value))
        for model, run_dir, task, metric, value in zip(frame["model_id"], frame["run_dir"], frame["task"], frame["metric"], frame["value"])
    }
    return {model: by_model[model] for model in order if model in by_model}


def _example_stats(samples: Sequence[Mapping[str, JsonValue]], metric: str) -> FloatArray | None:
    """Every sample's statistics of ``metric`` as rows of one array; None when a sample lacks
    them or they are not numbers of one shape."""
    try:
        return samples_stats(samples, metric)
    except RecordError:
        return None

@dataclass
class _System:
    """One row's side of a column: its run, recorded entry and aligned statistics."""

    model: str
    run_dir: Path
    task: str
    metric_key: str
    entry: MetricResult
    ids: list[str]
    stats: FloatArray


class _Loader:
    """Records and samples read once per site build, however many pairs use them."""

    def __init__(self) -> None:
        self.records: dict[Path, RunRecord] = {}
        self.samples: dict[tuple[Path, str], list[JSONObject] | str] = {}

    def record(self, run_dir: Path) -> RunRecord:
        from evalharness.records.record import load_record

        if run_dir not in self.records:
            self.records[run_dir] = load_record(run_dir)
        return self.records[run_dir]

    def rows(self, run_dir: Path, task: str) -> list[JSONObject] | str:
        """The samples rows, or why they cannot be used (a string)."""
        from evalharness.records.record import read_samples

        key = (run_dir, task)
        if key not in self.samples:
            try:
                self.samples[key] = read_samples(run_dir, task)
            except EvalHarnessError as exc:
                self.samples[key] = str(exc).splitlines()[0]
        return self.samples[key]


class PairedTests:
    """Pairwise paired tests for the columns of a built leaderboard, computed on demand."""

    def __init__(self, data: pd.DataFrame, settings: CompareSettings | None = None):
        from evalharness.comparison.compare import CompareSettings

        self.data = data
        self.settings = settings or CompareSettings()
        self.loader = _Loader()
        self._columns: dict[str, ColumnTests] = {}

    def column(self, key: str, order: list[str]) -> ColumnTests:
        """Tests of every pair of ``order`` (models best first) that has a value in ``key``."""
        if key not in self._columns:
            self._columns[key] = self._test_column(key, order)
        return self._columns[key]

    def aggregate(self, key: str, structure: dict[str, dict[str, list[str]]], values: pd.Series[float], order: list[str]) -> ColumnTests:
        """Tests of every pair on an aggregate (see ``paired_aggregate``)."""
        if key not in self._columns:
            self._columns[key] = aggregate_tests(self, key, structure, values, order)
        return self._columns[key]

    # -- one column --------------------------------------------------------------------------
    def _column_frame(self, key: str) -> pd.DataFrame:
        """The tidy rows of column ``key`` that have a value."""
        return self.data[(self.data["column"] == key) & np.isfinite(self.data["value"].to_numpy(dtype=float))]

    def column_rows(self, key: str, order: Sequence[str]) -> dict[str, ColumnRow]:
        """The cells of column ``key`` of the models in ``order`` that have a value, in that order."""
        return _column_rows(self._column_frame(key), order)

    def usable_systems(self, rows: Mapping[str, ColumnRow], problems: dict[str, str]) -> tuple[list[_System], Metric | None]:
        """The rows that can take part in paired tests; why the others cannot, in ``problems``."""
        systems: list[_System] = []
        metric: Metric | None = None
        for model, row in rows.items():
            problem, system = self._system(model, row)
            if system is not None and metric is None:
                metric, problem = self._metric(system.entry)
            if system is not None and not problem and metric is not None:
                problem = self._reproduced(system, metric, row)
            if problem:
                problems[model] = problem
            elif system is not None:
                systems.append(system)
        return systems, metric

    def _system(self, model: str, row: ColumnRow) -> tuple[str, _System | None]:
        run_dir = row.run_dir
        try:
            record = self.loader.record(run_dir)
        except EvalHarnessError as exc:
            return str(exc).splitlines()[0], None
        entry = record.tasks[row.task].metrics[row.metric]
        samples = self.loader.rows(run_dir, row.task)
        if isinstance(samples, str):
            return samples, None
        ids = [str(sample.get("id")) for sample in samples]
        stats = _example_stats(samples, row.metric)
        if stats is None:
            return f"samples of {row.task} in {run_dir} lack per-example statistics for '{row.metric}'", None
        if len(set(ids)) != len(ids):
            return f"samples of {row.task} in {run_dir} repeat an example id", None
        return "", _System(model, run_dir, row.task, row.metric, entry, ids, stats)

    def _metric(self, entry: MetricResult) -> tuple[Metric | None, str]:
        from evalharness.metrics.registry import build_metric

        try:
            return build_metric(entry.metric, entry.settings), ""
        except (EvalHarnessError, ValueError) as exc:  # ValueError: settings this version does not know
            return None, f"cannot rebuild metric '{entry.metric}' ({str(exc).splitlines()[0]})"

    def _reproduced(self, system: _System, metric: Metric, row: ColumnRow) -> str:
        """Why the samples do not give the recorded value ('' when they do): a test on them
        would be a test of other numbers than the board shows."""
        try:
            entered = metric.entered(system.stats)
            value = float(metric.aggregate(system.stats[entered])) if entered.any() else math.nan
        except (ValueError, IndexError, TypeError):
            return f"samples of {row.task} in {system.run_dir} hold statistics of the wrong shape for '{row.metric}'"
        recorded = row.value
        if math.isfinite(value) and math.isclose(value, recorded, rel_tol=1e-6, abs_tol=1e-9):
            return ""
        return f"its samples of {row.task} give {row.metric} = {value:.6g}, not the recorded {recorded:.6g} ({system.run_dir})"

    def _test_column(self, key: str, order: list[str]) -> ColumnTests:
        result = ColumnTests(key)
        frame = self._column_frame(key)
        rows = _column_rows(frame, order)
        problems: dict[str, str] = {}
        systems, metric = self.usable_systems(rows, problems)
        result.notes += [f"{model}: no paired test: {problem}" for model, problem in problems.items()]
        members = list(rows)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if a in problems or b in problems:
                    result.untested[(a, b)] = "; ".join(f"{m}: {problems[m]}" for m in (a, b) if m in problems)
        if len(systems) >= 2 and metric is not None:  # a usable system has its metric rebuilt
            settings = result.settings = family_settings(self.settings, len(systems) * (len(systems) - 1) // 2)
            fast = _FastColumn.build(systems, metric, settings, self._task_of(frame))
            run_pair: Callable[[_System, _System], MetricComparison | str] = fast.pair if fast else partial(self._compare_pair, settings=settings)
            for i, first in enumerate(systems):
                for second in systems[i + 1 :]:
                    outcome = run_pair(first, second)
                    if isinstance(outcome, str):
                        result.untested[(first.model, second.model)] = outcome
                    else:
                        result.tests[(first.model, second.model)] = outcome
        self._adjust(result)
        return result

    def _task_of(self, frame: pd.DataFrame) -> TaskEntry:
        return self.loader.record(Path(str(frame["run_dir"].iloc[0]))).tasks[str(frame["task"].iloc[0])]

    def _adjust(self, result: ColumnTests) -> None:
        pairs = list(result.tests)
        raw = np.array([np.nan if result.tests[p].p_value is None else result.tests[p].p_value for p in pairs])
        adjusted = adjust_pvalues(raw, self.settings.correction) if pairs else raw
        for pair, p_adj in zip(pairs, adjusted):
            result.tests[pair] = with_adjusted(result.tests[pair], float(p_adj) if math.isfinite(p_adj) else None, self.settings.alpha)

    def _compare_pair(self, a: _System, b: _System, *, settings: CompareSettings) -> MetricComparison | str:
        """``compare_runs`` itself, for columns the shared-resample shortcut does not cover."""
        from evalharness.comparison.compare import compare_runs

        try:
            comparison = compare_runs(a.run_dir, b.run_dir, settings=settings, tasks=[a.task], metrics={a.task: [a.metric_key]})
        except EvalHarnessError as exc:
            return "not compared: " + str(exc).splitlines()[0]
        found = comparison.get(a.task, a.metric_key)
        if found is None:
            return "not compared: " + ("; ".join(n["reason"] for n in comparison.not_compared) or "no shared examples")
        return found


def with_adjusted(test: MetricComparison, p_adjusted: float | None, alpha: float) -> MetricComparison:
    """The test with its p-value adjusted over a family and the verdict that follows."""
    from dataclasses import replace

    verdict = verdict_of(test.change, p_adjusted, alpha, test.direction.lower_change_is_better)
    return replace(test, p_adjusted=p_adjusted, verdict=verdict)


class _Shared(TypedDict):
    """What a test of two systems says whatever its outcome (``MetricComparison`` fields)."""

    task: str
    metric: str
    metric_name: str
    value_a: float
    value_b: float
    compared_on: str
    p_adjusted: float | None
    higher_is_better: bool
    ideal: float | None
    verdict: str
    notes: list[str]


@dataclass
class _FastColumn:
    """Every system scored once on the resamples that ``compare`` would draw for any pair."""

    metric: Metric
    scorer: Scorer
    settings: CompareSettings
    test: str
    replicates: dict[str, FloatArray]
    stats: dict[str, FloatArray]
    method: str
    notes: list[str]

    @classmethod
    def build(cls, systems: list[_System], metric: Metric, settings: CompareSettings, task: TaskEntry) -> _FastColumn | None:
        ideal = systems[0].entry.ideal
        test = settings.test or getattr(metric, "paired_test", "bootstrap")
        notes = []
        if ideal is not None and test == "mcnemar":
            notes.append(f"mcnemar cannot test a distance from the ideal {ideal:g}; used the paired bootstrap")
            test = "bootstrap"
        entered = [metric.entered(s.stats) for s in systems]
        same = all(s.ids == systems[0].ids for s in systems) and all(np.array_equal(m, entered[0]) for m in entered)
        if test not in FAST_TESTS or task.cluster_field or not same or not entered[0].any():
            return None
        mask = entered[0]
        scorer = scorer_of(metric, ideal)
        n = int(mask.sum())
        stats = {s.model: s.stats[mask] for s in systems}
        replicates = _replicates(stats, scorer, n, settings)
        method = f"paired-bootstrap-B{settings.n_resamples}-p:{settings.bootstrap_pvalue}"
        return cls(metric, scorer, settings, test, replicates, stats, method, notes)

    def pair(self, a: _System, b: _System) -> MetricComparison | str:
        """B = ``b`` against A = ``a``, exactly as ``compare_runs(a, b)`` tests it."""
        from evalharness.comparison.compare import MetricComparison

        stats_a, stats_b = self.stats[a.model], self.stats[b.model]
        value_a, value_b = self.scorer.value(stats_a), self.scorer.value(stats_b)
        ideal = a.entry.ideal
        common: _Shared = {
            "task": a.task, "metric": a.metric_key, "metric_name": a.entry.metric, "value_a": value_a, "value_b": value_b,
            "compared_on": "value" if ideal is None else f"distance from ideal {ideal:g}", "p_adjusted": None,
            "higher_is_better": a.entry.higher_is_better, "ideal": ideal, "verdict": "undefined", "notes": list(self.notes),
        }
        if not (math.isfinite(value_a) and math.isfinite(value_b)):
            return MetricComparison(**common, difference=None, change=None, ci=(None, None), p_value=None, test=self.test,
                                    method="", n=stats_a.shape[0], details={})
        observed, low, high, p_value, details = self._bootstrap(a.model, b.model)
        test, method, n = "paired-bootstrap", self.method, stats_a.shape[0]
        if self.test == "mcnemar":
            outcome = self._mcnemar(stats_a, stats_b)
            if isinstance(outcome, str):
                return outcome
            p_value, n, details = outcome
            test, method = "mcnemar-exact", f"mcnemar-exact; ci:{self.method}"
        return MetricComparison(
            **common, difference=value_b - value_a, change=observed, ci=(_or_none(low), _or_none(high)),
            p_value=_or_none(p_value), test=test, method=method, n=n, details=details,
        )

    def _bootstrap(self, a: str, b: str) -> tuple[float, float, float, float, dict[str, int]]:
        """``stats.paired_bootstrap`` on replicates computed once per system."""
        stats_a, stats_b = self.stats[a], self.stats[b]
        observed = self.scorer.observed(stats_a, stats_b)
        deltas = self.replicates[b] - self.replicates[a]
        finite = deltas[np.isfinite(deltas)]
        details = {"n_resamples": self.settings.n_resamples, "undefined_resamples": int(deltas.size - finite.size)}
        if stats_a.shape[0] < 2 or finite.size == 0 or not math.isfinite(observed):
            return observed, math.nan, math.nan, math.nan, details
        identical = np.array_equal(stats_a, stats_b)
        p_value = 1.0 if identical else BOOTSTRAP_PVALUES[self.settings.bootstrap_pvalue](finite, observed)
        tail = (1 - self.settings.confidence) / 2
        low, high = np.quantile(finite, [tail, 1 - tail])
        return observed, float(low), float(high), float(p_value), details

    def _mcnemar(self, stats_a: FloatArray, stats_b: FloatArray) -> tuple[float, int, dict[str, int]] | str:
        """``compare``'s McNemar: the 0/1 outcomes of the rows that entered the metric."""
        scores_a, scores_b = self.metric.example_scores(stats_a), self.metric.example_scores(stats_b)
        values = np.unique(np.concatenate([scores_a, scores_b]))
        if values.size > 2 or not np.isfinite(values).all():
            return f"not compared: metric '{self.metric.name}' declares McNemar's test but its per-example scores are not two-valued"
        success = values.max() if self.metric.higher_is_better else values.min()
        result = mcnemar_exact(scores_a == success, scores_b == success)
        return result.p_value, int(scores_a.size), {"only_a_correct": result.only_a, "only_b_correct": result.only_b}


def _replicates(stats: dict[str, FloatArray], scorer: Scorer, n: int, settings: CompareSettings) -> dict[str, FloatArray]:
    """Each system's compared statistic on the resamples ``compare`` draws (its generator,
    seeded afresh, drawing ``(B, n)`` indices). Drawn block by block from one generator they
    are the same numbers, so memory stays at one block; for additive metrics one product of
    the block's draw counts with every system's statistics side by side scores them all."""
    rng = np.random.default_rng(settings.seed)
    models = list(stats)
    widths = np.cumsum([0] + [stats[m].shape[1] for m in models])
    stacked = np.hstack([stats[m] for m in models])
    parts: dict[str, list[FloatArray]] = {m: [] for m in models}
    for start in range(0, settings.n_resamples, BLOCK):
        indices = rng.integers(0, n, size=(min(BLOCK, settings.n_resamples - start), n))
        if scorer.aggregate_sums is None:
            for model in models:
                parts[model].append(scorer.statistic(scorer.resampled(stats[model], indices)))
            continue
        offsets = (indices + (np.arange(indices.shape[0]) * n)[:, None]).ravel()
        counts = np.bincount(offsets, minlength=indices.shape[0] * n).reshape(indices.shape[0], n).astype(float)
        sums = counts @ stacked
        for i, model in enumerate(models):
            parts[model].append(scorer.statistic(np.asarray(scorer.aggregate_sums(sums[:, widths[i] : widths[i + 1]]), dtype=float)))
    return {model: np.concatenate(blocks) for model, blocks in parts.items()}


def _or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


FAST_TESTS = ("bootstrap", "mcnemar")
BLOCK = 512


def _separation(tests: ColumnTests, fallback: Callable[[str, str], bool], alpha: float) -> Callable[[str, str], bool]:
    """``separated(a, b)``: the corrected paired test says ``a`` is better than ``b``; pairs
    without a test fall back to the marginal-interval rule."""

    def separated(a: str, b: str) -> bool:
        for (first, second), wanted in (((a, b), "regressed"), ((b, a), "improved")):
            test = tests.tests.get((first, second))
            if test is not None:
                return test.verdict == wanted and test.p_adjusted is not None and test.p_adjusted < alpha
        return fallback(a, b)

    return separated


def _describe(key: str, tests: ColumnTests, settings: CompareSettings) -> list[str]:
    kinds = sorted({test.test for test in tests.tests.values()})
    if tests.settings is not None and any("bootstrap" in kind for kind in kinds):
        kinds.append(f"{tests.settings.n_resamples} resamples, seed {tests.settings.seed}")
    notes = [
        f"ranks by {key}: clusters from paired tests on the shared examples ({', '.join(kinds) or 'none run'}; "
        f"{settings.correction} over the {len(tests.tests)} tested pairs, alpha {settings.alpha:g}): a model shares a rank "
        "with the models it cannot be separated from, and every cluster is significantly better than every lower one"
    ]
    if tests.untested:
        notes.append(f"ranks by {key}: {len(tests.untested)} pair(s) without a paired test are separated only when their 95% intervals do not overlap")
        notes += [f"ranks by {key}: {note}" for note in tests.notes]
    return notes


def rank_column(
    values: pd.Series[float],
    ci_low: pd.Series[float],
    ci_high: pd.Series[float],
    *,
    key: str,
    rule: str,
    tests: PairedTests | None,
    direction: str,
    ideal: float,
    structure: dict[str, dict[str, list[str]]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """One column (or aggregate) ranked by ``rule``: ``paired`` clusters or ``marginal``
    intervals (see ``ranking``); returns the ranking and notes saying how it was made."""
    from evalharness.leaderboard.aggregates import goodness
    from evalharness.leaderboard.ranking import (
        marginal_separation,
        rank_clusters,
        rank_with_ties,
    )

    if rule == "marginal":
        ranking = rank_with_ties(values, ci_low, ci_high, direction=direction, ideal=ideal)
        return ranking.assign(cluster=ranking["rank"].fillna(0).astype(int)), [
            f"ranks by {key}: a model's rank is one plus the number of models whose whole 95% interval lies above its own (marginal rule)"
        ]
    fallback = marginal_separation(values, ci_low, ci_high, direction=direction, ideal=ideal)
    if tests is None:
        notes = [f"ranks by {key}: no paired test is defined for this aggregate; clusters separate models only when their 95% intervals do not overlap"]
        return rank_clusters(values, fallback, direction=direction, ideal=ideal), notes
    score = dict(zip(values.index, goodness(values.to_numpy(dtype=float), direction, ideal), strict=True))
    order = sorted((m for m in values.index if math.isfinite(score[m])), key=lambda m: (-score[m], str(m)))
    column = tests.column(key, order) if structure is None else tests.aggregate(key, structure, values, order)
    separated = _separation(column, fallback, tests.settings.alpha)
    return rank_clusters(values, separated, direction=direction, ideal=ideal), _describe(key, column, tests.settings)
