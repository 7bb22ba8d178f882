"""Prompt rendering: Jinja2 in a bounded sandbox, strict about missing fields, seeded few-shot.

Templates come from task files, so they are rendered in ``sandbox.BoundedSandbox``: no Python
internals, no mutation of the example or the labels, nothing random, bounded in size, steps and
time, with ``StrictUndefined`` (a misspelt field is an error, never an empty string). The names a
template can use are the example's fields and ``TEMPLATE_GLOBALS``; ``tasks validate`` checks
templates against the same names. Few-shot demonstrations are drawn per example from a seeded
generator keyed by the example id, so the prompt of an example does not depend on batch
size, order, or which other examples are evaluated (``--limit``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from evalharness.errors import SpecError
from evalharness.prompting.chat import PromptParts
from evalharness.prompting.sandbox import render_bounded
from evalharness.spec.loader import Task
from evalharness.types import Example

__all__ = ["TEMPLATE_GLOBALS", "build_prompt", "prompt_parts", "render", "render_target", "select_demonstrations"]


# Names a template may use besides the example's canonical fields (and nothing else is given).
TEMPLATE_GLOBALS = ("labels",)


def render(template: str, example: Example, task: Task, *, where: str = "prompt.template") -> str:
    """Render ``template`` with the example's fields (plus ``labels``); any failure names the
    task file, the template field and the example."""
    context = {**example.fields, "labels": list(task.spec.labels or [])}
    try:
        return render_bounded(template, context)
    except Exception as exc:  # UndefinedError, SecurityError, RenderLimitError, TypeError from filters...
        raise SpecError(f"{task.where(*_location(where))}: cannot render for example {example.id}: {exc}") from None


def _location(where: str) -> tuple[str | int, ...]:
    """``prompt.choices[1]`` -> ``("prompt", "choices", 1)``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[.\[\]]+", where) if part)


def render_target(example: Example, task: Task) -> str:
    """The gold answer as a demonstration shows it (``prompt.target``)."""
    prompt = task.spec.prompt
    if prompt is None or prompt.target is None:
        raise SpecError(f"{task.path}: prompt.target is needed for few-shot demonstrations")
    return render(prompt.target, example, task, where="prompt.target")


def _example_seed(seed: int, example_id: str) -> list[int]:
    digest = hashlib.sha256(example_id.encode("utf-8")).digest()
    return [seed, int.from_bytes(digest[:8], "little")]


def select_demonstrations(pool: Sequence[Example], n: int, *, seed: int, example: Example) -> list[Example]:
    """``n`` demonstrations for ``example``, never the example itself, reproducibly."""
    if n == 0:
        return []
    candidates = [item for item in pool if item.id != example.id or item.fields != example.fields]
    if len(candidates) < n:
        raise SpecError(f"few-shot: asked for {n} demonstrations but the pool has {len(candidates)}")
    rng = np.random.default_rng(_example_seed(seed, example.id))
    chosen = rng.choice(len(candidates), size=n, replace=False)
    return [candidates[int(index)] for index in chosen]


def prompt_parts(task: Task, example: Example, demonstrations: Sequence[Example] = ()) -> PromptParts:
    """The example's rendered template and each demonstration's (template, target)."""
    prompt = task.spec.prompt
    if prompt is None:
        raise SpecError(f"{task.path}: the task has no 'prompt' for generative models")
    separator = prompt.few_shot.separator if prompt.few_shot else "\n\n"
    shots = tuple((render(prompt.template, demo, task), render_target(demo, task)) for demo in demonstrations)
    return PromptParts(shots, render(prompt.template, example, task), separator)


def build_prompt(task: Task, example: Example, demonstrations: Sequence[Example] = ()) -> str:
    """Demonstrations (template + target each), then the example's rendered template, as raw text."""
    return prompt_parts(task, example, demonstrations).raw()
