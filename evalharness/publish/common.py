"""What every exporter needs from a run record: its metric values, why a number is partial,
which Hub dataset a task was drawn from, and file names that never collide.

Exporters read records through :mod:`evalharness.records.record` only; task specs are read
(never executed) to find a task's Hub dataset, and only when the spec still hashes to what
the run recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.errors import EvalHarnessError, UsageError, did_you_mean
from evalharness.jsonvalues import JSONObject
from evalharness.records.record import RunRecord, TaskEntry

__all__ = [
    "HubDataset",
    "PublishError",
    "check_task_names",
    "file_names",
    "hub_dataset",
    "json_text",
    "parse_assignments",
    "partial_reasons",
    "sha256_file",
    "string_map",
]


class PublishError(EvalHarnessError):
    """An export cannot be made faithfully (a value it would have to invent, a name clash,
    an output that does not read back as written)."""


def partial_reasons(task: TaskEntry) -> list[str]:
    """Why the task's numbers do not cover its whole evaluation set (empty: they do)."""
    reasons = []
    if task.n_examples < task.data.n_available:
        reasons.append(f"evaluated on {task.n_examples} of the {task.data.n_available} available examples")
    return reasons


@dataclass(frozen=True)
class HubDataset:
    """A Hub dataset reference: the id leaderboards key on, plus config/split/revision."""

    id: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    note: str | None = None  # e.g. "read from a local copy"


def hub_dataset(task_name: str, task: TaskEntry, tasks_dirs: Sequence[str | Path] = ()) -> HubDataset | None:
    """The Hub dataset the task's spec declares, when the spec is found and unchanged since the
    run (same ``spec_hash``); None otherwise: a changed spec may point at other data."""
    from evalharness.spec.catalog import TaskCatalog

    try:
        spec_task = TaskCatalog(tasks_dirs).load(task_name)
    except EvalHarnessError:
        return None
    hub = spec_task.spec.data.hub
    if hub is None or spec_task.spec_hash != task.spec_hash:
        return None
    note = None if task.data.source == "hub" else f"read from a local copy ({task.data.location}) declared equivalent in the task spec"
    return HubDataset(hub.path, hub.name, hub.split, hub.revision, note)


def parse_assignments(values: Iterable[str], option: str) -> dict[str, str]:
    """``TASK=VALUE`` pairs from a repeatable option."""
    mapping: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise UsageError(f"{option} '{value}': expected TASK=VALUE")
        mapping[name.strip()] = target.strip()
    return mapping


def check_task_names(names: Iterable[str], record: RunRecord, option: str) -> None:
    """Every task an option names must be in the run (a typo must not be silently ignored)."""
    for name in names:
        if name not in record.tasks:
            raise UsageError(f"{option}: the run has no task '{name}'{did_you_mean(name, record.tasks)}")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(name: str) -> str:
    slug = _UNSAFE.sub("_", name).strip("._") or "task"
    return slug[:80]


def file_names(names: Iterable[str]) -> dict[str, str]:
    """A file-name-safe, unique stem per name: ``glue/sst2`` -> ``glue_sst2``. Names that would
    share a stem (``a/b`` and ``a_b``) all get a short hash of the full name appended."""
    names = list(dict.fromkeys(names))
    stems = {name: _slug(name) for name in names}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    return {
        name: stem if counts[stem.lower()] == 1 else f"{stem}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        for name, stem in stems.items()
    }


def json_text(value: object) -> str:
    """Compact JSON for a value of any shape (text stays text, NaN is refused upstream)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False, default=str)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def string_map(values: Mapping[str, object]) -> JSONObject:
    """Key-value details as strings (formats that allow string values only), as a JSON object
    to place in a published document."""
    return {str(key): json_text(value) for key, value in values.items() if value is not None}
