"""Changing a run directory's record: the one write path of ``run``, ``score --run-dir`` and
``rescore``.

Each writer holds the record lock while it reads ``results.json``, merges its tasks into it,
checks that every samples file the new record names is there with the bytes its name
promises, replaces ``results.json`` and then removes the samples files no task names any
more. Samples are content-addressed and written before the lock is taken, so a crash at any
point leaves the old record with its samples or the new one with its samples (at worst an
unnamed samples file, which the next identical write reuses).

Merging keeps the tasks of earlier runs in the directory and replaces those run again, but
only when the runs are of the same system: the same checkpoint (source, fingerprint, kind,
dtype, device type and adapter notes) or the same prediction-file system (its name), and, when
tasks are kept, the same settings (seed, limit, ...) so that the run-level ``settings`` stay
true of every task. Otherwise the write is refused, naming what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.errors import RecordError, UsageError
from evalharness.execution.lock import ensure_run_dir, record_lock
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.records.files import SAMPLES_DIR, samples_digest
from evalharness.records.record import (
    RESULTS_FILE,
    ModelEntry,
    RunRecord,
    load_record,
    parse_samples,
    write_record,
)

__all__ = [
    "Commit",
    "check_mergeable",
    "compatibility_problems",
    "existing_record",
    "merge_records",
    "prepare_run_dir",
    "update_record",
]

# Settings that say how a run was executed, not what its numbers mean: they may differ
# between the runs whose tasks one record holds (the newest run's values are kept).
EXECUTION_SETTINGS = frozenset({"tasks", "batch_size", "max_batch_tokens", "device", "device_map", "trust_task_code"})


@dataclass(frozen=True)
class Commit:
    """What one write did to the directory's tasks."""

    path: Path
    record: RunRecord
    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in (("added", self.added), ("replaced", self.replaced)) if names]
        if self.kept:
            parts.append(f"kept {', '.join(self.kept)} (from an earlier run in this directory)")
        return f"{self.path}: " + "; ".join(parts or ["unchanged"])


def prepare_run_dir(run_dir: Path) -> None:
    """Prove that the run directory (and its samples folder, when there is one) can be
    written, before anything expensive runs; a ``UsageError`` naming it otherwise."""
    ensure_run_dir(run_dir)
    if (run_dir / SAMPLES_DIR).exists():
        ensure_run_dir(run_dir / SAMPLES_DIR)
    results = run_dir / RESULTS_FILE
    if results.is_file() and not results.stat().st_mode & 0o222:
        raise UsageError(f"{results} is read-only; evalharness will not replace it. Choose another output directory")


def existing_record(run_dir: Path) -> RunRecord | None:
    """The record already in ``run_dir``; one that cannot be read is never overwritten."""
    if not (run_dir / RESULTS_FILE).exists():
        return None
    try:
        return load_record(run_dir)
    except RecordError as exc:
        raise RecordError(
            f"{exc}\nthe run directory already holds this record and evalharness will not overwrite it; "
            "repair or move it, or choose another output directory"
        ) from None


def _identity(model: ModelEntry) -> JSONObject:
    """What makes two runs runs of the same system."""
    if model.source == "predictions":
        return {"source": model.source, "name": model.name}
    return {
        "source": model.source,
        "fingerprint": model.fingerprint,
        "kind": model.kind,
        "dtype": model.dtype,
        "device type": (model.device or "").split(":")[0] or None,
        "notes": model.notes,
    }


def _differences(old: Mapping[str, object], new: Mapping[str, object], prefix: str, ignore: Iterable[str] = ()) -> list[str]:
    skip = set(ignore)
    return [
        f"{prefix}{key}: {old.get(key)!r} here, {new.get(key)!r} now"
        for key in sorted(set(old) | set(new), key=str)
        if key not in skip and old.get(key) != new.get(key)
    ]


def compatibility_problems(existing: RunRecord, model: ModelEntry, settings: Mapping[str, object], *, keeps_tasks: bool) -> list[str]:
    """Why a run of ``model`` with ``settings`` cannot share a record with ``existing``."""
    problems = _differences(_identity(existing.model), _identity(model), "model ")
    if keeps_tasks:
        problems += _differences(existing.settings, settings, "settings.", EXECUTION_SETTINGS)
    return problems


def _refusal(run_dir: Path, existing: RunRecord, problems: Sequence[str]) -> RecordError:
    return RecordError(
        f"{run_dir / RESULTS_FILE} already holds a run of '{existing.model.name}' ({existing.model.source}, "
        f"tasks: {', '.join(existing.tasks) or 'none'}) that this one cannot be merged with:\n  "
        + "\n  ".join(problems)
        + "\nnothing was written; choose another output directory (or rerun with the same model and settings)"
    )


