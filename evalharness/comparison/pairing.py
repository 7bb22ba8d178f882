"""Pairing two runs' examples of one task by id, for every paired comparison (``compare``,
``gate``): the aligned rows, each metric's per-example statistics, and the examples'
clusters.

Runs whose examples differ are reported (the caller refuses them or, when asked, compares
the shared ids). Clusters come from the samples' ``cluster`` field, written when the task
declares a ``cluster_field``; two runs that put one example in different clusters cannot
both be right, so they are refused rather than guessed between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalharness.errors import IncomparableRunsError, RecordError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.records.prompt_format import (
    prompt_format_key,
    prompt_format_problem,
    template_note,
)
from evalharness.records.record import RunRecord, TaskEntry, read_samples, samples_stats

if TYPE_CHECKING:
    from evalharness.stats import FloatArray

__all__ = ["PairedTask", "TaskComparison", "pair_task", "refuse_other_prompt_formats", "rows_by_id", "task_clusters", "task_stats"]


@dataclass(frozen=True)
class TaskComparison:
    """What is known about one task's pairing: sizes, fingerprints, and why examples differ."""

    task: str
    n_a: int
    n_b: int
    n_compared: int
    fingerprint_a: str
    fingerprint_b: str
    same_examples: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class PairedTask:
    summary: TaskComparison
    ids: list[str]
    rows_a: dict[str, JSONObject]
    rows_b: dict[str, JSONObject]
    cluster_fields: tuple[str | None, str | None] = (None, None)


def rows_by_id(run_dir: Path, task: str, record: RunRecord | None = None) -> dict[str, JSONObject]:
    rows: dict[str, JSONObject] = {}
    for row in read_samples(run_dir, task, record):
        key = str(row.get("id"))
        if key in rows:
            raise RecordError(f"{run_dir}: task '{task}' has example id '{key}' twice; examples cannot be paired")
        rows[key] = row
    return rows


def _example(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:3])
    return shown + (", ..." if len(ids) > 3 else "")


def refuse_other_prompt_formats(task: str, dirs: tuple[Path, Path], entries: tuple[TaskEntry, TaskEntry]) -> None:
    """A raw and a chat run (or other system prompts, few-shot turns, reasoning stripping) are
    different measurements: no paired test, no gate, whatever other flags say."""
    keys = [prompt_format_key(entry.formulation, entry.settings) for entry in entries]
    problem = prompt_format_problem(keys, [str(path) for path in dirs])
    if problem:

        raise IncomparableRunsError(
            f"task '{task}': {problem}; numbers produced under different prompt formats cannot be compared. "
            "Re-run one of them with the other's --prompt-format, --system-prompt, --fewshot-as-multiturn and --strip-thinking"
        )


def pair_task(task: str, dirs: tuple[Path, Path], records: tuple[RunRecord, RunRecord]) -> tuple[PairedTask, list[str]]:
    """Align one task's examples; returns the pairing and why the runs' examples differ."""
    entry_a, entry_b = records[0].tasks[task], records[1].tasks[task]
    refuse_other_prompt_formats(task, dirs, (entry_a, entry_b))
    rows_a, rows_b = rows_by_id(dirs[0], task, records[0]), rows_by_id(dirs[1], task, records[1])
    problems = []
    if entry_a.data.fingerprint != entry_b.data.fingerprint:
        problems.append(f"data fingerprints differ ({entry_a.data.fingerprint} vs {entry_b.data.fingerprint})")
    if entry_a.n_examples != entry_b.n_examples:
        problems.append(f"{entry_a.n_examples} vs {entry_b.n_examples} examples")
    only_a = [i for i in rows_a if i not in rows_b]
    only_b = [i for i in rows_b if i not in rows_a]
    if only_a or only_b:
        problems.append(f"{len(only_a)} example ids only in A ({_example(only_a)}), {len(only_b)} only in B ({_example(only_b)})")
    ids = [i for i in rows_a if i in rows_b]
    notes = []
    if problems:
        notes.append(f"examples differ ({'; '.join(problems)}); compared on the {len(ids)} shared example ids")
        golds = sum(rows_a[i].get("gold") != rows_b[i].get("gold") for i in ids)
        if golds:
            notes.append(f"{golds} shared ids have different gold answers in the two runs")
    if entry_a.spec_hash != entry_b.spec_hash:
        notes.append(f"task specs differ ({entry_a.spec_hash} vs {entry_b.spec_hash})")
    if entry_a.formulation != entry_b.formulation:
        notes.append(f"formulations differ ({entry_a.formulation} vs {entry_b.formulation})")
    templates = template_note(entry_a.settings, entry_b.settings)
    if templates:
        notes.append(templates)
    summary = TaskComparison(
        task, entry_a.n_examples, entry_b.n_examples, len(ids), entry_a.data.fingerprint, entry_b.data.fingerprint, not problems, notes
    )
    return PairedTask(summary, ids, rows_a, rows_b, (entry_a.cluster_field, entry_b.cluster_field)), problems


def task_stats(paired: PairedTask, rows: Mapping[str, Mapping[str, JsonValue]], key: str, run_dir: Path) -> FloatArray:
    """One metric's per-example statistics, in the pairing's id order."""
    try:
        return samples_stats([rows[i] for i in paired.ids], key)
    except RecordError as exc:
        raise RecordError(
            f"{run_dir}: samples of '{paired.summary.task}' lack usable per-example statistics for "
            f"'{key}' ({exc}; written by an older evalharness?); re-run the evaluation"
        ) from None


def _clusters_of(paired: PairedTask, rows: Mapping[str, Mapping[str, JsonValue]], run_dir: Path, field_name: str) -> list[str]:
    clusters = []
    for example_id in paired.ids:
        value = rows[example_id].get("cluster")
        if not isinstance(value, str) or not value:
            raise RecordError(
                f"{run_dir}: task '{paired.summary.task}' declares cluster_field '{field_name}' but example "
                f"'{example_id}' has no cluster in its samples row (got {value!r}); re-run the evaluation"
            )
        clusters.append(value)
    return clusters


def task_clusters(paired: PairedTask, dirs: tuple[Path, Path]) -> tuple[list[str] | None, str | None]:
    """Each paired example's cluster id and the cluster field (None, None: no clusters).

    A run that declares clusters is trusted over one that does not (treating correlated
    examples as independent is the error to avoid); two runs that both declare them must
    put every example in the same cluster.
    """
    declared = [(side, name) for side, name in enumerate(paired.cluster_fields) if name]
    if not declared:
        return None, None
    found = [(_clusters_of(paired, (paired.rows_a, paired.rows_b)[side], dirs[side], name), name) for side, name in declared]
    (clusters, name), others = found[0], found[1:]
    for other, other_name in others:
        for example_id, mine, theirs in zip(paired.ids, clusters, other):
            if mine != theirs:
                raise RecordError(
                    f"task '{paired.summary.task}': example '{example_id}' is in cluster {mine!r} ({name}) in {dirs[0]} "
                    f"but in {theirs!r} ({other_name}) in {dirs[1]}; runs that disagree on which examples share a source "
                    "cannot be compared with clustered intervals (re-run both with the same task spec)"
                )
    return clusters, name
