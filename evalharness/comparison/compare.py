"""Compare two run records with paired significance tests on the same examples.

For every task and metric both runs share, examples are matched by id and the metric's own
per-example sufficient statistics are re-aggregated (never the models): the difference of
the two corpus scores gets a confidence interval and a p-value from the paired test the
metric declares (``Metric.paired_test``): the paired bootstrap (Koehn 2004, resampled as
sacrebleu's ``significance`` module does), approximate randomization (Noreen 1989), or
McNemar's exact test for 0/1 outcomes. P-values across all comparisons are adjusted for
multiple testing (Holm 1979 or Benjamini-Hochberg 1995). Metrics with an ``ideal`` value
(bias scores) are compared on their distance from it, which is what is minimised.

Runs whose examples differ (data fingerprint, n or ids) are refused unless
``allow_different_data`` is set; then only the shared ids are compared, and the result says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from evalharness.comparison.pairing import (
    PairedTask,
    TaskComparison,
    pair_task,
    task_clusters,
    task_stats,
)
from evalharness.errors import (
    EvalHarnessError,
    IncomparableRunsError,
    RecordError,
    UsageError,
)
from evalharness.inference.clustered import FEW_CLUSTERS, cluster_bootstrap
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.records.record import LoadedRun, RunRecord, loaded_run
from evalharness.seeds import MAX_SEED
from evalharness.stats import (
    BOOTSTRAP_PVALUES,
    CORRECTIONS,
    BoolArray,
    FloatArray,
    PairedResult,
    Scorer,
    adjust_pvalues,
    mcnemar_exact,
    paired_bootstrap,
    paired_permutation,
)
from evalharness.types import (
    Direction,
    MetricResult,
    finite_or_none,
    signature_identity,
    signature_text,
)

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric

__all__ = [
    "COMPARE_SCHEMA",
    "PAIRED_TESTS",
    "CompareSettings",
    "Comparison",
    "IncomparableRunsError",
    "MetricComparison",
    "TaskComparison",
    "compare_runs",
]

COMPARE_SCHEMA = "evalharness.comparison.compare/1"
IMPROVED, REGRESSED, UNCHANGED, UNDEFINED = "improved", "regressed", "no significant change", "undefined"


@dataclass(frozen=True)
class CompareSettings:
    """How differences are tested. The defaults match sacrebleu's paired bootstrap
    (seed 12345, 1000 resamples) and its approximate randomization (10000 trials)."""

    alpha: float = 0.05
    correction: str = "holm"
    seed: int = 12345
    n_resamples: int = 1000
    n_permutations: int = 10000
    bootstrap_pvalue: str = "two-sided"
    confidence: float = 0.95
    test: str | None = None  # force one test for every metric instead of each metric's own
    allow_different_data: bool = False

    def __post_init__(self) -> None:
        checks = [
            (0 < self.alpha < 1, f"alpha must be between 0 and 1, got {self.alpha}"),
            (0 < self.confidence < 1, f"confidence must be between 0 and 1, got {self.confidence}"),
            (self.correction in CORRECTIONS, f"unknown correction '{self.correction}' (known: {', '.join(CORRECTIONS)})"),
            (self.bootstrap_pvalue in BOOTSTRAP_PVALUES, f"unknown bootstrap p-value '{self.bootstrap_pvalue}' (known: {', '.join(BOOTSTRAP_PVALUES)})"),
            (self.test is None or self.test in PAIRED_TESTS, f"unknown paired test '{self.test}' (known: {', '.join(PAIRED_TESTS)})"),
            (self.n_resamples >= 10 and self.n_permutations >= 10, "at least 10 resamples and permutations are needed"),
            (not isinstance(self.seed, bool) and isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED, f"seed must be an integer between 0 and {MAX_SEED}, got {self.seed!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


@dataclass(frozen=True)
class MetricComparison:
    """One task and metric: A's and B's values on the shared examples and the tested change.

    ``change`` is B - A of the compared quantity: the value itself, or for metrics with an
    ideal the distance from the ideal (so a negative change is then an improvement).
    """

    task: str
    metric: str
    metric_name: str
    value_a: float | None
    value_b: float | None
    difference: float | None
    compared_on: str
    change: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    p_adjusted: float | None
    test: str
    method: str
    n: int
    higher_is_better: bool
    ideal: float | None
    verdict: str
    details: dict[str, int] = field(default_factory=dict)  # the test's counts (PairedResult.details)
    notes: list[str] = field(default_factory=list)

    @property
    def worsening(self) -> float | None:
        """How much worse B is than A in the compared quantity (negative: better)."""
        return None if self.change is None else self.direction.worsening(self.change)

    @property
    def direction(self) -> Direction:
        return Direction(self.higher_is_better, self.ideal)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_runs`; ``to_dict()`` is the JSON that ``compare`` writes."""

    run_a: JSONObject  # path, run_id, model, fingerprint, created (and where a gate found it)
    run_b: JSONObject
    settings: CompareSettings
    tasks: list[TaskComparison]
    metrics: list[MetricComparison]
    not_compared: list[dict[str, str]]

    def get(self, task: str, metric: str) -> MetricComparison | None:
        return next((m for m in self.metrics if m.task == task and m.metric == metric), None)

    def counts(self) -> dict[str, int]:
        verdicts = [m.verdict for m in self.metrics]
        return {verdict: verdicts.count(verdict) for verdict in (IMPROVED, REGRESSED, UNCHANGED, UNDEFINED)}

    def metric_rows(self) -> list[JSONObject]:
        """Each metric's comparison as written (``to_dict()["comparisons"]``)."""
        rows: list[JSONObject] = []
        for item in self.metrics:
            row = asdict(item)
            for key in ("value_a", "value_b", "difference", "change", "p_value", "p_adjusted"):
                row[key] = finite_or_none(row[key])
            row["ci"] = [finite_or_none(bound) for bound in item.ci]
            rows.append(row)
        return rows

    def to_dict(self) -> JSONObject:
        metrics: list[JsonValue] = [*self.metric_rows()]
        return {
            "schema": COMPARE_SCHEMA,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "settings": asdict(self.settings),
            "summary": {**self.counts()},
            "tasks": [asdict(task) for task in self.tasks],
            "comparisons": metrics,
            "not_compared": [{**reason} for reason in self.not_compared],
        }