def check_mergeable(run_dir: Path, model: ModelEntry, settings: Mapping[str, object], task_names: Iterable[str]) -> None:
    """Refuse early (before any forward pass) a run whose record could not be merged."""
    existing = existing_record(run_dir)
    if existing is None:
        return
    keeps = bool(set(existing.tasks) - set(task_names))
    problems = compatibility_problems(existing, model, settings, keeps_tasks=keeps)
    if problems:
        raise _refusal(run_dir, existing, problems)


def _merged_settings(old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]) -> JSONObject:
    merged = dict(new)
    old_tasks, new_tasks = old.get("tasks"), new.get("tasks")
    if isinstance(old_tasks, list) and isinstance(new_tasks, list):
        merged["tasks"] = list(dict.fromkeys([*old_tasks, *new_tasks]))
    if old.get("trust_task_code") or new.get("trust_task_code"):  # a permission any kept task may have used
        merged["trust_task_code"] = True
    return merged


def merge_records(run_dir: Path, existing: RunRecord | None, new: RunRecord) -> RunRecord:
    """``new`` with the tasks of ``existing`` that it does not replace, or a refusal."""
    if existing is None:
        return new
    kept = [name for name in existing.tasks if name not in new.tasks]
    problems = compatibility_problems(existing, new.model, new.settings, keeps_tasks=bool(kept))
    if problems:
        raise _refusal(run_dir, existing, problems)
    if not kept:  # a rerun of everything the directory held: nothing to merge
        return new
    tasks = {name: new.tasks.get(name, entry) for name, entry in existing.tasks.items()}
    tasks.update(new.tasks)
    skipped = {name: why for name, why in {**existing.skipped, **new.skipped}.items() if name not in tasks}
    return new.model_copy(
        update={
            "run_id": existing.run_id,
            "tasks": tasks,
            "skipped": skipped,
            "settings": _merged_settings(existing.settings, new.settings),
            "seconds": round(existing.seconds + new.seconds, 3),
        }
    )


def _changed(existing: RunRecord | None, record: RunRecord) -> list[str]:
    """Tasks whose samples file this write introduces."""
    old = existing.tasks if existing is not None else {}
    return [name for name, entry in record.tasks.items() if name not in old or old[name].samples != entry.samples]


def _check_new_samples(run_dir: Path, record: RunRecord, names: Iterable[str]) -> None:
    """Read back every samples file the new record introduces, before the record names it."""
    for name in names:
        entry = record.tasks[name]
        path = run_dir / entry.samples
        if samples_digest(entry.samples) is None:
            raise RecordError(f"{path}: task '{name}' names a samples file that is not content-addressed; nothing was written")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RecordError(
                f"{path}: the samples file of task '{name}' cannot be read back ({exc.strerror or exc}); "
                "nothing was written, run the command again"
            ) from None
        parse_samples(path, data, entry.n_examples, samples_digest(entry.samples))


def _remove_superseded(run_dir: Path, existing: RunRecord | None, record: RunRecord) -> None:
    if existing is None:
        return
    named = {entry.samples for entry in record.tasks.values()}
    root = (run_dir / SAMPLES_DIR).resolve()
    for entry in existing.tasks.values():
        path = (run_dir / entry.samples).resolve()
        if entry.samples in named or not path.is_relative_to(root):
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a leftover file is harmless: no record names it
            pass


def update_record(run_dir: Path, change: Callable[[RunRecord | None], RunRecord]) -> Commit:
    """Apply ``change`` to the directory's record under the record lock and write the result.

    ``change`` receives the current record (None in a new directory) and returns the new
    one, typically through :func:`merge_records`; it may raise to refuse.
    """
    run_dir = Path(run_dir)
    with record_lock(run_dir):
        existing = existing_record(run_dir)
        record = change(existing)
        fresh = _changed(existing, record)
        _check_new_samples(run_dir, record, fresh)
        try:
            path = write_record(run_dir, record)
        except OSError as exc:
            raise RecordError(
                f"{exc.filename or run_dir / RESULTS_FILE}: cannot write the run record ({exc.strerror or exc}); "
                "the directory still holds its previous record, unchanged"
            ) from None
        _remove_superseded(run_dir, existing, record)
    old = existing.tasks if existing is not None else {}
    return Commit(
        path=path,
        record=record,
        added=tuple(n for n in record.tasks if n not in old),
        replaced=tuple(n for n in record.tasks if n in old and old[n] != record.tasks[n]),
        kept=tuple(n for n in record.tasks if n in old and old[n] == record.tasks[n]),
    )
