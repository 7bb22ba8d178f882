"""The task catalog: where task files live, what they are called, and full validation.

A task's name is its path under a tasks folder without ``.yaml`` (``glue/sst2``); a folder
name is a group (``glue`` expands to every task under ``tasks/glue/``). Built-in tasks come
from the ``tasks/`` folder shipped inside the package; users add folders with
``--tasks-dir``. Hidden files and folders (``.name``) are not tasks.

A name must mean one thing, everywhere a run writes it, so the catalog refuses (for every
command, and file by file in ``tasks validate``):

- a name that is not a portable path segment per folder level (letters, digits, ``_`` and
  ``-``; no dots, spaces or reserved device names): run records name samples files after it;
- the same name twice, or two names (tasks or groups) that differ only in case: on a
  case-insensitive file system they share one samples file;
- a name that is both a task and a group (``--tasks glue`` must not depend on which wins);
- a ``--tasks-dir`` task inside a built-in group (``glue`` means the built-in GLUE tasks);
- a ``.yml`` (or ``.YAML``) file, which would silently be left out of its group.

Each task file is then checked by ``checks.check_task``, the same function ``run`` uses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.errors import EvalHarnessError, SpecError, UsageError, did_you_mean
from evalharness.spec.checks import check_task, template_fields
from evalharness.spec.loader import Task, load_task

__all__ = ["TaskCatalog", "builtin_tasks_dir", "check_task", "name_problem", "template_fields", "validate_paths"]

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_SEGMENT = 100


def builtin_tasks_dir() -> Path:
    """``evalharness/tasks`` in an installed wheel, the repository's ``tasks/`` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "tasks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "tasks"


def name_problem(name: str) -> str | None:
    """Why a task name cannot be used as a portable path under a run directory (None: it can)."""
    for segment in name.split("/"):
        if not _SEGMENT.fullmatch(segment):
            return (
                f"has the part '{segment}'; use letters, digits, '_' and '-' only (starting with a letter or "
                "digit; no dots or spaces), since run records name files after it"
            )
        if segment.casefold() in _RESERVED or len(segment) > MAX_SEGMENT:
            return f"has the part '{segment}', which is not a portable file name"
    return None


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    builtin: bool


