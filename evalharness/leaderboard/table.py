"""The leaderboard: models × (task, metric), aggregate columns, ranks with ties.

``build_leaderboard`` is the one entry point: runs (paths or a tidy frame from
``load_runs``) → selection of tasks and metrics → one run per model and task (latest wins)
→ comparability check → pivot → aggregates → ranks (clusters from paired tests, or the
marginal-interval rule; see ``ranking`` and ``paired``). The result is a plain
:class:`Leaderboard` whose frames notebooks can use directly.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalharness.errors import UsageError, did_you_mean
from evalharness.leaderboard.aggregates import AGGREGATES, AggregateResult, glue_task_of
from evalharness.leaderboard.checks import resolve_duplicates, split_incomparable
from evalharness.leaderboard.frame import PathLike, load_runs
from evalharness.leaderboard.paired import PairedTests, rank_column
from evalharness.leaderboard.ranking import format_rank

if TYPE_CHECKING:
    import pandas as pd

    from evalharness.comparison.compare import CompareSettings

__all__ = ["AggregateColumn", "Column", "Leaderboard", "build_leaderboard", "pivot", "select"]

ARROWS = {"higher": "↑", "lower": "↓", "ideal": "→"}


@dataclass(frozen=True)
class Column:
    """One (task, metric) column and what its numbers share."""

    key: str
    task: str
    metric: str
    metric_key: str
    metric_name: str
    direction: str
    ideal: float
    signature: str
    data_fingerprint: str
    n: int
    task_version: int
    incomparable: bool = False

    @property
    def label(self) -> str:
        return f"{self.task} {self.metric}"

    @property
    def direction_label(self) -> str:
        if self.direction == "ideal":
            return f"closest to {self.ideal:g} is best"
        return f"{self.direction} is better"

    @property
    def arrow(self) -> str:
        return f"→{self.ideal:g}" if self.direction == "ideal" else ARROWS[self.direction]


@dataclass(frozen=True)
class AggregateColumn:
    key: str
    label: str
    description: str
    direction: str = "higher"
    structure: dict[str, dict[str, list[str]]] | None = None  # unit -> task -> columns (nested means)


@dataclass
class Leaderboard:
    """A built leaderboard. Frames are indexed by ``model_id`` in rank order.

    ``values``/``ci_low``/``ci_high`` hold one column per metric column key
    (``task:metric``) and per aggregate key; ``ranking`` holds ``rank``, ``tied`` and
    ``cluster``; ``models`` the provenance of each row (``display``: its readable name);
    ``data`` the tidy rows actually used. ``ranks`` names the rule (``paired`` clusters or
    ``marginal`` intervals); ``paired`` holds the pairwise tests, computed on demand.
    """

    title: str
    columns: list[Column]
    aggregates: list[AggregateColumn]
    values: pd.DataFrame
    ci_low: pd.DataFrame
    ci_high: pd.DataFrame
    ranking: pd.DataFrame
    models: pd.DataFrame
    rank_by: str
    data: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    description: str = ""
    ranks: str = "marginal"
    paired: PairedTests | None = None

    @property
    def model_ids(self) -> list[str]:
        return list(self.values.index)

    def display(self, model_id: str) -> str:
        """The row's readable name (``--name``, the record's display name, else the id)."""
        if "display" in self.models:
            return str(self.models.at[model_id, "display"])
        return model_id

    def direction_of(self, key: str) -> tuple[str, float]:
        for column in self.columns:
            if column.key == key:
                return column.direction, column.ideal
        return "higher", math.nan

    def rank_column(self, key: str) -> tuple[pd.DataFrame, list[str]]:
        """``key`` (a column or an aggregate) ranked on its own with the board's rule:
        ``rank``, ``tied``, ``order``, ``cluster`` per model, and notes on how."""
        direction, ideal = self.direction_of(key)
        structure = next((a.structure for a in self.aggregates if a.key == key), None)
        aggregate = any(a.key == key for a in self.aggregates)
        return rank_column(
            self.values[key], self.ci_low[key], self.ci_high[key], key=key, rule=self.ranks,
            tests=None if aggregate and structure is None else self.paired, direction=direction, ideal=ideal, structure=structure,
        )

    def rank_label(self, model_id: str) -> str:
        row = self.ranking.loc[model_id]
        return format_rank(row["rank"], bool(row["tied"]))

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)

    def label_of(self, key: str) -> str:
        for aggregate in self.aggregates:
            if aggregate.key == key:
                return aggregate.label
        return self.column(key).label

    def pivot(self) -> pd.DataFrame:
        """Values as models × (task, metric), aggregates under task ``aggregate``."""
        import pandas as pd

        keys = [(c.task, c.metric) for c in self.columns] + [("aggregate", a.key) for a in self.aggregates]
        frame = self.values[[c.key for c in self.columns] + [a.key for a in self.aggregates]].copy()
        frame.columns = pd.MultiIndex.from_tuples(keys, names=["task", "metric"])
        return frame

    def table(self) -> pd.DataFrame:
        """One flat row per model, best first: rank, provenance, then each aggregate and
        metric column as value, ``ci_low`` and ``ci_high`` (what CSV and Parquet hold)."""
        import pandas as pd

        # Built in one go: adding hundreds of columns one by one fragments the frame
        # (pandas' PerformanceWarning flood on large leaderboards).
        columns = {  # Series of several dtypes
            "rank": self.ranking["rank"],
            "tied": self.ranking["tied"],
            "model": self.models["model"],
            "name": self.models["display"],
            "model_fingerprint": self.models["model_fingerprint"],
            "source": self.models["source"],
        }
        for key in [a.key for a in self.aggregates] + [c.key for c in self.columns]:
            columns[key] = self.values[key]
            columns[f"{key} ci_low"] = self.ci_low[key]
            columns[f"{key} ci_high"] = self.ci_high[key]
        columns["runs"] = self.models["runs"]
        out = pd.DataFrame(columns, index=self.values.index)
        out.index.name = "model_id"
        return out.reset_index()


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern.rstrip("/") + "/")


def select(
    frame: pd.DataFrame,
    tasks: Sequence[str] | None = None,
    metrics: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Rows of the given tasks (names, groups such as ``glue`` or globs such as ``glue/*``),
    in the given order, and for tasks matched by a key of ``metrics`` only those metric keys.
    A pattern or metric that matches nothing is an error naming it."""
    available = sorted(frame["task"].unique())
    order: dict[str, int] = {}
    if tasks:
        for pattern in tasks:
            matched = [task for task in available if _matches(task, pattern)]
            if not matched:
                raise UsageError(
                    f"tasks: '{pattern}' matches no task in the runs{did_you_mean(pattern, available)} "
                    f"(tasks in the runs: {', '.join(available) or 'none'})"
                )
            for task in matched:
                order.setdefault(task, len(order))
        frame = frame[frame["task"].isin(order)]
    for pattern, keys in (metrics or {}).items():
        matched = [task for task in frame["task"].unique() if _matches(task, pattern)]
        if not matched:
            raise UsageError(f"metrics: '{pattern}' matches no selected task")
        for task in matched:
            present = list(frame.loc[frame["task"] == task, "metric"].unique())
            for key in keys:
                if key not in present:
                    raise UsageError(f"metrics: {task} has no metric '{key}'{did_you_mean(key, present)} (it has {', '.join(present)})")
        chosen = frame["task"].isin(matched)
        frame = frame[~chosen | frame["metric"].isin(list(keys))]
    if order:
        frame = frame.assign(_order=frame["task"].map(order)).sort_values("_order", kind="stable").drop(columns="_order")
    return frame.reset_index(drop=True)


