"""``--limit``: the first N examples, and what that subset leaves out.

The first N examples of grouped data are rarely a sample of every group: BBQ's files are
read category by category, WinoBias' set by set, so ``--limit 100`` measures one BBQ
category or one WinoBias set. The groups are the ones the task's metrics break their
results down by (``Metric.reference_groups``: BBQ categories, WinoBias type/set, CrowS-Pairs
bias types); the task entry records which of them the subset covers out of those in the
whole split, and a note names the missing ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from evalharness.data.loader import LoadedData, fingerprint_examples
from evalharness.evaluation.scoring import gold_values
from evalharness.metrics.base import Metric
from evalharness.metrics.registry import metric_class
from evalharness.spec.loader import Task

__all__ = ["group_coverage", "limit_examples", "subset_record"]


def limit_examples(data: LoadedData, limit: int | None) -> LoadedData:
    """The first ``limit`` examples (what ``load_examples(limit=...)`` returns)."""
    if limit is None or limit >= len(data.examples):
        return data
    examples = data.examples[:limit]
    return replace(data, examples=examples, fingerprint=fingerprint_examples(examples))


def _groups(task: Task, data: LoadedData) -> dict[str, list[str]]:
    """Group key -> the groups present, over every metric that groups by the references."""
    golds = gold_values(task, data)
    found: dict[str, set[str]] = {}
    for spec in task.spec.metrics:
        cls = metric_class(spec.name)
        if cls.reference_groups is Metric.reference_groups:  # no breakdown by reference: nothing to build
            continue
        grouped = cls(spec.settings).reference_groups(golds)
        if grouped is not None:
            key, labels = grouped
            found.setdefault(key, set()).update(labels)
    return {key: sorted(values) for key, values in found.items()}


def group_coverage(task: Task, full: LoadedData, subset: LoadedData) -> dict[str, dict[str, list[str]]]:
    """Group key -> ``{"covered": [...], "available": [...]}``."""
    available = _groups(task, full)
    covered = _groups(task, subset) if subset is not full else available
    return {key: {"covered": covered.get(key, []), "available": groups} for key, groups in available.items()}


def _shown(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def subset_record(task: Task, full: LoadedData, subset: LoadedData, limit: int) -> tuple[dict[str, Any], list[str]]:
    """The task's ``settings.subset`` entry and its notes (partial run, uncovered groups)."""
    coverage = group_coverage(task, full, subset)
    record = {"limit": limit, "n_examples": len(subset.examples), "n_available": full.n_available, "groups": coverage}
    notes = []
    if len(subset.examples) < full.n_available:
        notes.append(f"partial run: --limit {limit} took the first {len(subset.examples)} of {full.n_available} examples")
    for key, groups in coverage.items():
        missing = [name for name in groups["available"] if name not in groups["covered"]]
        if missing:
            notes.append(
                f"subset covers only {len(groups['covered'])} of {len(groups['available'])} groups by {key}: "
                f"{_shown(groups['covered'])} (not covered: {_shown(missing)}); its results say nothing about the others"
            )
    return record, notes