# -- the paired tests, one function per declared kind --------------------------------------


@dataclass(frozen=True)
class _Pair:
    """One metric's aligned statistics in both runs and how to score them."""

    metric: Metric
    stats_a: FloatArray
    stats_b: FloatArray
    scorer: Scorer
    settings: CompareSettings

    def rng(self) -> np.random.Generator:
        # A fresh generator per comparison, as sacrebleu seeds each system pair, so a
        # result never depends on which other metrics are compared.
        return np.random.default_rng(self.settings.seed)

    def bootstrap(self) -> PairedResult:
        return paired_bootstrap(
            self.stats_a,
            self.stats_b,
            self.scorer,
            rng=self.rng(),
            n_resamples=self.settings.n_resamples,
            confidence=self.settings.confidence,
            pvalue=self.settings.bootstrap_pvalue,
        )

    def interval(self) -> tuple[float, float, float, str]:
        """CI of the change, whatever the test: the paired bootstrap percentile interval, which
        cannot leave the range a change can take (a t-interval of 0/100 differences can)."""
        result = self.bootstrap()
        return result.ci_low, result.ci_high, result.stderr, result.method


def _bootstrap_test(pair: _Pair) -> PairedResult:
    return pair.bootstrap()


def _permutation_test(pair: _Pair) -> PairedResult:
    observed, p_value, details = paired_permutation(
        pair.stats_a, pair.stats_b, pair.scorer, rng=pair.rng(), n_permutations=pair.settings.n_permutations
    )
    low, high, stderr, ci_method = pair.interval()
    method = f"approximate-randomization-R{pair.settings.n_permutations}; ci:{ci_method}"
    return PairedResult("paired-permutation", observed, low, high, stderr, p_value, method, pair.stats_a.shape[0], details)


