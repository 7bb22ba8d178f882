"""Answering by generating text from a prompt (lm-evaluation-harness's ``generate_until``).

The prompt is ``prompt.template`` (after few-shot demonstrations) in the run's prompt format;
generation stops at any of ``prompt.stop`` (the text is cut there), at EOS and, in the chat
format, at the template's end-of-turn token. ``--strip-thinking DELIMITER`` removes a
reasoning trace before the prediction is made (:func:`strip_reasoning`); the raw generation
stays in the samples' details. Decoding settings come from the task's
``generation:`` block, overridden per run (``--max-new-tokens``, ``--num-beams``) and
recorded. The generated text becomes the task kind's prediction: ``extractive_qa`` gets
``{'text': answer.strip(), 'no_answer_probability': None}`` (a prompted model gives no
no-answer score; an empty answer means "no answer"), ``generation`` the stripped text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evalharness.errors import UsageError
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import ChecksGeneration, LoadedModel, capability
from evalharness.prompting.base import (
    PROMPT_OPTIONS,
    Decoded,
    Formulation,
    FormulationOptions,
    NoSettings,
    RunOption,
    task_decoding,
)
from evalharness.prompting.chat import PromptFormat
from evalharness.prompting.prompted import (
    FewShot,
    build_prompts,
    few_shot_settings,
    prepare_few_shot,
    prepare_prompt_format,
    prompt_details,
    prompt_for,
    prompt_format_settings,
)
from evalharness.spec.loader import Task
from evalharness.types import (
    Decoding,
    Example,
    GenerateResponse,
    GenerationOptions,
    Prediction,
    Request,
    RequestKind,
    SpanPrediction,
    TextPrediction,
)

__all__ = ["PREDICTIONS", "PromptGenerate", "strip_reasoning"]


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
    generation: Decoding
    stop: tuple[str, ...]
    few_shot: FewShot | None
    prompt: PromptFormat
    strip_thinking: str | None = None
    notes: tuple[str, ...] = ()


THINKING_OUTCOMES = ("stripped", "unterminated", "no_trace")  # what --strip-thinking found in a generation


def strip_reasoning(text: str, delimiter: str) -> tuple[str, str, str]:
    """``(answer, reasoning, outcome)``: the text after the last ``delimiter`` (``stripped``);
    nothing when the opening tag (``<think>`` for ``</think>``) is there but the delimiter is
    not: the reasoning never ended, so there is no answer (``unterminated``); the text as it
    is when neither is there (``no_trace``)."""
    cut = text.rfind(delimiter)
    if cut >= 0:
        return text[cut + len(delimiter) :], text[: cut + len(delimiter)], "stripped"
    opening = "<" + delimiter[2:] if delimiter.startswith("</") else None
    if opening and opening in text:
        return "", text, "unterminated"
    return text, "", "no_trace"


def _check_delimiter(adapter: LoadedModel, delimiter: str) -> None:
    """A delimiter that decoding removes (a special token) can never be found in the text."""
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is None:
        return
    ids = tokenizer(delimiter, add_special_tokens=False)["input_ids"]
    if ids and tokenizer.decode(ids, skip_special_tokens=True).strip() != delimiter.strip():
        raise UsageError(
            f"--strip-thinking {delimiter!r}: the tokenizer treats it as a special token, which decoding removes from "
            "generated text, so it could never be found; reasoning traces cannot be stripped with it"
        )


class PromptGenerate(Formulation[NoSettings, GenerateState, GenerateResponse]):
    """Prompted generation for QA and text-to-text tasks (``generate`` requests)."""

    name = "prompt_generate"
    request_kind = RequestKind.GENERATE
    uses = PROMPT_OPTIONS | {RunOption.GENERATION, RunOption.STRIP_THINKING}
    method = "prompted generation, no label head"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is None and task.spec.prompt is None:
            return "the task has no prompt (prompt.template) to generate from"
        if reason is None and task.spec.kind not in PREDICTIONS:
            return f"generated text is not a '{task.spec.kind}' prediction"
        return reason

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> GenerateState:
        generation = task_decoding(task, options)
        try:
            capability(adapter, ChecksGeneration, self.name).check_generation(generation.max_new_tokens)
        except UsageError as exc:
            raise UsageError(f"{task.name}: {exc} (set generation.max_new_tokens, or --max-new-tokens)") from None
        if options.strip_thinking is not None:
            _check_delimiter(adapter, options.strip_thinking)
        fmt, notes = prepare_prompt_format(adapter, options)
        stop = fmt.stops(task.spec.prompt.stop if task.spec.prompt else ())
        return GenerateState(generation, stop, prepare_few_shot(task, options), fmt, options.strip_thinking, tuple(notes))

    def prompt_policy(self, task: Task, state: GenerateState) -> PromptFormat:
        return state.prompt

    def request_options(self, task: Task, state: GenerateState) -> GenerationOptions:
        return GenerationOptions(stop=state.stop, **state.generation.model_dump())

    def settings(self, task: Task, state: GenerateState) -> JSONObject:
        thinking = {"strip_thinking": state.strip_thinking} if state.strip_thinking is not None else {}
        return {
            "generation": {"decoding": "greedy" if state.generation.num_beams == 1 else "beam search", **state.generation.model_dump()},
            "stop": list(state.stop),
            "few_shot": few_shot_settings(task, state.few_shot),
            "prompt_format": prompt_format_settings(task, state.prompt, state.few_shot, **thinking),
        }

    def observed(self, task: Task, state: GenerateState, decoded: Sequence[Decoded]) -> tuple[JSONObject, list[str]]:
        notes = list(state.notes)
        if state.strip_thinking is None:
            return {}, notes
        outcomes = Counter(item.extra["thinking"] for item in decoded)
        if outcomes["unterminated"]:
            notes.append(
                f"--strip-thinking {state.strip_thinking!r}: {outcomes['unterminated']} generation(s) opened a reasoning "
                "trace and never closed it; they are scored as no answer (raise --max-new-tokens?)"
            )
        return {"thinking_outcomes": {name: outcomes[name] for name in THINKING_OUTCOMES}}, notes

    def requests(self, task: Task, examples: Sequence[Example], state: GenerateState) -> list[list[Request]]:
        return [[prompt] for prompt in build_prompts(task, examples, state.few_shot, state.prompt)]

    def decode(self, task: Task, example: Example, responses: Sequence[GenerateResponse], state: GenerateState) -> Decoded:
        (response,) = responses
        text = response.text
        extra: JSONObject = {"generated": text, "n_tokens": response.n_tokens}
        if state.strip_thinking is not None:
            text, _, outcome = strip_reasoning(text, state.strip_thinking)
            extra["thinking"] = outcome
        prediction = PREDICTIONS[task.spec.kind](text)
        extra.update(prompt_details(task, example, state.few_shot, state.prompt))
        return Decoded(prediction, prompt_for(task, example, state.few_shot, state.prompt), extra)