def _prefixes(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _files(root: Path) -> Iterable[Path]:
    """Files under ``root`` (or ``root`` itself), sorted, hidden ones left out."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if not any(part.startswith(".") for part in path.relative_to(root).parts) and path.is_file():
            yield path


class _Discovery:
    """Task files of several folders, and every naming problem, by file."""

    def __init__(self, roots: Sequence[tuple[Path, bool]], show: Callable[[Path], Path] = lambda path: path) -> None:
        self.entries: dict[str, _Entry] = {}
        self.problems: dict[Path, str] = {}
        found: list[_Entry] = []
        for root, builtin in roots:
            for file in _files(root):
                shown = show(file)
                name = file.stem if root.is_file() else file.relative_to(root).with_suffix("").as_posix()
                if file.suffix == ".yaml":
                    found.append(_Entry(name, shown, builtin))
                elif file.suffix.lower() in (".yaml", ".yml"):
                    self.problems[shown] = (
                        f"{shown}: task files end in '.yaml'; rename it (a '{file.suffix}' file is not read as a task, "
                        "so its group would silently run without it)"
                    )
        for entry in found:
            self._add(entry)
        self._check_names()

    def _problem(self, entry: _Entry, message: str) -> None:
        self.problems.setdefault(entry.path, f"{entry.path}: {message}")

    def _add(self, entry: _Entry) -> None:
        problem = name_problem(entry.name)
        if problem is not None:
            self._problem(entry, f"task name '{entry.name}' {problem}")
        elif entry.name in self.entries and self.entries[entry.name].path != entry.path:
            other = self.entries[entry.name].path
            self._problem(entry, f"duplicate task name '{entry.name}' (also defined by {other})")
        else:
            self.entries[entry.name] = entry

    def _check_names(self) -> None:
        groups = self.groups()
        builtin_groups = {
            prefix for entry in self.entries.values() if entry.builtin for prefix in _prefixes(entry.name)
        }
        folded: dict[str, str] = {}
        for entry in self.entries.values():
            if entry.name in groups:
                self._problem(
                    entry,
                    f"'{entry.name}' is both a task and a group of tasks ({', '.join(groups[entry.name][:3])}"
                    f"{', ...' if len(groups[entry.name]) > 3 else ''}); rename the file or the folder",
                )
            for prefix in _prefixes(entry.name):
                if prefix in self.entries:
                    self._problem(
                        entry,
                        f"'{prefix}' is both a task ({self.entries[prefix].path}) and a group of tasks; "
                        "rename the file or the folder",
                    )
            if not entry.builtin:
                for prefix in _prefixes(entry.name):
                    if prefix in builtin_groups:
                        self._problem(
                            entry,
                            f"'{prefix}' is a built-in group; a --tasks-dir cannot add '{entry.name}' to it "
                            "(put it in a folder of your own)",
                        )
            for name in [*_prefixes(entry.name), entry.name]:
                other = folded.setdefault(name.casefold(), name)
                if other != name:
                    self._problem(
                        entry,
                        f"'{name}' and '{other}' differ only in case; their run samples would share one file on "
                        "case-insensitive file systems (rename one)",
                    )

    def groups(self) -> dict[str, list[str]]:
        """Every folder prefix of a task name is a group of the tasks below it."""
        groups: dict[str, list[str]] = {}
        for name in sorted(self.entries):
            for prefix in _prefixes(name):
                groups.setdefault(prefix, []).append(name)
        return groups


class TaskCatalog:
    """Task files discovered under the built-in folder and any user folders."""

    def __init__(self, extra_dirs: Sequence[str | os.PathLike[str]] = (), *, include_builtin: bool = True):
        roots = [(builtin_tasks_dir(), True)] if include_builtin else []
        for extra in extra_dirs:
            path = Path(extra)
            if not path.is_dir():
                raise UsageError(f"--tasks-dir '{path}' is not a directory")
            roots.append((path, False))
        discovery = _Discovery(roots)
        if discovery.problems:
            raise SpecError("\n".join(discovery.problems.values()))
        self._entries = discovery.entries
        self._groups = discovery.groups()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def groups(self) -> dict[str, list[str]]:
        return {group: list(members) for group, members in self._groups.items()}

    def path_of(self, name: str) -> Path:
        try:
            return self._entries[name].path
        except KeyError:
            known = [*self._entries, *self._groups]
            raise UsageError(f"unknown task '{name}'{did_you_mean(name, known)}") from None

    def load(self, name: str) -> Task:
        task = load_task(self.path_of(name), name)
        check_task(task, known_tasks=self._entries)
        return task

    def resolve(self, requested: Iterable[str]) -> list[tuple[str, bool]]:
        """Expand names and groups, in order, without repeats.

        Returns ``(task name, explicitly named)``: tasks reached through a group may be
        skipped when their data is unavailable, explicitly named ones may not.
        """
        resolved: dict[str, bool] = {}
        for item in requested:
            item = item.strip().strip("/")
            if not item:
                continue
            if item in self._entries:
                resolved[item] = True
            elif item in self._groups:
                for name in self._groups[item]:
                    resolved.setdefault(name, False)
            else:
                self.path_of(item)  # raises with a suggestion
        if not resolved:
            raise UsageError("no tasks given")
        return list(resolved.items())


def validate_paths(paths: Sequence[str | Path]) -> list[tuple[Path, str | None]]:
    """Validate task files or folders of them; returns ``(file, error or None)`` per file.

    A folder is checked as ``--tasks-dir FOLDER`` would see it, next to the built-in tasks (a
    folder inside the built-in one is checked as built-in tasks); a single file is named by
    its stem, as at the top of a tasks folder. Paths are shown as given.
    """
    builtin = builtin_tasks_dir().resolve()
    results: list[tuple[Path, str | None]] = []
    given: list[tuple[Path, Path]] = []  # (as given, resolved)
    for item in map(Path, paths):
        if not item.exists():
            results.append((item, f"{item}: no such file or directory"))
        elif not item.is_file() and not item.is_dir():
            results.append((item, f"{item}: not a regular file or a folder"))
        elif item.is_file() and item.suffix.lower() not in (".yaml", ".yml"):
            results.append((item, f"{item}: not a task file (task files end in '.yaml')"))
        else:
            given.append((item, item.resolve()))
    folders = [resolved for _, resolved in given if resolved.is_dir()]
    roots: list[tuple[Path, bool]] = [(builtin, True)]
    for _, resolved in given:
        covered = [builtin, *(folder for folder in folders if folder != resolved)]
        if not any(resolved == root or root in resolved.parents for root in covered) and (resolved, False) not in roots:
            roots.append((resolved, False))

    def show(path: Path) -> Path:
        for item, resolved in sorted(given, key=lambda pair: len(pair[1].parts), reverse=True):
            if path == resolved or resolved in path.parents:
                return item / path.relative_to(resolved) if path != resolved else item
        return path

    discovery = _Discovery(roots, show)
    selected = [show(file) for _, resolved in given for file in _files(resolved)]
    for item, resolved in given:
        if resolved.is_dir() and not any(file.suffix.lower() in (".yaml", ".yml") for file in _files(resolved)):
            results.append((item, f"{item}: no task files (*.yaml) in this folder; nothing was validated"))
    by_path = {entry.path: entry.name for entry in discovery.entries.values()}
    for path in dict.fromkeys(selected):
        if path in discovery.problems:
            results.append((path, discovery.problems[path]))
        elif path in by_path:
            try:
                check_task(load_task(path, by_path[path]), known_tasks=discovery.entries)
                results.append((path, None))
            except EvalHarnessError as exc:
                results.append((path, str(exc)))
    return results
