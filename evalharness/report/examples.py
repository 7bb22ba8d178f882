"""The per-example data of a report's browsers: every example of a task, and with a
baseline the examples whose outcome changed (see ``outcomes`` for what an error and a
change are for each kind of metric). Plain lists, embedded as JSON and rendered by the
page's script with ``textContent`` only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalharness.jsonvalues import JSONArray, JSONObject, JsonValue, finite_number
from evalharness.records.record import TaskEntry, row_scores
from evalharness.report.outcomes import (
    Outcomes,
    changed_kind,
    example_outcomes,
    text_of,
)

__all__ = ["changed_rows", "example_rows", "task_data"]


def _flag(error: bool | None) -> int | None:
    return None if error is None else int(error)


def example_rows(task: TaskEntry, rows: Sequence[Mapping[str, JsonValue]], outcomes: Outcomes | None) -> JSONArray:
    """``[id, input, prediction, gold, [score per metric], error (1, 0 or None)]`` per example."""
    keys = list(task.metrics)
    errors = outcomes.errors if outcomes is not None else [None] * len(rows)
    return [
        [
            text_of(row.get("id")),
            text_of(row.get("input")),
            text_of(row.get("prediction")),
            text_of(row.get("gold")),
            [finite_number(scores.get(key)) for key in keys],
            _flag(error),
        ]
        for index, (row, error) in enumerate(zip(rows, errors))
        for scores in (row_scores(row, f"samples row {index}"),)
    ]


def changed_rows(
    task: TaskEntry, rows: Sequence[Mapping[str, JsonValue]], base_task: TaskEntry, base_rows: Sequence[Mapping[str, JsonValue]]
) -> tuple[JSONArray, str]:
    """``[id, input, gold, baseline prediction, prediction, baseline score, score, kind]`` per
    example whose outcome changed, and a note on how they were compared."""
    if task.data.fingerprint != base_task.data.fingerprint:
        return [], "the baseline was evaluated on different data (data fingerprints differ); examples are not compared"
    key = next(iter(task.metrics), None)
    if key is None or key not in base_task.metrics:
        return [], "the baseline has no score for this task's primary metric"
    ids = [text_of(row.get("id")) for row in rows]
    base_ids = [text_of(row.get("id")) for row in base_rows]
    if len(set(ids)) != len(ids) or len(set(base_ids)) != len(base_ids):
        return [], "example ids are not unique; examples are not compared"
    outcomes, base = example_outcomes(task, rows, key), example_outcomes(base_task, base_rows, key)
    if outcomes is None or base is None:
        return [], "the baseline has no score for this task's primary metric"
    position = {example_id: index for index, example_id in enumerate(base_ids)}
    changed: JSONArray = []
    for index, row in enumerate(rows):
        before = position.get(ids[index])
        if before is None:
            continue
        kind = changed_kind(outcomes, before, index, base)
        if kind is None:
            continue
        other = base_rows[before]
        changed.append([ids[index], text_of(row.get("input")), text_of(row.get("gold")), text_of(other.get("prediction")),
                        text_of(row.get("prediction")), base.scores[before], outcomes.scores[index], kind])
    how = "became right or wrong" if outcomes.kind in ("binary", "label") else "per-example score moved"
    return changed, f"compared on {key}: examples whose {how}"


def task_data(name: str, anchor: str, task: TaskEntry, rows: Sequence[Mapping[str, JsonValue]]) -> JSONObject:
    """One task's entry in the page data: its examples and what an error is for it."""
    outcomes = example_outcomes(task, rows)
    return {
        "name": name,
        "anchor": anchor,
        "metrics": [*task.metrics],
        "rows": example_rows(task, rows, outcomes),
        "error_kind": outcomes.kind if outcomes else "score",
        "error_rule": outcomes.rule if outcomes else "the task has no metric",
        "higher_is_better": outcomes.higher_is_better if outcomes else True,
        "ideal": outcomes.ideal if outcomes else None,
    }