def _binary_outcomes(pair: _Pair) -> tuple[BoolArray, BoolArray]:
    """Per-example success in each run, over the examples that entered the metric in both."""
    both = pair.metric.entered(pair.stats_a) & pair.metric.entered(pair.stats_b)
    scores_a = pair.metric.example_scores(pair.stats_a[both])
    scores_b = pair.metric.example_scores(pair.stats_b[both])
    values = np.unique(np.concatenate([scores_a, scores_b]))
    if values.size > 2 or not np.isfinite(values).all():
        raise RecordError(
            f"metric '{pair.metric.name}' declares McNemar's test but its per-example scores are not "
            f"two-valued ({values[:5].tolist()}...); compare it with --test bootstrap"
        )
    success = values.max() if pair.metric.higher_is_better else values.min()
    return scores_a == success, scores_b == success


def _mcnemar_test(pair: _Pair) -> PairedResult:
    correct_a, correct_b = _binary_outcomes(pair)
    result = mcnemar_exact(correct_a, correct_b)
    observed = pair.scorer.observed(pair.stats_a, pair.stats_b)
    low, high, stderr, ci_method = pair.interval()
    details = {"only_a_correct": result.only_a, "only_b_correct": result.only_b}
    return PairedResult("mcnemar-exact", observed, low, high, stderr, result.p_value, f"mcnemar-exact; ci:{ci_method}", correct_a.size, details)


