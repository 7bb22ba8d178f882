"""The task catalog: where task files live, what they are called, and full validation.

A task's name is its path under a tasks folder without ``.yaml`` (``glue/sst2``); a folder
name is a group (``glue`` expands to every task under ``tasks/glue/``). Built-in tasks come
from the ``tasks/`` folder shipped inside the package; users add folders with
``--tasks-dir``. The same name in two folders is an error, never a silent override.

Validation here goes beyond the schema: metric names and settings, reader formats and the
fields that prompt templates use are checked against their registries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalharness.config import validate_model
from evalharness.errors import EvalHarnessError, SpecError, UsageError, did_you_mean
from evalharness.spec.kinds import TASK_KINDS
from evalharness.spec.loader import Task, load_task

__all__ = ["TaskCatalog", "builtin_tasks_dir", "check_task", "template_fields"]


def builtin_tasks_dir() -> Path:
    """``evalharness/tasks`` in an installed wheel, the repository's ``tasks/`` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "tasks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "tasks"


def template_fields(template: str) -> set[str]:
    """Variables a Jinja2 template reads (parsed, never executed)."""
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    try:
        return set(meta.find_undeclared_variables(SandboxedEnvironment().parse(template)))
    except Exception as exc:  # jinja2.TemplateSyntaxError and friends
        raise SpecError(f"invalid template: {exc}") from None


# Names a template may use besides the example's canonical fields.
TEMPLATE_GLOBALS = {"labels", "label_name"}


def _check_templates(task: Task) -> None:
    prompt = task.spec.prompt
    if prompt is None:
        return
    known = set(TASK_KINDS[task.spec.kind].fields) | TEMPLATE_GLOBALS
    templates = {"prompt.template": prompt.template}
    if prompt.target is not None:
        templates["prompt.target"] = prompt.target
    for index, choice in enumerate(prompt.choices or []):
        templates[f"prompt.choices[{index}]"] = choice
    for where, template in templates.items():
        try:
            used = template_fields(template)
        except SpecError as exc:
            raise SpecError(f"{task.path}: {where}: {exc}") from None
        unknown = sorted(used - known)
        if unknown:
            raise SpecError(
                f"{task.path}: {where}: template uses {unknown}, which a '{task.spec.kind}' "
                f"example does not have{did_you_mean(unknown[0], known)} "
                f"(available: {', '.join(sorted(known))})"
            )


def _check_metrics(task: Task) -> None:
    from evalharness.metrics.registry import METRICS, metric_class

    for index, metric in enumerate(task.spec.metrics):
        where = f"{task.path}: metrics[{index}]"
        if metric.name not in METRICS:
            raise SpecError(
                f"{where}.name: unknown metric '{metric.name}'{did_you_mean(metric.name, METRICS)}"
            )
        cls = metric_class(metric.name)
        settings = validate_model(cls.Settings, metric.settings, str(task.path), prefix=("metrics", index, "settings"))
        problem = cls.spec_problem(settings, task.spec)
        if problem is not None:
            raise SpecError(f"{where}: {problem}")


def _check_sources(task: Task) -> None:
    from evalharness.data.loader import check_local_source

    sources = {"data": task.spec.data}
    few_shot = task.spec.prompt.few_shot if task.spec.prompt else None
    if few_shot is not None and few_shot.data is not None:
        sources["prompt.few_shot.data"] = few_shot.data
    for where, source in sources.items():
        if source.local is not None:
            check_local_source(source.local, f"{task.path}: {where}.local")


def _check_formulations(task: Task) -> None:
    from evalharness.prompting import formulation_by_name

    known = formulation_by_name()
    for name, settings in task.spec.formulations.items():
        if name not in known:
            raise SpecError(
                f"{task.path}: formulations.{name}: unknown formulation{did_you_mean(name, known)} "
                f"(known: {', '.join(sorted(known))})"
            )
        validate_model(known[name].Settings, settings, str(task.path), prefix=("formulations", name))


def check_task(task: Task) -> None:
    """Cross-reference checks that the schema alone cannot do."""
    _check_sources(task)
    _check_metrics(task)
    _check_formulations(task)
    _check_templates(task)


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    root: Path


class TaskCatalog:
    """Task files discovered under the built-in folder and any user folders."""

    def __init__(self, extra_dirs: Sequence[str | Path] = (), *, include_builtin: bool = True):
        roots = [builtin_tasks_dir()] if include_builtin else []
        for extra in extra_dirs:
            path = Path(extra)
            if not path.is_dir():
                raise UsageError(f"--tasks-dir '{path}' is not a directory")
            roots.append(path)
        self._entries: dict[str, _Entry] = {}
        for root in roots:
            for path in sorted(root.rglob("*.yaml")):
                name = path.relative_to(root).with_suffix("").as_posix()
                if name in self._entries:
                    other = self._entries[name].path
                    raise SpecError(f"{path}: duplicate task name '{name}' (also defined by {other})")
                self._entries[name] = _Entry(name, path, root)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def groups(self) -> dict[str, list[str]]:
        """Every folder prefix of a task name is a group of the tasks below it."""
        groups: dict[str, list[str]] = {}
        for name in self.names():
            parts = name.split("/")
            for depth in range(1, len(parts)):
                groups.setdefault("/".join(parts[:depth]), []).append(name)
        return groups

    def path_of(self, name: str) -> Path:
        try:
            return self._entries[name].path
        except KeyError:
            known = [*self._entries, *self.groups()]
            raise UsageError(f"unknown task '{name}'{did_you_mean(name, known)}") from None

    def load(self, name: str) -> Task:
        task = load_task(self.path_of(name), name)
        check_task(task)
        return task

    def resolve(self, requested: Iterable[str]) -> list[tuple[str, bool]]:
        """Expand names and groups, in order, without repeats.

        Returns ``(task name, explicitly named)``: tasks reached through a group may be
        skipped when their data is unavailable, explicitly named ones may not.
        """
        groups = self.groups()
        resolved: dict[str, bool] = {}
        for item in requested:
            item = item.strip().strip("/")
            if not item:
                continue
            if item in self._entries:
                resolved[item] = True
            elif item in groups:
                for name in groups[item]:
                    resolved.setdefault(name, False)
            else:
                self.path_of(item)  # raises with a suggestion
        if not resolved:
            raise UsageError("no tasks given")
        return list(resolved.items())


def validate_paths(paths: Sequence[str | Path]) -> list[tuple[Path, str | None]]:
    """Validate task files or folders of them; returns ``(file, error or None)`` per file."""
    results: list[tuple[Path, str | None]] = []
    seen: dict[str, Path] = {}
    for given in paths:
        root = Path(given)
        if root.is_dir():
            files = [(p, p.relative_to(root).with_suffix("").as_posix()) for p in sorted(root.rglob("*.yaml"))]
        elif root.is_file():
            files = [(root, root.stem)]
        else:
            results.append((root, f"{root}: no such file or directory"))
            continue
        for path, name in files:
            try:
                if name in seen and seen[name] != path:
                    raise SpecError(f"{path}: duplicate task name '{name}' (also {seen[name]})")
                seen[name] = path
                check_task(load_task(path, name))
                results.append((path, None))
            except EvalHarnessError as exc:
                results.append((path, str(exc)))
    return results
