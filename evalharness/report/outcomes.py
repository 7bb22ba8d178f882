"""What counts as an error, per example, depends on what the task's metric measures.

"Below the best score any example reached" is not a definition: for sentence BLEU it
marks almost every example, for a perplexity it is meaningless. The first rule that applies
to the task's first (primary) metric decides:

- ``binary``: every per-example score is one of the metric's two bounds (accuracy, exact
  match): an error is a wrong answer (the worse bound);
- ``label``: a classification task scored by a corpus-level metric (F1, MCC): an error is a
  predicted label different from the gold label;
- ``graded``: a mean of per-example credit with a best value (SQuAD F1): an error is an
  answer without full credit;
- ``score``: anything else (BLEU, chrF, ROUGE, correlations, perplexity, bias scores with an
  ideal value): there is no per-example right or wrong; examples carry their score and can
  be sorted by it, worst first.

An example's outcome *changed* between two runs when it became right or wrong (``binary``,
``label``) or when its per-example score moved (``graded``, ``score``; better or worse in
the metric's direction, by the distance from the ideal where there is one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalharness.errors import EvalHarnessError, RecordError
from evalharness.jsonvalues import JsonValue, finite_number
from evalharness.records.record import row_scores, samples_stats
from evalharness.stats import FloatArray
from evalharness.types import Direction

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric
    from evalharness.records.record import TaskEntry
    from evalharness.types import MetricResult

__all__ = ["Outcomes", "changed_kind", "example_outcomes", "text_of"]


def text_of(value: object) -> str:
    """How an input, prediction or gold value reads: text as is, a list of texts (several
    references) one per line, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value[0] if len(value) == 1 else "\n".join(f"[{i}] {item}" for i, item in enumerate(value, start=1))
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class Outcomes:
    """Per example of one task: its primary score and whether it is an error (None: the
    metric has no such notion, or the example did not enter the metric)."""

    kind: str
    metric: str
    rule: str
    scores: list[float | None]
    errors: list[bool | None]
    higher_is_better: bool
    ideal: float | None

    def goodness(self, score: float) -> float:
        return Direction(self.higher_is_better, self.ideal).goodness(score)


@dataclass(frozen=True)
class _Context:
    task: TaskEntry
    key: str
    entry: MetricResult
    metric: Metric | None  # the rebuilt metric, None when it cannot be rebuilt
    rows: Sequence[Mapping[str, JsonValue]]
    stats: FloatArray | None
    scores: list[float | None]


def _binary(c: _Context) -> tuple[str, list[bool | None]] | None:
    if c.metric is None or c.stats is None or c.entry.ideal is not None:
        return None
    entered = c.metric.entered(c.stats)
    if not entered.any():
        return None
    outcomes = c.metric.outcomes(c.stats[entered])
    if outcomes is None:
        return None
    good = 1.0 if c.entry.higher_is_better else 0.0
    flags = iter(outcomes != good)
    errors = [bool(next(flags)) if inside else None for inside in entered]
    return f"an error is a wrong answer ({c.key} at its worse value)", errors


def _label(c: _Context) -> tuple[str, list[bool | None]] | None:
    if c.task.kind != "classification":
        return None
    errors: list[bool | None] = [text_of(row.get("prediction")) != text_of(row.get("gold")) for row in c.rows]
    return f"an error is a predicted label different from the gold label ({c.key} is a corpus-level score)", errors


def _graded(c: _Context) -> tuple[str, list[bool | None]] | None:
    if c.metric is None or c.entry.ideal is not None or not getattr(c.metric, "mean_of_examples", False):
        return None
    low, high = c.metric.bounds
    best = high if c.entry.higher_is_better else low
    if not math.isfinite(best):
        return None
    errors: list[bool | None] = [None if s is None else s != best for s in c.scores]
    return f"an error is an answer without full credit ({c.key} below {best:g})", errors


def _score(c: _Context) -> tuple[str, list[bool | None]]:
    reason = f"closest to {c.entry.ideal:g} is best" if c.entry.ideal is not None else "a corpus-level score"
    return f"{c.key} has no per-example right or wrong ({reason}); sort by score to see the worst examples", [None] * len(c.rows)


# First rule that applies wins; ``score`` always applies.
RULES: list[tuple[str, Callable[[_Context], tuple[str, list[bool | None]] | None]]] = [
    ("binary", _binary),
    ("label", _label),
    ("graded", _graded),
    ("score", _score),
]


def _rebuild(entry: MetricResult) -> Metric | None:
    from evalharness.metrics.registry import build_metric

    try:
        return build_metric(entry.metric, entry.settings)
    except (EvalHarnessError, ValueError):  # a record from another version: settings it does not know
        return None


def _stats(rows: Sequence[Mapping[str, JsonValue]], key: str) -> FloatArray | None:
    try:
        return samples_stats(rows, key) if rows else None
    except RecordError:
        return None


def example_outcomes(task: TaskEntry, rows: Sequence[Mapping[str, JsonValue]], key: str | None = None) -> Outcomes | None:
    """The outcomes of ``rows`` (a task's samples) on ``key`` (default: its first metric);
    None when the task has no metric."""
    key = key or next(iter(task.metrics), None)
    if key is None or key not in task.metrics:
        return None
    entry = task.metrics[key]
    scores = [finite_number(row_scores(row, f"samples row {index}").get(key)) for index, row in enumerate(rows)]
    context = _Context(task, key, entry, _rebuild(entry), rows, _stats(rows, key), scores)
    kind, (description, errors) = next((kind, found) for kind, rule in RULES if (found := rule(context)) is not None)
    return Outcomes(kind, key, description, scores, errors, entry.higher_is_better, entry.ideal)


def changed_kind(outcomes: Outcomes, before: int, after: int, base: Outcomes) -> str | None:
    """``improved``/``regressed`` when example ``after`` (in ``outcomes``) changed from
    example ``before`` (in ``base``, the other run), else None."""
    if outcomes.kind in ("binary", "label"):
        old, new = base.errors[before], outcomes.errors[after]
        if old is None or new is None or old == new:
            return None
        return "improved" if old else "regressed"
    old_score, new_score = base.scores[before], outcomes.scores[after]
    if old_score is None or new_score is None or old_score == new_score:
        return None
    return "improved" if outcomes.goodness(new_score) > outcomes.goodness(old_score) else "regressed"