def cluster_test(pair: _Pair, clusters: npt.NDArray[np.object_]) -> PairedResult:
    """The paired cluster bootstrap: whole clusters resampled, both runs scored on the same
    draw; the percentile interval and the bootstrap p-value of ``settings.bootstrap_pvalue``
    from those replicates. Used for every metric of a task whose examples share clusters:
    per-example tests (McNemar, per-example swaps) assume independent examples."""
    settings = pair.settings
    deltas, n_clusters = cluster_bootstrap(pair.stats_b, pair.stats_a, pair.scorer, list(clusters), rng=pair.rng(), n_resamples=settings.n_resamples)
    observed = pair.scorer.observed(pair.stats_a, pair.stats_b)
    finite = deltas[np.isfinite(deltas)]
    method = f"paired-cluster-bootstrap-B{settings.n_resamples}-p:{settings.bootstrap_pvalue}|clusters:{n_clusters}"
    details = {"n_resamples": settings.n_resamples, "undefined_resamples": int(deltas.size - finite.size), "clusters": n_clusters}
    nan = float("nan")
    if n_clusters < 2 or finite.size < 2 or not math.isfinite(observed):
        return PairedResult("paired-cluster-bootstrap", observed, nan, nan, nan, nan, method, pair.stats_a.shape[0], details)
    identical = np.array_equal(pair.stats_a, pair.stats_b)
    p_value = 1.0 if identical else BOOTSTRAP_PVALUES[settings.bootstrap_pvalue](finite, observed)
    tail = (1 - settings.confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return PairedResult("paired-cluster-bootstrap", observed, float(low), float(high), float(finite.std(ddof=1)), float(p_value), method,
                        pair.stats_a.shape[0], details)


@dataclass(frozen=True)
class PairedTest:
    run: Callable[[_Pair], PairedResult]
    tests_distance: bool  # can test a change of distance from an ideal value
    reference: str


PAIRED_TESTS: dict[str, PairedTest] = {
    "bootstrap": PairedTest(_bootstrap_test, True, "Koehn 2004; sacrebleu significance._paired_bs_test"),
    "permutation": PairedTest(_permutation_test, True, "Noreen 1989; sacrebleu significance._paired_ar_test"),
    "mcnemar": PairedTest(_mcnemar_test, False, "McNemar 1947, exact binomial form"),
}


# -- pairing examples: evalharness.comparison.pairing -----------------------------------------


def _run_info(path: Path, record: RunRecord) -> JSONObject:
    return {
        "path": str(path),
        "run_id": record.run_id,
        "model": record.model.name,
        "fingerprint": record.model.fingerprint,
        "created": record.created,
    }


# -- comparing -------------------------------------------------------------------------------


def _verdict(change: float | None, p_adjusted: float | None, alpha: float, lower_is_better: bool) -> str:
    if change is None or p_adjusted is None:
        return UNDEFINED
    if p_adjusted >= alpha or change == 0:
        return UNCHANGED
    return IMPROVED if (change < 0) == lower_is_better else REGRESSED


def _scorer(metric: Metric, ideal: float | None) -> Scorer:
    transform = None if ideal is None else (lambda values: np.abs(values - ideal))
    return Scorer(metric.aggregate, metric.aggregate_sums if metric.additive else None, transform)


def _compare_metric(
    paired: PairedTask, key: str, entries: tuple[MetricResult, MetricResult], dirs: tuple[Path, Path], settings: CompareSettings
) -> MetricComparison:
    """One metric's raw comparison (the adjusted p-value and the verdict are set later)."""
    from evalharness.metrics.registry import build_metric

    entry_a, entry_b = entries
    if (entry_a.metric, entry_a.settings) != (entry_b.metric, entry_b.settings):
        raise _NotCompared(f"different metric or settings ({entry_a.metric} {entry_a.settings} vs {entry_b.metric} {entry_b.settings})")
    try:
        metric = build_metric(entry_a.metric, entry_a.settings)
    except EvalHarnessError as exc:
        raise _NotCompared(f"cannot rebuild the metric: {exc}") from None
    stats_a, stats_b = task_stats(paired, paired.rows_a, key, dirs[0]), task_stats(paired, paired.rows_b, key, dirs[1])
    if stats_a.shape != stats_b.shape:
        raise _NotCompared(f"per-example statistics have different shapes ({stats_a.shape} vs {stats_b.shape})")
    notes = []
    if signature_identity(entry_a.signature) != signature_identity(entry_b.signature):
        notes.append(f"signatures differ: {signature_text(entry_a.signature)} vs {signature_text(entry_b.signature)}")
    ideal = entry_a.ideal if entry_a.ideal is not None else entry_b.ideal
    test_name = settings.test or getattr(metric, "paired_test", "bootstrap")
    if test_name not in PAIRED_TESTS:
        raise _NotCompared(f"metric '{metric.name}' declares an unknown paired test '{test_name}'")
    if ideal is not None and not PAIRED_TESTS[test_name].tests_distance:
        notes.append(f"{test_name} cannot test a distance from the ideal {ideal:g}; used the paired bootstrap")
        test_name = "bootstrap"
    # Only examples that entered the metric (a SQuAD v2 subset...) are its n and are resampled.
    entered = metric.entered(stats_a) | metric.entered(stats_b)
    stats_a, stats_b = stats_a[entered], stats_b[entered]
    if not entered.any():
        raise _NotCompared("no example entered the metric in either run")
    scorer = _scorer(metric, ideal)
    value_a, value_b = scorer.value(stats_a), scorer.value(stats_b)
    if paired.summary.same_examples:
        for side, value, entry in (("A", value_a, entry_a), ("B", value_b, entry_b)):
            if entry.value is not None and not math.isclose(value, entry.value, rel_tol=1e-6, abs_tol=1e-9):
                notes.append(f"{side}'s value re-aggregated from its statistics ({value:.6g}) differs from the recorded {entry.value:.6g}")
    defined = math.isfinite(value_a) and math.isfinite(value_b)
    pair = _Pair(metric, stats_a, stats_b, scorer, settings)
    clusters_found, cluster_field = task_clusters(paired, dirs)
    clusters = None
    if clusters_found is not None:
        clusters = np.asarray(clusters_found, dtype=object)[entered]
        count = len(set(clusters))
        notes.append(f"examples share sources (cluster_field '{cluster_field}', {count} clusters): tested with the paired cluster bootstrap"
                     + (f" instead of {test_name}" if test_name != "bootstrap" else "")
                     + (f"; with fewer than {FEW_CLUSTERS} clusters it is unreliable" if count < FEW_CLUSTERS else ""))
    if not defined:
        result = None
    else:
        result = cluster_test(pair, clusters) if clusters is not None else PAIRED_TESTS[test_name].run(pair)
    return MetricComparison(
        task=paired.summary.task,
        metric=key,
        metric_name=entry_a.metric,
        value_a=value_a,
        value_b=value_b,
        difference=value_b - value_a if defined else None,
        compared_on="value" if ideal is None else f"distance from ideal {ideal:g}",
        change=result.difference if result else None,
        ci=(result.ci_low, result.ci_high) if result else (None, None),
        p_value=result.p_value if result and math.isfinite(result.p_value) else None,
        p_adjusted=None,
        test=result.test if result else test_name,
        method=result.method if result else "",
        n=int(entered.sum()),
        higher_is_better=entry_a.higher_is_better,
        ideal=ideal,
        verdict=UNDEFINED,
        details=result.details if result else {},
        notes=notes,
    )


class _NotCompared(Exception):
    """A metric both runs list but that cannot be compared; the reason is reported."""


def _selected_tasks(records: tuple[RunRecord, RunRecord], tasks: Sequence[str] | None, names: tuple[str, str]) -> list[str]:
    shared = [name for name in records[0].tasks if name in records[1].tasks]
    if tasks is not None:
        for name in tasks:
            missing = [label for label, record in zip(names, records) if name not in record.tasks]
            if missing:
                raise RecordError(f"task '{name}' is not in run {' and '.join(missing)}")
        shared = [name for name in shared if name in set(tasks)]
    if not shared:
        raise IncomparableRunsError(f"{names[0]} and {names[1]} have no task in common")
    return shared


def compare_runs(
    run_a: str | os.PathLike[str] | LoadedRun,
    run_b: str | os.PathLike[str] | LoadedRun,
    *,
    settings: CompareSettings | None = None,
    tasks: Sequence[str] | None = None,
    metrics: Mapping[str, Sequence[str]] | None = None,
) -> Comparison:
    """Compare run B against run A (the reference) on every shared task and metric.

    ``tasks`` restricts the tasks; ``metrics`` maps a task to the metric keys to compare
    (the gate uses it to test only what its rules name). A run is a directory or a
    :class:`LoadedRun` (records already loaded are not read again). Raises
    :class:`IncomparableRunsError` when the runs' examples differ and
    ``settings.allow_different_data`` is false.
    """
    settings = settings or CompareSettings()
    runs = (loaded_run(run_a), loaded_run(run_b))
    dirs = (runs[0].directory, runs[1].directory)
    records = (runs[0].record, runs[1].record)
    names = (str(dirs[0]), str(dirs[1]))
    selected = _selected_tasks(records, tasks if tasks is not None else (list(metrics) if metrics else None), names)
    paired_tasks, refusals = [], []
    for task in selected:
        paired, problems = pair_task(task, dirs, records)
        paired_tasks.append(paired)
        if problems:
            refusals.append(f"  {task}: " + "; ".join(problems))
    if refusals and not settings.allow_different_data:
        raise IncomparableRunsError(
            f"runs {names[0]} and {names[1]} did not evaluate the same examples, so a paired comparison "
            "would be meaningless:\n" + "\n".join(refusals) + "\n(pass --allow-different-data to compare on the shared example ids)"
        )
    raw: list[MetricComparison] = []
    not_compared: list[dict[str, str]] = []
    for paired in paired_tasks:
        keys = [key for key in records[0].tasks[paired.summary.task].metrics if key in records[1].tasks[paired.summary.task].metrics]
        if metrics is not None and paired.summary.task in metrics:
            keys = [key for key in keys if key in set(metrics[paired.summary.task])]
        for key in keys:
            if not paired.ids:
                not_compared.append({"task": paired.summary.task, "metric": key, "reason": "no shared example ids"})
                continue
            entries = (records[0].tasks[paired.summary.task].metrics[key], records[1].tasks[paired.summary.task].metrics[key])
            try:
                raw.append(_compare_metric(paired, key, entries, dirs, settings))
            except _NotCompared as exc:
                not_compared.append({"task": paired.summary.task, "metric": key, "reason": str(exc)})
    adjusted = adjust_pvalues(np.array([np.nan if r.p_value is None else r.p_value for r in raw]), settings.correction)
    results = []
    for row, p_adjusted in zip(raw, adjusted):
        p_adj = float(p_adjusted) if math.isfinite(p_adjusted) else None
        verdict = _verdict(row.change, p_adj, settings.alpha, row.direction.lower_change_is_better)
        results.append(replace(row, p_adjusted=p_adj, verdict=verdict))
    return Comparison(
        run_a=_run_info(dirs[0], records[0]),
        run_b=_run_info(dirs[1], records[1]),
        settings=settings,
        tasks=[paired.summary for paired in paired_tasks],
        metrics=results,
        not_compared=not_compared,
    )
