"""What a published leaderboard says about each row besides its scores: model metadata, a
command that reproduces its runs, and badges for what makes its numbers different.

Read from the row's run records only. Fields a record may not have yet (prompt format,
adapter and base model) are shown when ``model.notes`` or ``settings`` carry them under the
documented keys ``prompt_format``, ``adapter`` and ``base_model``, and as "—" otherwise.

Badges (``Badge.kind``):

- ``partial``: a task of the row ran on a subset (``--limit``; ``tasks.*.settings.subset``):
  its numbers are not comparable with a full run and say nothing about the rest;
- ``skipped``: the row's runs skipped tasks (``skipped`` in the record), with the reasons;
- ``mixed``: settings that can change scores (dtype, backend, prompt format, few-shot,
  generation, label map, model kind, tokenizer, adapter) differ between the runs behind the
  row, or between this row and the others.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalharness.jsonvalues import JsonValue
    from evalharness.leaderboard.table import Leaderboard
    from evalharness.records.record import RunRecord

__all__ = ["SCORE_SETTINGS", "Badge", "ModelInfo", "model_metadata", "record_badges", "score_settings"]

MISSING = "—"

# Run settings that change what a model is asked or how it answers, so numbers obtained with
# different values are not the same experiment (batch size, device and seeds of the
# intervals do not change scores beyond float noise).
SCORE_SETTINGS = ("dtype", "backend", "prompt_format", "num_fewshot", "generation", "label_map", "model_kind", "tokenizer", "adapter", "base_model")


@dataclass(frozen=True)
class Badge:
    kind: str
    label: str
    detail: str


@dataclass
class ModelInfo:
    """One row's metadata: ``facts`` (label, value) in display order, ``reproduce`` commands."""

    model_id: str
    facts: list[tuple[str, str]]
    reproduce: list[str]
    badges: list[Badge] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)

    def fact(self, label: str) -> str:
        return next((value for key, value in self.facts if key == label), MISSING)


def _mapping(value: JsonValue) -> Mapping[str, JsonValue]:
    """A record's free-form settings section, or empty when it is absent or not a mapping."""
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    if value is None or value == "" or value == {}:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _documented(record: RunRecord, key: str) -> JsonValue:
    """A field a later record version will hold, read where runs put it today."""
    notes, settings = record.model.notes, record.settings
    return notes.get(key) if notes.get(key) not in (None, "") else settings.get(key)


def _backend(record: RunRecord) -> str:
    backend = record.settings.get("backend")
    if isinstance(backend, Mapping) and backend.get("name"):
        return str(backend["name"])
    if record.model.notes.get("backend"):
        return str(record.model.notes["backend"])
    return "hf" if record.model.source == "checkpoint" else MISSING


def _parameters(count: int | None) -> str:
    if not count:
        return MISSING
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{unit} ({count:,})"
    return f"{count:,}"


def _version(record: RunRecord) -> str:
    environment = record.environment
    packages = _mapping(environment.get("packages"))
    version = environment.get("evalharness") or packages.get("evalharness")
    revision = environment.get("evalharness_revision")
    text = _text(version)
    if isinstance(revision, str) and revision:
        text += f" ({revision[:12]})"
    return text


def score_settings(record: RunRecord) -> dict[str, str]:
    """The record's values of :data:`SCORE_SETTINGS`, as text."""
    values: dict[str, JsonValue] = {
        "dtype": record.model.dtype or record.settings.get("dtype"),
        "backend": _backend(record),
        "model_kind": record.model.kind,
        "tokenizer": record.settings.get("tokenizer") or record.model.notes.get("tokenizer"),
    }
    for key in SCORE_SETTINGS:
        values.setdefault(key, _documented(record, key))
    if values["generation"] == {}:
        values["generation"] = None
    return {key: _text(values[key]) for key in SCORE_SETTINGS}


# -- reproduce commands, one per kind of source ---------------------------------------------


def _run_command(record: RunRecord, tasks: list[str]) -> list[str]:
    settings = record.settings
    parts = ["evalharness", "run", "--model", record.model.path, "--tasks", ",".join(tasks)]
    flags: dict[str, JsonValue] = {
        "--data-dir": settings.get("data_dir"),
        "--limit": settings.get("limit"),
        "--dtype": settings.get("dtype") if settings.get("dtype") not in (None, "auto") else None,
        "--model-kind": settings.get("model_kind"),
        "--num-fewshot": settings.get("num_fewshot"),
        "--seed": settings.get("seed"),
    }
    generation = _mapping(settings.get("generation"))
    flags["--max-new-tokens"] = generation.get("max_new_tokens")
    flags["--num-beams"] = generation.get("num_beams")
    backend = _backend(record)
    if backend not in ("hf", MISSING):
        flags["--backend"] = backend
    for flag, value in flags.items():
        if value is not None:
            parts += [flag, str(value)]
    return [shlex.join(parts)]


def _score_commands(record: RunRecord, tasks: list[str]) -> list[str]:
    commands = []
    for task in tasks:
        predictions = record.tasks[task].settings.get("predictions") or {}
        path = predictions.get("path") if isinstance(predictions, Mapping) else None
        parts = ["evalharness", "score", "--task", task, "--predictions", str(path or record.model.path), "--name", record.model.name]
        options = {**record.settings, **record.tasks[task].settings}
        for flag, key in (("--data-dir", "data_dir"), ("--seed", "seed"), ("--n-resamples", "n_resamples")):
            if options.get(key) is not None:
                parts += [flag, str(options[key])]
        commands.append(shlex.join(parts + ["--run-dir", "RUN_DIR"]))
    return commands


