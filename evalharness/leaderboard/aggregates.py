"""Aggregate columns of a leaderboard: the GLUE score, the suite mean and the mean win rate.

**GLUE score** (Wang et al. 2019, and the gluebenchmark.com leaderboard): the unweighted
macro-average over the nine GLUE tasks, where a task with two metrics first averages them:
MRPC and QQP use the mean of F1 and accuracy, STS-B the mean of Pearson and Spearman
correlation; MNLI counts as *one* task whose score is the mean of matched and mismatched
accuracy; CoLA uses Matthews correlation, the other tasks accuracy; the diagnostic set
(AX) is not part of the score. Check: the leaderboard's BERT-Large row (CoLA 60.5, SST-2
94.9, MRPC 89.3/85.4, STS-B 87.6/86.5, QQP 72.1/89.3, MNLI 86.7/85.9, QNLI 92.7, RTE 70.1,
WNLI 65.1) gives 724.7 / 9 = 80.52, the published 80.5 (counting MNLI-m and -mm as two
tasks would give 81.1). All metrics are on the 0-100 scale, as evalharness reports them.
When the leaderboard holds only some GLUE tasks the score averages those (the label says
how many); it is then not comparable with published GLUE scores.

**Suite mean**: the same nesting over every task: a task's score is the mean of its
higher-is-better metrics, the suite mean averages task scores. Lower-is-better metrics
(perplexity) and metrics with an ideal value (bias scores) are left out: a plain average
with them would be meaningless.

**Mean win rate** (HELM, Liang et al. 2022; ``compute_aggregate_row_win_rates`` in
``helm/benchmark/presentation/summarize.py``): for each column, a model's win rate is the
probability that it beats another model drawn uniformly from those with a value in that
column (ties count one half); columns with fewer than two values are skipped; the mean
win rate averages a model's win rates over the columns where it has a value. Every metric
column counts, lower-is-better ones reversed and ideal-valued ones by distance from the
ideal.

Intervals for the GLUE score and the suite mean are normal approximations from the
metrics' standard errors: metrics of one task share its examples and are treated as
perfectly correlated (their standard errors average, an upper bound), different tasks as
independent (variances add).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

    from evalharness.stats import FloatArray

__all__ = [
    "AGGREGATES",
    "AggregateResult",
    "GLUE_TASKS",
    "GlueTask",
    "glue_score",
    "glue_task_of",
    "goodness",
    "mean_win_rate",
    "suite_mean",
]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class AggregateResult:
    """One aggregate column: values (``value``, ``ci_low``, ``ci_high``, ``stderr``) per model."""

    key: str
    label: str
    description: str
    values: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    structure: Structure | None = None  # how columns nest into the value (for paired tests)


@dataclass(frozen=True)
class GlueTask:
    """A GLUE task: its display name, the unit it counts in, and its metrics (aliases each)."""

    name: str
    unit: str
    metrics: tuple[tuple[str, ...], ...]


_ACCURACY = ("accuracy",)
_F1 = ("f1",)
_MNLI_M = GlueTask("MNLI-m", "MNLI", (_ACCURACY,))
_MNLI_MM = GlueTask("MNLI-mm", "MNLI", (_ACCURACY,))

# Last component of a task name under a ``glue`` folder, lowercased without punctuation.
GLUE_TASKS: dict[str, GlueTask] = {
    "cola": GlueTask("CoLA", "CoLA", (("mcc", "matthews_correlation", "matthews_corrcoef"),)),
    "sst2": GlueTask("SST-2", "SST-2", (_ACCURACY,)),
    "mrpc": GlueTask("MRPC", "MRPC", (_F1, _ACCURACY)),
    "qqp": GlueTask("QQP", "QQP", (_F1, _ACCURACY)),
    "stsb": GlueTask("STS-B", "STS-B", (("pearson", "pearsonr"), ("spearman", "spearmanr"))),
    "mnli": _MNLI_M,  # lm-evaluation-harness names the matched split plain "mnli"
    "mnlimatched": _MNLI_M,
    "mnlim": _MNLI_M,
    "mnlimismatched": _MNLI_MM,
    "mnlimm": _MNLI_MM,
    "qnli": GlueTask("QNLI", "QNLI", (_ACCURACY,)),
    "rte": GlueTask("RTE", "RTE", (_ACCURACY,)),
    "wnli": GlueTask("WNLI", "WNLI", (_ACCURACY,)),
}
GLUE_UNIT_COUNT = 9


def glue_task_of(task: str) -> GlueTask | None:
    """The GLUE task a task name stands for (``glue/sst2``, ``x/glue/mnli-mm``), else None."""
    parts = task.lower().split("/")
    if len(parts) < 2 or "glue" not in parts[:-1]:
        return None
    return GLUE_TASKS.get(re.sub(r"[^a-z0-9]", "", parts[-1]))


def goodness(values: ArrayLike, direction: str, ideal: float = math.nan) -> FloatArray:
    """Values mapped so that larger is always better (the ranking scale)."""
    array = np.asarray(values, dtype=float)
    if direction == "ideal":
        return -np.abs(array - ideal)
    return array if direction == "higher" else -array


def goodness_interval(low: ArrayLike, high: ArrayLike, direction: str, ideal: float = math.nan) -> tuple[FloatArray, FloatArray]:
    """An interval of values mapped to the ranking scale (endpoints may swap or fold)."""
    lows, highs = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if direction == "higher":
        return lows, highs
    if direction == "lower":
        return -highs, -lows
    best = np.where((lows <= ideal) & (ideal <= highs), 0.0, np.maximum(-np.abs(lows - ideal), -np.abs(highs - ideal)))
    worst = np.minimum(-np.abs(lows - ideal), -np.abs(highs - ideal))
    return worst, best


# -- nested means ----------------------------------------------------------------------
# A structure is {unit: {task: [column, ...]}}: columns of one task are averaged first
# (correlated), then tasks within a unit, then units (independent).
Structure = dict[str, dict[str, list[str]]]


def _nested_mean(structure: Structure, values: pd.DataFrame, stderrs: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    results = {}
    for model in values.index:
        unit_values, unit_ses = [], []
        for tasks in structure.values():
            task_values, task_ses = [], []
            for columns in tasks.values():
                task_values.append(float(np.mean([values.at[model, c] for c in columns])))
                task_ses.append(float(np.mean([stderrs.at[model, c] for c in columns])))
            unit_values.append(float(np.mean(task_values)))
            unit_ses.append(math.sqrt(sum(se * se for se in task_ses)) / len(task_ses))
        value = float(np.mean(unit_values)) if unit_values else math.nan
        stderr = math.sqrt(sum(se * se for se in unit_ses)) / len(unit_ses) if unit_ses else math.nan
        if not math.isfinite(value):
            stderr = math.nan
        half = Z95 * stderr
        results[model] = {"value": value, "ci_low": value - half, "ci_high": value + half, "stderr": stderr}
    return pd.DataFrame.from_dict(results, orient="index", columns=["value", "ci_low", "ci_high", "stderr"])


def _missing_notes(label: str, structure: Structure, values: pd.DataFrame) -> list[str]:
    needed = [column for tasks in structure.values() for columns in tasks.values() for column in columns]
    notes = []
    for model in values.index:
        missing = [column for column in needed if not math.isfinite(cast(float, values.at[model, column]))]  # a float pivot
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            notes.append(f"{label}: none for {model} (no value for {shown})")
    return notes


def _pivots(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model × column tables of values and standard errors, comparable columns only."""
    comparable = frame[~frame["incomparable"]]
    models = sorted(frame["model_id"].unique())
    values = comparable.pivot(index="model_id", columns="column", values="value").reindex(models)
    stderrs = comparable.pivot(index="model_id", columns="column", values="stderr").reindex(models)
    return values, stderrs


