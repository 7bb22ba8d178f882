"""Answering by generating text from a prompt (lm-evaluation-harness's ``generate_until``).

The prompt is ``prompt.template`` (after few-shot demonstrations); generation stops at any
of ``prompt.stop`` (the text is cut there) or EOS. Decoding settings come from the task's
``generation:`` block, overridden per run (``--max-new-tokens``, ``--num-beams``) and
recorded. The generated text becomes the task kind's prediction: ``extractive_qa`` gets
``{'text': answer.strip(), 'no_answer_probability': None}`` (a prompted model gives no
no-answer score; an empty answer means "no answer"), ``generation`` the stripped text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalharness.config import validate_model
from evalharness.errors import UsageError
from evalharness.prompting.base import (
    Decoded,
    Formulation,
    FormulationOptions,
    NoSettings,
    RunOption,
)
from evalharness.prompting.prompted import (
    FewShot,
    build_prompts,
    few_shot_settings,
    prepare_few_shot,
    prompt_for,
)
from evalharness.spec.loader import Task
from evalharness.spec.schema import GenerationSpec
from evalharness.types import (
    Example,
    GenerateResponse,
    GenerationOptions,
    Prediction,
    RequestKind,
    SpanPrediction,
    TextPrediction,
)

__all__ = ["PREDICTIONS", "PromptGenerate"]


def _span_answer(text: str) -> SpanPrediction:
    return SpanPrediction(text.strip())


def _generated_text(text: str) -> TextPrediction:
    return TextPrediction(text.strip())


# Task kind -> the prediction made of the generated text (the kind's contract).
PREDICTIONS: dict[str, Callable[[str], Prediction]] = {
    "extractive_qa": _span_answer,
    "generation": _generated_text,
}


@dataclass(frozen=True)
class GenerateState:
    generation: GenerationSpec
    stop: tuple[str, ...]
    few_shot: FewShot | None


class PromptGenerate(Formulation[NoSettings]):
    """Prompted generation for QA and text-to-text tasks (``generate`` requests)."""

    name = "prompt_generate"
    request_kind = RequestKind.GENERATE
    uses = frozenset({RunOption.NUM_FEWSHOT, RunOption.GENERATION})
    method = "prompted generation, no label head"

    def unsupported_reason(self, task: Task, adapter: Any) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is None and task.spec.prompt is None:
            return "the task has no prompt (prompt.template) to generate from"
        if reason is None and task.spec.kind not in PREDICTIONS:
            return f"generated text is not a '{task.spec.kind}' prediction"
        return reason

    def prepare(self, task: Task, adapter: Any, options: FormulationOptions) -> GenerateState:
        base = task.spec.generation.model_dump() if task.spec.generation else {}
        generation = validate_model(
            GenerationSpec,
            {**base, **dict(options.generation)},
            f"{task.path}: generation (task settings with this run's overrides)",
        )
        try:
            adapter.check_generation(generation.max_new_tokens)
        except UsageError as exc:
            raise UsageError(f"{task.name}: {exc} (set generation.max_new_tokens, or --max-new-tokens)") from None
        stop = tuple(task.spec.prompt.stop) if task.spec.prompt else ()
        return GenerateState(generation, stop, prepare_few_shot(task, options))

    def request_options(self, task: Task, state: GenerateState) -> GenerationOptions:
        return GenerationOptions(stop=state.stop, **state.generation.model_dump())

    def settings(self, task: Task, state: GenerateState) -> dict[str, Any]:
        return {
            "generation": {"decoding": "greedy" if state.generation.num_beams == 1 else "beam search", **state.generation.model_dump()},
            "stop": list(state.stop),
            "few_shot": few_shot_settings(task, state.few_shot),
        }

    def requests(self, task: Task, examples: Sequence[Example], state: GenerateState) -> list[list[Any]]:
        return [[prompt] for prompt in build_prompts(task, examples, state.few_shot)]

    def decode(self, task: Task, example: Example, responses: Sequence[GenerateResponse], state: GenerateState) -> Decoded:
        (response,) = responses
        prediction = PREDICTIONS[task.spec.kind](response.text)
        extra = {"generated": response.text, "n_tokens": response.n_tokens}
        return Decoded(prediction, prompt_for(task, example, state.few_shot), extra)
