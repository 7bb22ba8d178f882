"""Paired tests of an aggregate (the suite mean, the GLUE score) between leaderboard rows.

The aggregate is a nested mean of column values (see ``aggregates``), so its paired
bootstrap resamples each task's examples, scores every column of the task on the same
resample (metrics of one task share examples), resamples different tasks independently
(each task draws from its own generator, seeded from ``compare``'s seed and the task's
position), and averages the replicates as the aggregate averages values. Both rows of a
pair are scored on the same resamples, so the spread of their difference reflects the
pairing, as for a single column. The p-value is the bootstrap p-value ``compare`` uses
(``settings.bootstrap_pvalue``).

Only additive metrics take part (their statistics of examples outside a subset are zeros,
so a resample of the whole task scores every column); a row whose columns cannot all be
resampled this way is not tested, and its pairs fall back to the marginal rule, said.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from evalharness.leaderboard.paired_base import ColumnTests, family_settings
from evalharness.stats import BOOTSTRAP_PVALUES, FloatArray

if TYPE_CHECKING:
    import pandas as pd

    from evalharness.leaderboard.paired import PairedTests

__all__ = ["aggregate_tests"]

Structure = dict[str, dict[str, list[str]]]
# A row's column: how its statistics' column sums score (the additive metric's
# ``aggregate_sums``, what ``scorer_of`` resamples with) and its full statistics.
_Part: TypeAlias = tuple[Callable[[FloatArray], FloatArray], FloatArray]


def _task_systems(tests: PairedTests, columns: list[str], order: list[str], problems: dict[str, str]) -> dict[str, dict[str, _Part]]:
    """Per column of one task: model -> (column-sum scorer, full statistics), for the rows
    that can be resampled together; why the others cannot, in ``problems``."""
    found: dict[str, dict[str, _Part]] = {}
    ids: dict[str, list[str]] = {}
    for key in columns:
        systems, metric = tests.usable_systems(tests.column_rows(key, order), problems)
        if metric is not None and not metric.additive:
            for system in systems:
                problems.setdefault(system.model, f"{key} is not additive: its aggregate cannot be resampled with the others")
            continue
        found[key] = {}
        if metric is None:  # then no row is usable (each needs the rebuilt metric)
            continue
        for system in systems:
            if ids.setdefault(system.model, system.ids) != system.ids:
                problems.setdefault(system.model, f"{key}: examples in another order than the task's other columns")
            found[key][system.model] = (metric.aggregate_sums, system.stats)
    reference = next(iter(ids.values()), None)
    for model, example_ids in ids.items():
        if example_ids != reference:
            problems.setdefault(model, "examples differ from the other rows'")
    return {key: {m: parts for m, parts in systems.items() if m not in problems} for key, systems in found.items()}


def _task_replicates(found: dict[str, dict[str, _Part]], rng: np.random.Generator, resamples: int) -> dict[str, FloatArray]:
    """Per model, the mean over the task's columns of each column's statistic on every
    resample of the task's examples: one draw of indices, one count matrix per block, one
    product with every (column, model) side by side."""
    parts = [(column, model, sums, stats) for column, systems in found.items() for model, (sums, stats) in systems.items()]
    if not parts:
        return {}
    n = parts[0][3].shape[0]
    widths = np.cumsum([0] + [stats.shape[1] for *_, stats in parts])
    stacked = np.hstack([stats for *_, stats in parts])
    blocks: list[list[FloatArray]] = [[] for _ in parts]
    for start in range(0, resamples, 512):
        indices = rng.integers(0, n, size=(min(512, resamples - start), n))
        offsets = (indices + (np.arange(indices.shape[0]) * n)[:, None]).ravel()
        counts = np.bincount(offsets, minlength=indices.shape[0] * n).reshape(indices.shape[0], n).astype(float)
        sums = counts @ stacked
        for i, (_, _, score_sums, _) in enumerate(parts):
            blocks[i].append(np.asarray(score_sums(sums[:, widths[i] : widths[i + 1]]), dtype=float))
    columns = len(found)
    means: dict[str, FloatArray] = {}
    for (_, model, _, _), pieces in zip(parts, blocks, strict=True):
        means[model] = means.get(model, 0.0) + np.concatenate(pieces) / columns
    return means


def aggregate_tests(tests: PairedTests, key: str, structure: Structure, values: pd.Series[float], order: list[str]) -> ColumnTests:
    """Every pair of ``order`` on aggregate ``key`` (``values``: its value per model)."""
    from evalharness.comparison.compare import MetricComparison

    result = ColumnTests(key)
    members = [m for m in order if math.isfinite(float(values[m]))]
    settings = result.settings = family_settings(tests.settings, len(members) * (len(members) - 1) // 2)
    problems: dict[str, str] = {}
    replicates = {m: np.zeros(settings.n_resamples) for m in members}
    tasks = sorted({task for unit in structure.values() for task in unit})
    for unit in structure.values():
        for task, columns in unit.items():
            found = _task_systems(tests, columns, members, problems)
            for column in columns:
                for model in members:
                    if model not in found.get(column, {}):
                        problems.setdefault(model, f"{column}: no paired test")
            # Every row and column of a task on the same draws; tasks independent of each other.
            rng = np.random.default_rng([settings.seed, tasks.index(task)])
            task_mean = _task_replicates(found, rng, settings.n_resamples)
            for model in members:
                if model in task_mean:
                    replicates[model] += task_mean[model] / len(unit) / len(structure)
    tested = [m for m in members if m not in problems]
    result.notes += [f"{model}: no paired test of {key}: {problem}" for model, problem in problems.items() if model in members]
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            if a not in tested or b not in tested:
                result.untested[(a, b)] = "; ".join(f"{m}: {problems[m]}" for m in (a, b) if m in problems)
                continue
            observed = float(values[b]) - float(values[a])
            deltas = replicates[b] - replicates[a]
            finite = deltas[np.isfinite(deltas)]
            p_value = None
            low = high = None
            if finite.size and math.isfinite(observed):
                p_value = 1.0 if not np.any(deltas) and observed == 0 else float(BOOTSTRAP_PVALUES[settings.bootstrap_pvalue](finite, observed))
                tail = (1 - settings.confidence) / 2
                low, high = (float(q) for q in np.quantile(finite, [tail, 1 - tail]))
            result.tests[(a, b)] = MetricComparison(
                task="", metric=key, metric_name=key, value_a=float(values[a]), value_b=float(values[b]), difference=observed,
                compared_on="value", change=observed, ci=(low, high), p_value=p_value, p_adjusted=None,
                test="paired-bootstrap (aggregate)", method=f"paired-bootstrap-B{settings.n_resamples}-p:{settings.bootstrap_pvalue}; tasks resampled independently",
                n=len(tasks), higher_is_better=True, ideal=None, verdict="undefined",
            )
    tests._adjust(result)
    return result