def pivot(frame: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """A tidy frame as models × (task, metric) (one run per model and task: the latest)."""
    resolved, _ = resolve_duplicates(frame)
    table = resolved.pivot(index="model_id", columns=["task", "metric"], values=value)
    return table.sort_index(axis=1)


def _columns(frame: pd.DataFrame) -> list[Column]:
    tasks = list(dict.fromkeys(frame["task"]))
    columns = []
    for task in tasks:
        rows = frame[frame["task"] == task].drop_duplicates("column")
        for row in rows.itertuples(index=False):
            columns.append(
                Column(
                    key=row.column,
                    task=task,
                    metric=row.column_metric,
                    metric_key=row.metric,
                    metric_name=row.metric_name,
                    direction=row.direction,
                    ideal=float(row.ideal),
                    signature=row.signature,
                    data_fingerprint=row.data_fingerprint,
                    n=int(row.n),
                    task_version=int(row.task_version),
                    incomparable=bool(row.incomparable),
                )
            )
    # Tasks in selection order, metrics in record order, marked variants after their column.
    position = {column.key: index for index, column in enumerate(columns)}
    return sorted(columns, key=lambda c: (tasks.index(c.task), c.incomparable, position[c.key]))


def _models(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    rows = {}
    for model_id, group in frame.groupby("model_id", sort=True):
        runs = group.drop_duplicates(["run_id", "run_dir"]).sort_values("created")
        first = runs.iloc[-1]
        rows[model_id] = {
            "model": first["model"],
            "model_fingerprint": first["model_fingerprint"],
            "model_kind": first["model_kind"],
            "source": first["source"],
            "display": first["display"] if "display" in first else first["model"],
            "runs": ",".join(runs["run_id"]),
            "run_dirs": list(runs["run_dir"]),
            "created": first["created"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _value_notes(frame: pd.DataFrame) -> list[str]:
    """Why a shown value is missing (or a group's), as its record says."""
    if "note" not in frame:  # a frame built by hand
        return []
    noted = frame[frame["note"].notna()]
    return [f"{row.model_id} {row.task} {row.metric}: {row.note}" for row in noted.itertuples(index=False)]


def _default_aggregates(frame: pd.DataFrame) -> list[str]:
    comparable = frame[~frame["incomparable"]]
    if comparable["column"].nunique() < 2:
        return []
    names = ["glue_score", "mean"]
    if frame["model_id"].nunique() >= 2:
        names.append("mean_win_rate")
    return names


def _compute_aggregates(frame: pd.DataFrame, names: Iterable[str] | None) -> list[AggregateResult]:
    requested = names is not None
    results = []
    for name in _default_aggregates(frame) if names is None else names:
        if name not in AGGREGATES:
            raise UsageError(f"unknown aggregate '{name}'{did_you_mean(name, AGGREGATES)} (known: {', '.join(AGGREGATES)})")
        result = AGGREGATES[name](frame)
        if result is None:
            if requested:
                raise UsageError(f"aggregate '{name}' does not apply: no suitable task or metric column in the leaderboard")
            continue
        results.append(result)
    return results


def _default_rank_by(columns: list[Column], aggregates: list[AggregateResult]) -> str:
    keys = [a.key for a in aggregates]
    plain = [c for c in columns if not c.incomparable]
    if "glue_score" in keys and all(glue_task_of(c.task) is not None for c in plain):
        return "glue_score"
    for key in ("mean", "mean_win_rate"):
        if key in keys:
            return key
    return (plain or columns)[0].key


def build_leaderboard(
    runs: pd.DataFrame | PathLike | Iterable[PathLike],
    *,
    tasks: Sequence[str] | None = None,
    metrics: Mapping[str, Sequence[str]] | None = None,
    aggregates: Sequence[str] | None = None,
    rank_by: str | None = None,
    allow_incomparable: bool = False,
    duplicates: str = "latest",
    title: str = "Leaderboard",
    description: str = "",
    ranks: str = "paired",
    compare_settings: CompareSettings | None = None,
    names: Mapping[str, str] | None = None,
) -> Leaderboard:
    """Build a leaderboard from run directories (or a frame from :func:`load_runs`).

    ``aggregates``: any of ``glue_score``, ``mean``, ``mean_win_rate`` (default: those that
    apply, none for a single column). ``rank_by``: an aggregate key or a column key
    ``task:metric`` (default: the GLUE score for an all-GLUE board, else the suite mean,
    else the mean win rate, else the only column). ``ranks``: ``paired`` (clusters from
    paired tests on the shared examples, corrected across every pair, with
    ``compare_settings``) or ``marginal`` (overlapping 95% intervals tie). ``names`` maps a
    model id to the readable name shown for it (default: the record's
    ``model.notes.display_name``, else the id).
    """
    import pandas as pd

    frame = runs if isinstance(runs, pd.DataFrame) else load_runs(runs)
    if frame.empty:
        raise UsageError("the runs hold no metric values to put on a leaderboard")
    if ranks not in RANK_RULES:
        raise UsageError(f"ranks: unknown rule '{ranks}'{did_you_mean(ranks, RANK_RULES)} (known: {', '.join(RANK_RULES)})")
    frame = select(frame, tasks, metrics)
    frame, notes = resolve_duplicates(frame, duplicates)
    frame = with_display_names(frame, names)
    frame, comparability_notes = split_incomparable(frame, allow=allow_incomparable)
    notes += comparability_notes
    notes += _value_notes(frame)
    columns = _columns(frame)
    results = _compute_aggregates(frame, aggregates)
    for result in results:
        notes += result.notes
    models = sorted(frame["model_id"].unique())
    keys = [c.key for c in columns]
    tables = {}
    for name in ("value", "ci_low", "ci_high"):
        table = frame.pivot(index="model_id", columns="column", values=name).reindex(index=models, columns=keys)
        for result in results:
            table[result.key] = result.values[name].reindex(models)
        tables[name] = table
    rank_by = rank_by or _default_rank_by(columns, results)
    available = [r.key for r in results] + keys
    if rank_by not in available:
        raise UsageError(f"rank_by: no column '{rank_by}'{did_you_mean(rank_by, available)} (columns: {', '.join(available)})")
    paired = PairedTests(frame, compare_settings) if ranks == "paired" else None
    direction, ideal = next(((c.direction, c.ideal) for c in columns if c.key == rank_by), ("higher", math.nan))
    structure = next((r.structure for r in results if r.key == rank_by), None)
    ranking, rank_notes = rank_column(
        tables["value"][rank_by], tables["ci_low"][rank_by], tables["ci_high"][rank_by], key=rank_by, rule=ranks,
        tests=paired if rank_by in keys or structure is not None else None, direction=direction, ideal=ideal, structure=structure,
    )
    order = list(ranking.sort_values("order").index)
    return Leaderboard(
        title=title,
        description=description,
        columns=columns,
        aggregates=[AggregateColumn(r.key, r.label, r.description, structure=r.structure) for r in results],
        values=tables["value"].reindex(order),
        ci_low=tables["ci_low"].reindex(order),
        ci_high=tables["ci_high"].reindex(order),
        ranking=ranking[["rank", "tied", "cluster"]].reindex(order),
        models=_models(frame).reindex(order),
        rank_by=rank_by,
        data=frame,
        notes=rank_notes + notes,
        ranks=ranks,
        paired=paired,
    )


RANK_RULES = ("paired", "marginal")


def with_display_names(frame: pd.DataFrame, names: Mapping[str, str] | None) -> pd.DataFrame:
    """Add ``display``: the readable name of each row. ``names`` (model id -> name) wins over
    the record's ``model.notes.display_name``; two rows may not share a name, and a name
    for a model that is not on the board is an error, not silently ignored."""
    frame = frame.copy()
    if "display_name" not in frame:
        frame["display_name"] = None
    ids = sorted(frame["model_id"].unique())
    for model in names or {}:
        if model not in ids:
            raise UsageError(f"--name: no model '{model}' on the leaderboard{did_you_mean(model, ids)} (models: {', '.join(ids)})")
    chosen: dict[str, str] = {}
    for key, group in frame.groupby("model_id", sort=True):
        model = str(key)  # model ids are strings
        recorded = next((str(v) for v in group.sort_values("created")["display_name"][::-1] if isinstance(v, str) and v.strip()), None)
        chosen[model] = ((names or {}).get(model) or recorded or str(model)).strip() or str(model)
    seen: dict[str, str] = {}
    for model, name in chosen.items():
        if name in seen:
            raise UsageError(f"display names must tell rows apart: '{name}' is the name of both '{seen[name]}' and '{model}' (use --name MODEL=NAME)")
        seen[name] = model
    frame["display"] = frame["model_id"].map(chosen)
    return frame