def _imported(record: RunRecord, tasks: list[str]) -> list[str]:
    return [f"# imported from lm-evaluation-harness results: {record.model.path} (re-run it there, or with evalharness run)"]


REPRODUCE = {"checkpoint": _run_command, "predictions": _score_commands, "lm-eval": _imported}


def _pins(record: RunRecord, tasks: list[str]) -> str:
    pinned = ", ".join(f"{task} v{record.tasks[task].version} (spec {record.tasks[task].spec_hash})" for task in tasks)
    return f"# expects task versions: {pinned}"


# -- badges ---------------------------------------------------------------------------------


def _partial(record: RunRecord, tasks: list[str]) -> list[str]:
    found = []
    for task in tasks:
        entry = record.tasks[task]
        subset = _mapping(entry.settings.get("subset"))
        if subset.get("partial") or entry.n_examples < entry.data.n_available:
            limit = subset.get("limit", record.settings.get("limit"))
            found.append(f"{task}: {entry.n_examples} of {entry.data.n_available} examples" + (f" (--limit {limit})" if limit else ""))
    return found


def _badges(runs: list[tuple[RunRecord, list[str]]], on_board: set[str], differs: list[str]) -> list[Badge]:
    badges = []
    partial = [text for record, tasks in runs for text in _partial(record, tasks)]
    if partial:
        badges.append(Badge("partial", "partial", "partial run, not comparable with a full one: " + "; ".join(partial)))
    skipped = {task: reason for record, _ in runs for task, reason in record.skipped.items() if task not in on_board}
    if skipped:
        badges.append(Badge("skipped", f"{len(skipped)} skipped", "skipped: " + "; ".join(f"{t} ({r})" for t, r in sorted(skipped.items()))))
    own = [dict(score_settings(record)) for record, _ in runs]
    inside = [key for key in SCORE_SETTINGS if len({values[key] for values in own}) > 1]
    detail = [f"{key} differs between this row's runs ({', '.join(sorted({v[key] for v in own}))})" for key in inside] + differs
    if detail:
        badges.append(Badge("mixed", "mixed settings", "; ".join(detail)))
    return badges


def record_badges(record: RunRecord) -> list[Badge]:
    """The badges of one run on its own (the single-run report): partial tasks, skipped
    tasks, and options given to the run that no task applied."""
    badges = _badges([(record, list(record.tasks))], set(record.tasks), [])
    unused = record.settings.get("not_applied")
    if isinstance(unused, Mapping) and unused:
        detail = "; ".join(f"{name}: {_text(value.get('reason') if isinstance(value, Mapping) else value)}" for name, value in unused.items())
        badges.append(Badge("mixed", "options not applied", "given but not applied: " + detail))
    return badges


def _board_differences(settings: dict[str, dict[str, str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Per row, the settings in which it differs from the most common value on the board."""
    per_row: dict[str, list[str]] = {model: [] for model in settings}
    notes = []
    for key in SCORE_SETTINGS:
        values = Counter(row[key] for row in settings.values())
        if len(values) < 2:
            continue
        common = values.most_common(1)[0][0]
        groups = {value: sorted(m for m, row in settings.items() if row[key] == value) for value in values}
        notes.append(f"mixed settings: {key} differs between rows: " + "; ".join(f"{value}: {', '.join(models)}" for value, models in groups.items()))
        for model, row in settings.items():
            if row[key] != common:
                per_row[model].append(f"{key} {row[key]} (most rows: {common})")
    return per_row, notes


def model_metadata(board: Leaderboard) -> tuple[dict[str, ModelInfo], list[str]]:
    """Per row of ``board``: its metadata, reproduce commands and badges; plus board notes."""
    from evalharness.records.record import load_record

    data = board.data
    infos: dict[str, ModelInfo] = {}
    runs_of: dict[str, list[tuple[RunRecord, list[str]]]] = {}
    for model in board.model_ids:
        rows = data[data["model_id"] == model].sort_values("created", ascending=False)
        runs = []
        for run_dir, group in rows.groupby("run_dir", sort=False):
            runs.append((load_record(Path(str(run_dir))), list(dict.fromkeys(group["task"]))))
        runs_of[model] = runs
    latest = {model: runs[0][0] for model, runs in runs_of.items()}
    differs, notes = _board_differences({model: score_settings(record) for model, record in latest.items()})
    for model, runs in runs_of.items():
        record = latest[model]
        info = ModelInfo(
            model_id=model,
            facts=[
                ("name", board.display(model)),
                ("model", record.model.name),
                ("kind", record.model.kind),
                ("parameters", _parameters(record.model.num_parameters)),
                ("dtype", _text(record.model.dtype or record.settings.get("dtype"))),
                ("backend", _backend(record)),
                ("prompt format", _text(_documented(record, "prompt_format"))),
                ("adapter / base model", " / ".join(_text(_documented(record, k)) for k in ("adapter", "base_model"))),
                ("source", record.model.source),
                ("date", record.created[:10]),
                ("evalharness", _version(record)),
                ("fingerprint", record.model.fingerprint),
            ],
            reproduce=[line for run, tasks in runs for line in (REPRODUCE.get(run.model.source, _imported)(run, tasks) + [_pins(run, tasks)])],
            badges=_badges(runs, set(data.loc[data["model_id"] == model, "task"]), differs[model]),
            settings=score_settings(record),
        )
        infos[model] = info
    return infos, notes