def _columns_by_task(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    comparable = frame[~frame["incomparable"]]
    first = comparable.drop_duplicates("column")
    return {str(task): rows for task, rows in first.groupby("task", sort=True)}


def _pick_column(rows: pd.DataFrame, aliases: Sequence[str]) -> str | None:
    """The column of a task measured by one of ``aliases`` (key equal to the name first)."""
    matches = rows[rows["metric_name"].isin(aliases)]
    if matches.empty:
        return None
    exact = matches[matches["metric"] == matches["metric_name"]]
    return str((exact if not exact.empty else matches).sort_values("metric").iloc[0]["column"])


def glue_score(frame: pd.DataFrame) -> AggregateResult | None:
    """The GLUE score (see the module docstring); None when the frame has no GLUE task."""
    structure: Structure = defaultdict(dict)
    problems: list[str] = []
    names: dict[str, list[str]] = defaultdict(list)
    for task, rows in _columns_by_task(frame).items():
        glue = glue_task_of(task)
        if glue is None:
            continue
        columns = [_pick_column(rows, aliases) for aliases in glue.metrics]
        if None in columns:
            wanted = " and ".join("/".join(aliases) for aliases in glue.metrics)
            problems.append(f"GLUE score: {task} needs {wanted}; it has {', '.join(rows['metric'])}")
            continue
        structure[glue.unit][task] = [c for c in columns if c is not None]
        names[glue.unit].append(glue.name)
    if not structure and not problems:
        return None
    values, stderrs = _pivots(frame)
    units = sorted(structure)
    coverage = f"{len(units)} of {GLUE_UNIT_COUNT}"
    label = "GLUE score" if len(units) == GLUE_UNIT_COUNT else f"GLUE score ({coverage} tasks)"
    description = (
        f"Macro-average over {coverage} GLUE tasks ({', '.join('/'.join(names[u]) for u in units)}); "
        "MRPC and QQP average F1 and accuracy, STS-B Pearson and Spearman, MNLI matched and "
        "mismatched accuracy, as the official GLUE leaderboard does."
    )
    if len(units) < GLUE_UNIT_COUNT:
        description += " Partial: not comparable with published GLUE scores, which average all nine tasks."
    if problems:
        import pandas as pd

        empty = pd.DataFrame(math.nan, index=values.index, columns=["value", "ci_low", "ci_high", "stderr"])
        return AggregateResult("glue_score", label, description, empty, problems + ["GLUE score: not computed"])
    result = _nested_mean(dict(structure), values, stderrs)
    return AggregateResult("glue_score", label, description, result, _missing_notes(label, structure, values), dict(structure))


def suite_mean(frame: pd.DataFrame) -> AggregateResult | None:
    """Mean over tasks of each task's higher-is-better metrics; None when there are none."""
    structure: Structure = {}
    left_out: list[str] = []
    for task, rows in _columns_by_task(frame).items():
        higher = rows[rows["direction"] == "higher"]
        left_out.extend(rows[rows["direction"] != "higher"]["column"])
        if not higher.empty:
            structure[task] = {task: list(higher["column"])}
    if not structure:
        return None
    values, stderrs = _pivots(frame)
    description = (
        f"Mean over {len(structure)} task(s) of each task's score, a task's score being the mean "
        "of its higher-is-better metrics."
    )
    notes = []
    if left_out:
        notes.append(f"suite mean leaves out lower-is-better and ideal-valued metrics: {', '.join(left_out)}")
    notes.extend(_missing_notes("suite mean", structure, values))
    return AggregateResult("mean", "mean", description, _nested_mean(structure, values, stderrs), notes, structure)


def _column_win_rates(scores: dict[str, float]) -> dict[str, float]:
    """HELM's rule: wins = models strictly worse + half the other models tied, over n - 1."""
    counts: dict[float, int] = defaultdict(int)
    for score in scores.values():
        counts[score] += 1
    wins: dict[float, float] = {}
    below = 0
    for score in sorted(counts):
        wins[score] = below + (counts[score] - 1) / 2
        below += counts[score]
    return {model: wins[score] / (below - 1) for model, score in scores.items()}


def mean_win_rate(frame: pd.DataFrame) -> AggregateResult | None:
    """HELM's mean win rate over every comparable column (0 to 1); None without columns."""
    import pandas as pd

    comparable = frame[~frame["incomparable"]]
    if comparable.empty:
        return None
    per_model: dict[str, list[float]] = defaultdict(list)
    used = 0
    for _column, rows in comparable.groupby("column", sort=True):
        rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
        if len(rows) < 2:
            continue
        used += 1
        scores = goodness(rows["value"].to_numpy(), rows.iloc[0]["direction"], float(rows.iloc[0]["ideal"]))
        for model, rate in _column_win_rates(dict(zip(rows["model_id"], scores.tolist()))).items():
            per_model[model].append(rate)
    models = sorted(frame["model_id"].unique())
    values = pd.DataFrame(
        {
            "value": [float(np.mean(per_model[m])) if per_model[m] else math.nan for m in models],
            "ci_low": math.nan,
            "ci_high": math.nan,
            "stderr": math.nan,
        },
        index=models,
    )
    description = (
        f"HELM's mean win rate over {used} column(s): the chance of beating another model drawn "
        "at random in a column (ties count one half), averaged over the columns a model has."
    )
    notes = [] if used else ["mean win rate: no column has two or more models"]
    return AggregateResult("mean_win_rate", "mean win rate", description, values, notes)


AGGREGATES = {"glue_score": glue_score, "mean": suite_mean, "mean_win_rate": mean_win_rate}
