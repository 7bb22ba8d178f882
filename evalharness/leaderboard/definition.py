"""Leaderboard definitions: the YAML files in a project's ``leaderboards/`` folder.

A definition says which runs (paths or globs, relative to the definition file), which tasks
and metrics, and which aggregate ranks the board, so CI can rebuild the same leaderboard
and site with ``evalharness leaderboard --definition leaderboards/x.yaml --site DIR``.
It is validated like a task spec: unknown keys are errors naming the file and field.

    title: Demo sentiment leaderboard
    description: Two tiny classifiers on the synthetic demo task.
    runs: ["../demo-output/runs/*"]
    tasks: [demo/sentiment]          # names, groups (glue) or globs (glue/*); default: all
    metrics: {demo/sentiment: [accuracy]}   # per task (or glob): keys to show; default: all
    aggregates: [mean, mean_win_rate]       # default: those that apply
    rank_by: demo/sentiment:accuracy        # an aggregate or task:metric column
    allow_incomparable: false
    duplicates: latest                      # or error
    ranks: paired                           # clusters from paired tests, or marginal
    alpha: 0.05                             # paired ranks: significance level
    correction: holm                        # paired ranks: holm, bh or none, across all pairs
    names: {bert-base-uncased: BERT base}   # readable names shown for model ids
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from evalharness.config import StrictModel
from evalharness.errors import SpecError

__all__ = ["LeaderboardDefinition", "LoadedDefinition", "load_definition"]


class LeaderboardDefinition(StrictModel):
    title: str = Field(min_length=1)
    description: str = ""
    runs: list[str] = Field(min_length=1, description="run directories or globs, relative to this file")
    tasks: list[str] | None = Field(default=None, min_length=1)
    metrics: dict[str, list[str]] | None = None
    aggregates: list[Literal["glue_score", "mean", "mean_win_rate"]] | None = None
    rank_by: str | None = None
    allow_incomparable: bool = False
    duplicates: Literal["latest", "error"] = "latest"
    ranks: Literal["paired", "marginal"] = "paired"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["holm", "bh", "none"] = "holm"
    names: dict[str, str] = Field(default_factory=dict, description="model id -> the name shown for it")

    @field_validator("names")
    @classmethod
    def _no_blank_names(cls, values: dict[str, str]) -> dict[str, str]:
        if any(not key.strip() or not value.strip() for key, value in values.items()):
            raise ValueError("model ids and names must not be blank")
        return values

    @field_validator("runs", "tasks")
    @classmethod
    def _no_blank_entries(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and any(not value.strip() for value in values):
            raise ValueError("entries must not be blank")
        return values


@dataclass(frozen=True)
class LoadedDefinition:
    path: Path
    spec: LeaderboardDefinition
    run_dirs: list[Path]


def _expand(pattern: str, base: Path, where: str) -> list[Path]:
    target = Path(pattern).expanduser()
    full = target if target.is_absolute() else base / target
    if glob.has_magic(str(full)):
        matches = sorted(Path(match) for match in glob.glob(str(full), recursive=True))
        matches = [match for match in matches if match.is_dir() or match.name == "results.json"]
        if not matches:
            raise SpecError(f"{where}: '{pattern}' matches no run directory (looked in {base})")
        return matches
    if not full.exists():
        raise SpecError(f"{where}: '{pattern}' does not exist (resolved to {full})")
    return [full]


def load_definition(path: str | Path) -> LoadedDefinition:
    """Load and validate a definition and expand its run globs (relative to the file)."""
    from evalharness.config import load_config

    path = Path(path)
    spec = load_config(path, LeaderboardDefinition, what="a leaderboard definition").value
    run_dirs: list[Path] = []
    for index, pattern in enumerate(spec.runs):
        run_dirs.extend(_expand(pattern, path.parent, f"{path}: runs[{index}]"))
    return LoadedDefinition(path=path, spec=spec, run_dirs=run_dirs)
