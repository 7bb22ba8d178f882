"""Every static check of a task, in one function that ``tasks validate`` and ``run`` both call.

The schema (``spec.schema``) checks each field on its own; ``check_task`` checks what a task
*means* against the registries and against itself, before any data is read: reader names and
options, column maps, label maps, metric names and settings, formulation names and settings,
generation settings, few-shot settings, every Jinja2 template (compiled in the sandbox that
renders it, and read only names an example of the kind has), and counterfactual swap groups.
``run`` calls it through ``TaskCatalog.load``, so what validates is what runs. Settings that
the task's kind would silently ignore (label maps without a label field, a column map for a
field the kind lacks, formulation settings for a formulation that never answers the kind,
generation settings for a kind that never generates, per-label prompt choices without labels)
are errors, not no-ops. Messages start with ``file:line: field``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from evalharness.config import validate_model
from evalharness.errors import SpecError, did_you_mean
from evalharness.spec.kinds import TASK_KINDS
from evalharness.spec.loader import Task
from evalharness.spec.schema import TEMPLATE, DataSource, label_key

if TYPE_CHECKING:
    from evalharness.metrics.base import Metric
    from evalharness.types import RequestKind

__all__ = ["check_task", "template_fields"]

Location = tuple[str | int, ...]


class _Serving(Protocol):
    """What the checks read of a formulation that can serve a task kind."""

    @property
    def name(self) -> str: ...

    @property
    def request_kind(self) -> RequestKind: ...


def template_fields(template: str) -> set[str]:
    """Variables a Jinja2 template reads (parsed, never executed)."""
    from jinja2 import meta

    from evalharness.prompting.sandbox import parse_template

    try:
        return set(meta.find_undeclared_variables(parse_template(template)))
    except Exception as exc:  # jinja2.TemplateSyntaxError and friends
        raise SpecError(f"invalid template: {exc}") from None


def _sources(task: Task) -> Iterator[tuple[Location, DataSource]]:
    yield ("data",), task.spec.data
    few_shot = task.spec.prompt.few_shot if task.spec.prompt else None
    if few_shot is not None and few_shot.data is not None:
        yield ("prompt", "few_shot", "data"), few_shot.data


def _check_columns(task: Task, columns: dict[str, str], loc: Location) -> None:
    known = [*TASK_KINDS[task.spec.kind].fields, "id"]
    for field in columns:
        if field not in known:
            raise SpecError(
                f"{task.where(*loc, field)}: '{field}' is not a field of a '{task.spec.kind}' example"
                f"{did_you_mean(field, known)} (fields: {', '.join(known)}); the column would be ignored"
            )


def _check_label_values(task: Task, source: DataSource, loc: Location) -> None:
    mapping = source.label_values
    if mapping is None:
        return
    kind = task.spec.kind
    if "label" not in TASK_KINDS[kind].fields.values():
        raise SpecError(f"{task.where(*loc, 'label_values')}: a '{kind}' task has no label field; remove label_values")
    labels = task.spec.labels or []
    by_key = {label_key(label): label for label in labels}
    for raw, label in mapping.items():
        where = task.where(*loc, "label_values", raw)
        if label not in labels:
            raise SpecError(f"{where}: '{label}' is not one of the task's labels {labels}{did_you_mean(label, labels)}")
        named = by_key.get(label_key(raw))
        if named is not None and named != label:
            raise SpecError(
                f"{where}: raw value '{raw}' is the label name '{named}' but is mapped to '{label}'; "
                "a raw value that names a label must mean that label"
            )


def _check_sources(task: Task) -> None:
    from evalharness.data.loader import check_local_source

    for loc, source in _sources(task):
        if source.local is not None:
            check_local_source(task, source.local, (*loc, "local"))
            _check_columns(task, source.local.columns, (*loc, "local", "columns"))
        if source.hub is not None:
            _check_columns(task, source.hub.columns, (*loc, "hub", "columns"))
        _check_label_values(task, source, loc)


def _check_metrics(task: Task) -> None:
    from evalharness.metrics.registry import METRICS, metric_class

    for index, metric in enumerate(task.spec.metrics):
        if metric.name not in METRICS:
            raise SpecError(
                f"{task.where('metrics', index, 'name')}: unknown metric '{metric.name}'"
                f"{did_you_mean(metric.name, METRICS)}"
            )
        cls = metric_class(metric.name)
        settings = validate_model(
            cls.Settings, metric.settings, str(task.path), prefix=("metrics", index, "settings"), lines=task.lines
        )
        problem = _prediction_problem(task, cls) or cls.spec_problem(settings, task.spec)
        if problem is not None:
            raise SpecError(f"{task.where('metrics', index)}: {problem}")


def _prediction_problem(task: Task, metric: type[Metric]) -> str | None:
    """Why ``metric`` cannot score the predictions a task of this kind produces (None: it can),
    decided from the types alone (``spec.predictions``, ``Metric.accepts``)."""
    from evalharness.spec.predictions import CONTRACTS, prediction_type
    from evalharness.types import CounterfactualPrediction

    kind = task.spec.kind
    produced = prediction_type(kind, counterfactual=task.spec.counterfactual is not None)
    if issubclass(produced, metric.accepts):
        return None
    hint = metric.kind_hints.get(kind)
    if hint is None and task.spec.counterfactual is not None:
        return (
            f"'{metric.name}' cannot score a counterfactual probe: it scores {', '.join(t.__name__ for t in metric.accepts)}, a probe's "
            "predictions are CounterfactualPrediction (original and perturbed answers); use flip_rate or counterfactual_score_change"
        )
    if hint is None:
        kinds = [f"'{name}'" for name, contract in CONTRACTS.items() if issubclass(contract.type, metric.accepts)]
        if CounterfactualPrediction in metric.accepts:
            kinds.append("counterfactual probe (a task with a counterfactual: section)")
        accepted = ", ".join(kind_type.__name__ for kind_type in metric.accepts)
        article = "an" if kinds and kinds[0][1] in "aeiou" else "a"
        hint = f"it scores {accepted} and needs {article} {' or '.join(kinds)} task; this task's predictions are {produced.__name__}"
    return f"'{metric.name}' cannot score a '{kind}' task: {hint}"


def _formulations(task: Task) -> Sequence[_Serving]:
    from evalharness.prompting import FORMULATIONS

    return FORMULATIONS.get(task.spec.kind, [])


def _check_formulations(task: Task) -> None:
    from evalharness.prompting import formulation_by_name

    known = formulation_by_name()
    serving = {formulation.name for formulation in _formulations(task)}
    for name, settings in task.spec.formulations.items():
        where = task.where("formulations", name)
        if name not in known:
            raise SpecError(
                f"{where}: unknown formulation{did_you_mean(name, known)} (known: {', '.join(sorted(known))})"
            )
        if name not in serving:
            raise SpecError(
                f"{where}: '{name}' never answers a '{task.spec.kind}' task, so these settings would be ignored "
                f"(formulations of this kind: {', '.join(sorted(serving)) or 'none'})"
            )
        validate_model(known[name].Settings, settings, str(task.path), prefix=("formulations", name), lines=task.lines)


def _check_generation(task: Task) -> None:
    from evalharness.types import RequestKind

    if task.spec.generation is None:
        return
    if not any(formulation.request_kind is RequestKind.GENERATE for formulation in _formulations(task)):
        raise SpecError(
            f"{task.where('generation')}: a '{task.spec.kind}' task never generates text, so these settings "
            "would be ignored; remove the section"
        )


def _check_prompt(task: Task) -> None:
    prompt = task.spec.prompt
    if prompt is None:
        return
    if prompt.choices is not None and not TASK_KINDS[task.spec.kind].needs_labels:
        raise SpecError(
            f"{task.where('prompt', 'choices')}: one continuation per label, but a '{task.spec.kind}' task has no "
            "labels (its choices, if any, come from each example); remove it"
        )
    if prompt.few_shot is not None and prompt.few_shot.n > 0 and prompt.target is None:
        raise SpecError(
            f"{task.where('prompt', 'few_shot', 'n')}: {prompt.few_shot.n} demonstrations need prompt.target "
            "(the answer each demonstration shows)"
        )


def _templates(model: BaseModel | None, loc: Location) -> Iterator[tuple[Location, str]]:
    """Every field marked as a template (``Annotated[..., TEMPLATE]``), recursively."""
    if model is None:
        return
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if TEMPLATE in info.metadata and isinstance(value, str):
            yield (*loc, name), value
        elif TEMPLATE in info.metadata and isinstance(value, list):
            yield from (((*loc, name, index), item) for index, item in enumerate(value))
        elif isinstance(value, BaseModel):
            yield from _templates(value, (*loc, name))


def _all_templates(task: Task) -> Iterator[tuple[Location, str]]:
    from evalharness.prompting import formulation_by_name

    yield from _templates(task.spec.prompt, ("prompt",))
    known = formulation_by_name()
    for name, settings in task.spec.formulations.items():
        yield from _templates(known[name].Settings.model_validate(settings), ("formulations", name))


def _check_templates(task: Task) -> None:
    from evalharness.prompting.sandbox import (
        compile_template,
        parse_template,
        refused_attributes,
    )
    from evalharness.prompting.templates import TEMPLATE_GLOBALS

    known = set(TASK_KINDS[task.spec.kind].fields) | set(TEMPLATE_GLOBALS)
    for loc, template in _all_templates(task):
        where = task.where(*loc)
        try:
            used = template_fields(template)
            compile_template(template)
        except Exception as exc:  # a syntax error, or a template the sandbox cannot compile
            raise SpecError(f"{where}: {str(exc).removeprefix('invalid template: ')}") from None
        refused = refused_attributes(parse_template(template))
        if refused:
            raise SpecError(
                f"{where}: template uses {refused}, which rendering refuses: a template may not change the "
                "labels or the example it is given, nor reach Python internals"
            )
        unknown = sorted(used - known)
        if unknown:
            raise SpecError(
                f"{where}: template uses {unknown}, which a '{task.spec.kind}' "
                f"example does not have{did_you_mean(unknown[0], known)} "
                f"(available: {', '.join(sorted(known))})"
            )


def _check_counterfactual(task: Task) -> None:
    from evalharness.prompting.counterfactual import load_swapper

    if task.spec.counterfactual is not None:
        load_swapper(task)  # the groups file exists, parses, and the swap lists are consistent


_CHECKS: tuple[Callable[[Task], None], ...] = (
    _check_sources,
    _check_metrics,
    _check_formulations,
    _check_generation,
    _check_prompt,
    _check_templates,
    _check_counterfactual,
)


def check_task(task: Task, *, known_tasks: Collection[str] | None = None) -> None:
    """Every static check ``run`` relies on; ``known_tasks`` (the catalog's names) also checks
    ``counterfactual.base_task``."""
    for check in _CHECKS:
        check(task)
    base = task.spec.counterfactual.base_task if task.spec.counterfactual else None
    if known_tasks is not None and base is not None and base not in known_tasks:
        raise SpecError(
            f"{task.where('counterfactual', 'base_task')}: unknown task '{base}'{did_you_mean(base, known_tasks)}"
        )
