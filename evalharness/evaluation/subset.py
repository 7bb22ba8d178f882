"""``--limit``: what the first N examples leave out.

The first N examples of grouped data are rarely a sample of every group: BBQ's files are
read category by category, WinoBias' set by set, so ``--limit 100`` measures one BBQ
category or one WinoBias set. The groups are the ones the task's metrics break their
results down by (``Metric.reference_groups``: BBQ categories, WinoBias type/set, CrowS-Pairs
bias types) and, for a counterfactual probe, the swap groups whose terms occur in an
example; the task entry records which of them the subset covers out of those in the whole
split, and a note names the missing ones. The whole split is read a second time only for
such tasks, and only when the limit cut something.
"""

from __future__ import annotations

from pathlib import Path

from evalharness.data.loader import LoadedData, load_examples
from evalharness.evaluation.scoring import gold_values
from evalharness.metrics.base import Metric
from evalharness.metrics.registry import metric_class
from evalharness.spec.loader import Task

__all__ = ["group_coverage", "subset_record"]


def _grouping_metrics(task: Task) -> list[Metric]:
    """The task's metrics that break results down by a key of the references."""
    metrics = []
    for spec in task.spec.metrics:
        cls = metric_class(spec.name)
        if cls.reference_groups is not Metric.reference_groups:  # others are not even built
            metrics.append(cls(spec.settings))
    return metrics


def _swap_groups(task: Task, data: LoadedData) -> list[str]:
    """The counterfactual swap groups with a term in at least one example of ``data``."""
    from evalharness.prompting.counterfactual import load_swapper, perturb

    swapper = load_swapper(task)
    return [g for g in swapper.names() if any(perturb(task, e, swapper, g) is not None for e in data.examples)]


def _groups(task: Task, metrics: list[Metric], data: LoadedData) -> dict[str, list[str]]:
    """Group key -> the groups present in ``data``."""
    golds = gold_values(task, data)
    found: dict[str, set[str]] = {}
    for metric in metrics:
        grouped = metric.reference_groups(golds)
        if grouped is not None:
            key, labels = grouped
            found.setdefault(key, set()).update(labels)
    if task.spec.counterfactual is not None:
        found["swap_group"] = set(_swap_groups(task, data))
    return {key: sorted(values) for key, values in found.items()}


def group_coverage(task: Task, subset: LoadedData, data_dir: Path | None) -> dict[str, dict[str, list[str]]]:
    """Group key -> ``{"covered": [...], "available": [...]}`` for the task's whole split."""
    metrics = _grouping_metrics(task)
    if not metrics and task.spec.counterfactual is None:
        return {}
    covered = _groups(task, metrics, subset)
    cut = len(subset.examples) < subset.n_available
    available = _groups(task, metrics, load_examples(task, data_dir)) if cut else covered
    return {key: {"covered": covered.get(key, []), "available": groups} for key, groups in available.items()}


def _shown(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def subset_record(task: Task, subset: LoadedData, limit: int, data_dir: Path | None) -> tuple[dict[str, object], list[str]]:
    """The task's ``settings.subset`` entry and its notes (partial run, uncovered groups)."""
    coverage = group_coverage(task, subset, data_dir)
    n, available = len(subset.examples), subset.n_available
    record: dict[str, object] = {"limit": limit, "partial": n < available, "n_examples": n, "n_available": available, "groups": coverage}
    notes = [f"partial run: --limit {limit} took the first {n} of {available} examples"] if n < available else []
    for key, groups in coverage.items():
        missing = [name for name in groups["available"] if name not in groups["covered"]]
        if missing:
            notes.append(
                f"subset covers only {len(groups['covered'])} of {len(groups['available'])} groups by {key}: "
                f"{_shown(groups['covered'])} (not covered: {_shown(missing)}); its results say nothing about the others"
            )
    return record, notes
