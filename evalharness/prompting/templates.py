"""Prompt rendering: Jinja2 in a sandbox, strict about missing fields, seeded few-shot.

Templates come from task files, so they are rendered in Jinja2's ``SandboxedEnvironment``
(no attribute access to Python internals) with ``StrictUndefined`` (a misspelt field is an
error, never an empty string). Few-shot demonstrations are drawn per example from a seeded
generator keyed by the example id, so the prompt of an example does not depend on batch
size, order, or which other examples are evaluated (``--limit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from evalharness.errors import SpecError
from evalharness.spec.loader import Task
from evalharness.types import Example

__all__ = ["build_prompt", "render", "render_target", "select_demonstrations"]


@lru_cache(maxsize=256)
def _compile(template: str) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return environment.from_string(template)


def render(template: str, example: Example, task: Task, *, where: str = "prompt.template") -> str:
    """Render ``template`` with the example's fields (plus ``labels``)."""
    context = {**example.fields, "labels": task.spec.labels or []}
    try:
        return _compile(template).render(context)
    except Exception as exc:  # UndefinedError, SecurityError, TypeError from filters...
        raise SpecError(f"{task.path}: {where}: cannot render for example {example.id}: {exc}") from None


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


def build_prompt(task: Task, example: Example, demonstrations: Sequence[Example] = ()) -> str:
    """Demonstrations (template + target each), then the example's rendered template."""
    prompt = task.spec.prompt
    if prompt is None:
        raise SpecError(f"{task.path}: the task has no 'prompt' for generative models")
    separator = prompt.few_shot.separator if prompt.few_shot else "\n\n"
    shots = [render(prompt.template, demo, task) + render_target(demo, task) for demo in demonstrations]
    return separator.join([*shots, render(prompt.template, example, task)])
