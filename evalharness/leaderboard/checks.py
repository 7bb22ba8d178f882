"""Which numbers may share a leaderboard column.

Two rules, applied in this order:

1. **One number per model and column.** When a model (same name *and* weight fingerprint)
   was evaluated in several runs, the *latest* run (by ``created``, then ``run_id``) wins,
   per task, and a note says which runs were set aside. ``duplicates="error"`` refuses
   instead. Different checkpoints that share a name are different rows (``name@fingerprint``).
2. **Only comparable numbers in one column.** Values of one (task, metric) are comparable
   when they share the metric signature (metric, settings, implementation and version),
   the data fingerprint, the number of examples, the task version and, for prompted
   models, the prompt format (``records.prompt_format``: a raw and a chat run of an
   instruct model are different numbers; a head without a prompt fits either). Otherwise the
   leaderboard is refused with a message naming what differs and in which runs, or, with
   ``allow_incomparable=True``, each odd group gets its own column marked with ``†``
   (kept out of every aggregate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalharness.errors import IncomparableRunsError, RecordError

if TYPE_CHECKING:
    from collections.abc import Hashable

    import pandas as pd

__all__ = ["COMPARABILITY_FIELDS", "IncomparableRunsError", "MARKER", "resolve_duplicates", "split_incomparable"]

# Field in the tidy frame -> how a message names it.
COMPARABILITY_FIELDS: dict[str, str] = {
    "signature": "metric signature",
    "data_fingerprint": "data fingerprint",
    "n": "example count",
    "task_version": "task version",
    "prompt_format": "prompt format (records.prompt_format: raw or chat, system prompt, few-shot turns)",
}

MARKER = "†"

DUPLICATE_POLICIES = ("latest", "error")


def _run_labels(rows: pd.DataFrame) -> list[str]:
    """``model (run ID, folder)`` per row."""
    return [f"{model} (run {run}, {folder})" for model, run, folder in zip(rows["model_id"], rows["run_id"], rows["run_dir"])]


def resolve_duplicates(frame: pd.DataFrame, policy: str = "latest") -> tuple[pd.DataFrame, list[str]]:
    """Keep one run per (model, task): the latest; returns the kept rows and notes."""
    if policy not in DUPLICATE_POLICIES:
        raise RecordError(f"unknown duplicates policy '{policy}' (use one of {', '.join(DUPLICATE_POLICIES)})")
    if frame.empty:
        return frame, []
    runs = frame.drop_duplicates(["model_id", "task", "run_id", "run_dir"])
    runs = runs.sort_values(["created", "run_id"], ascending=False, kind="stable")
    keep: set[tuple[Hashable, Hashable, str, str]] = set()  # (model, task, run, folder); groupby keys are Hashable
    # (model, winning run, runs set aside) -> tasks, so one note covers a whole re-run.
    resolved: dict[tuple[Hashable, str, str], list[str]] = {}
    for (model_id, task), group in runs.groupby(["model_id", "task"], sort=True):
        winner = group.iloc[0]
        keep.add((model_id, task, winner["run_id"], winner["run_dir"]))
        if len(group) == 1:
            continue
        if policy == "error":
            raise RecordError(
                f"model '{model_id}' has task '{task}' in {len(group)} runs: "
                + ", ".join(_run_labels(group))
                + "; give one run per model, or use the 'latest' policy"
            )
        won = f"run {winner['run_id']} ({winner['created']:%Y-%m-%d %H:%M:%S})"
        lost = ", ".join(f"{row['run_id']} ({row['created']:%Y-%m-%d %H:%M:%S})" for _, row in group.iloc[1:].iterrows())
        resolved.setdefault((model_id, won, lost), []).append(str(task))
    notes = [
        f"{model_id}: evaluated more than once; the latest wins: {won} over {lost} for {', '.join(tasks)}"
        for (model_id, won, lost), tasks in resolved.items()
    ]
    mask = [
        (row.model_id, row.task, row.run_id, row.run_dir) in keep
        for row in frame[["model_id", "task", "run_id", "run_dir"]].itertuples(index=False)
    ]
    return frame[mask].reset_index(drop=True), notes


def _describe_differences(column: str, groups: list[pd.DataFrame]) -> str:
    lines = [f"'{column}': values computed differently cannot share a column:"]
    for field, label in COMPARABILITY_FIELDS.items():
        distinct = {str(group.iloc[0][field]) for group in groups}
        if len(distinct) > 1:
            lines.append(f"  {label} differs:")
            for group in groups:
                runs = "; ".join(_run_labels(group))
                lines.append(f"    {group.iloc[0][field]}: {runs}")
    return "\n".join(lines)


def _prompt_formats(frame: pd.DataFrame) -> pd.Series[str]:
    """Each row's prompt format, with rows that have none (heads) taking their column's only
    format: they fit any; only two formats in one column split it."""
    formats = frame["prompt_format"].astype(object)
    for _, rows in frame.groupby(["task", "metric"], sort=False):
        known = rows["prompt_format"].dropna().unique()
        if len(known) == 1:
            formats.loc[rows.index] = formats.loc[rows.index].where(rows["prompt_format"].notna(), known[0])
    return formats


def split_incomparable(frame: pd.DataFrame, *, allow: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Add ``column`` (the leaderboard column key) and ``incomparable`` to the tidy frame.

    The group with the most models (then the earliest run) keeps the plain column; each
    other group gets ``metric†1``, ``metric†2``... Without ``allow`` any split is an error.
    """
    frame = frame.copy()
    frame["column_metric"] = frame["metric"]
    frame["incomparable"] = False
    notes: list[str] = []
    problems: list[str] = []
    fields = list(COMPARABILITY_FIELDS)
    recorded_formats = frame["prompt_format"].copy()
    frame["prompt_format"] = _prompt_formats(frame)  # grouped with heads filled in; shown as recorded
    for (task, metric), rows in frame.groupby(["task", "metric"], sort=True):
        groups = [group for _, group in rows.groupby(fields, sort=False, dropna=False)]
        if len(groups) == 1:
            continue
        groups.sort(key=lambda group: (-group["model_id"].nunique(), group["created"].min(), str(group.iloc[0]["signature"])))
        message = _describe_differences(f"{task} {metric}", groups)
        if not allow:
            problems.append(message)
            continue
        for number, group in enumerate(groups[1:], start=1):
            frame.loc[group.index, "column_metric"] = f"{metric}{MARKER}{number}"
            frame.loc[group.index, "incomparable"] = True
            models = ", ".join(sorted(group["model_id"].unique()))
            notes.append(f"{task} {metric}{MARKER}{number} ({models}) is not comparable with {task} {metric}; kept apart and out of aggregates")
        notes.append(message)
    if problems:
        raise IncomparableRunsError(
            "\n".join(problems) + "\nre-run with matching settings, or pass --allow-incomparable "
            f"to show them in separate columns marked {MARKER}"
        )
    from evalharness.leaderboard.frame import column_key

    frame["prompt_format"] = recorded_formats
    frame["column"] = [column_key(t, m) for t, m in zip(frame["task"], frame["column_metric"])]
    return frame, notes
