"""Prompts for language models: the task's template, after optional few-shot demonstrations,
in the run's prompt format (raw text or the tokenizer's chat template, ``prompting.chat``).

Shared by the prompted formulations (choice log-likelihood, prompted generation). The pool
of demonstrations is ``prompt.few_shot.data`` or, without it, the task's whole evaluation
split (never the example itself); it is loaded in full, so ``--limit`` does not change
anyone's prompt. Demonstrations are drawn per example by ``templates.select_demonstrations``
(seeded by the example id), so prompts do not depend on batch size or order either. The
seed is ``prompt.few_shot.seed`` when the task file sets it (prompts then belong to the
task's version), otherwise the run's ``--seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalharness.errors import DataError, SpecError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.protocols import LoadedModel
from evalharness.prompting.base import FormulationOptions
from evalharness.prompting.chat import PromptFormat, PromptParts, resolve_prompt_format
from evalharness.prompting.templates import prompt_parts as template_parts
from evalharness.prompting.templates import select_demonstrations
from evalharness.spec.loader import Task
from evalharness.types import Example

__all__ = [
    "FewShot",
    "build_prompts",
    "few_shot_settings",
    "prepare_few_shot",
    "prepare_prompt_format",
    "prompt_details",
    "prompt_format_settings",
    "prompt_for",
    "prompt_parts",
]


@dataclass(frozen=True)
class FewShot:
    """The resolved few-shot set-up of one task in one run."""

    n: int
    seed: int
    pool: tuple[Example, ...]
    location: str
    fingerprint: str


def prepare_few_shot(task: Task, options: FormulationOptions) -> FewShot | None:
    """Load the demonstration pool when the task (or ``--num-fewshot``) asks for shots."""
    from evalharness.data.loader import load_examples

    prompt = task.spec.prompt
    spec = prompt.few_shot if prompt else None
    n = options.num_fewshot if options.num_fewshot is not None else (spec.n if spec else 0)
    if n == 0 or prompt is None:
        return None
    if prompt.target is None:
        raise SpecError(f"{task.path}: prompt.target is needed to show the answers of {n} few-shot demonstrations")
    source = spec.data if spec else None
    where = "prompt.few_shot.data" if source is not None else "data"
    try:
        loaded = load_examples(task, options.data_dir, source=source, where=where)
    except DataError as exc:
        raise DataError(f"few-shot pool ({where}) of {task.name}: {exc}") from None
    needed = n + 1 if source is None else n  # an example is never its own demonstration
    if len(loaded.examples) < needed:
        raise SpecError(
            f"{task.path}: {n} few-shot demonstrations asked for, but the pool ({where}: "
            f"{loaded.location}) has only {len(loaded.examples)} examples"
        )
    seed = spec.seed if spec is not None and "seed" in spec.model_fields_set else options.seed
    return FewShot(n, seed, tuple(loaded.examples), loaded.location, loaded.fingerprint)


def prompt_parts(task: Task, example: Example, few_shot: FewShot | None) -> PromptParts:
    """The example's rendered template and its demonstrations (template and target each)."""
    demonstrations = (
        select_demonstrations(few_shot.pool, few_shot.n, seed=few_shot.seed, example=example) if few_shot is not None else []
    )
    return template_parts(task, example, demonstrations)


def prompt_for(task: Task, example: Example, few_shot: FewShot | None, fmt: PromptFormat | None = None) -> str:
    """The full prompt of one example (demonstrations, then its rendered template), in the
    run's prompt format (raw text without one)."""
    parts = prompt_parts(task, example, few_shot)
    return parts.raw() if fmt is None else fmt.render(parts)


def build_prompts(task: Task, examples: Sequence[Example], few_shot: FewShot | None, fmt: PromptFormat | None = None) -> list[str]:
    return [prompt_for(task, example, few_shot, fmt) for example in examples]


def prompt_details(task: Task, example: Example, few_shot: FewShot | None, fmt: PromptFormat) -> JSONObject:
    """What a samples row keeps besides the prompt: the chat turns it was rendered from."""
    return {"messages": [dict(turn) for turn in fmt.messages(prompt_parts(task, example, few_shot))]} if fmt.chat else {}


def prepare_prompt_format(adapter: LoadedModel, options: FormulationOptions) -> tuple[PromptFormat, list[str]]:
    """The run's prompt format for this task and the notes about options it did not apply."""
    fmt = resolve_prompt_format(
        adapter, requested=options.prompt_format, system_prompt=options.system_prompt,
        fewshot_as_multiturn=options.fewshot_as_multiturn,
    )
    notes = []
    if options.fewshot_as_multiturn and not fmt.chat:
        notes.append(f"--fewshot-as-multiturn not applied: the prompt format is raw ({fmt.reason})")
    return fmt, notes


def prompt_format_settings(task: Task, fmt: PromptFormat, few_shot: FewShot | None, **extra: JsonValue) -> JSONObject:
    """The task record's ``prompt_format`` entry (see ``PromptFormat.recorded``)."""
    return fmt.recorded(shots=few_shot.n if few_shot else 0, extra=extra or None)


def few_shot_settings(task: Task, few_shot: FewShot | None) -> JSONObject | None:
    """What the run record keeps about the demonstrations (None: zero-shot)."""
    if few_shot is None:
        return None
    spec = task.spec.prompt.few_shot if task.spec.prompt else None
    return {
        "n": few_shot.n,
        "seed": few_shot.seed,
        "separator": spec.separator if spec else "\n\n",
        "pool": few_shot.location,
        "pool_size": len(few_shot.pool),
        "pool_fingerprint": few_shot.fingerprint,
    }
