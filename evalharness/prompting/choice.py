"""Answering by comparing continuations' log-likelihoods (lm-evaluation-harness's
``multiple_choice`` output type).

The prompt is the context, each choice a continuation; the prediction is the choice with the
highest (optionally length-normalised) log-likelihood. Normalisations replicate
lm-evaluation-harness's metrics: ``none`` is ``acc``; ``char`` is ``acc_norm`` (divided by the
choice's length in characters; like lm-evaluation-harness, which counts the choice without
its target delimiter, leading whitespace is not counted); ``byte`` is the same in UTF-8
bytes; ``token`` divides by the continuation's token count. Ties go to the first choice.

:class:`ChoiceFormulation` holds the machinery; a subclass only says where the choices come
from and what a chosen index means. :class:`ChoiceLoglikelihood` renders ``prompt.choices``
(one Jinja2 template per label, in label order) for ``classification`` tasks; a
``multiple_choice`` kind (BBQ, WinoBias) would read its choices from the example's fields.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from evalharness.config import StrictModel
from evalharness.errors import ModelError, SpecError
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import LoadedModel
from evalharness.prompting.base import PROMPT_OPTIONS, Decoded, Formulation, FormulationOptions
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
from evalharness.prompting.templates import render
from evalharness.spec.loader import Task
from evalharness.types import (
    Example,
    LabelPrediction,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    Prediction,
    Request,
    RequestKind,
)

__all__ = ["ChoiceFormulation", "ChoiceLoglikelihood", "ChoiceSettings", "NORMALISERS", "pick_choice"]

Normalisation = Literal["none", "token", "char", "byte"]


def _text_length(text: str) -> int:
    return len(text.lstrip())


def _byte_length(text: str) -> int:
    return len(text.lstrip().encode("utf-8"))


# Normalisation -> the length a choice's log-likelihood is divided by.
NORMALISERS: dict[str, Callable[[LoglikelihoodResponse, str], float]] = {
    "none": lambda response, text: 1.0,
    "token": lambda response, text: float(response.n_tokens),
    "char": lambda response, text: float(_text_length(text)),
    "byte": lambda response, text: float(_byte_length(text)),
}


class ChoiceSettings(StrictModel):
    normalization: Normalisation = "none"


def pick_choice(loglikelihoods: Sequence[float], lengths: Sequence[float]) -> tuple[int, list[float]]:
    """Index of the best ``loglikelihood / length`` (first on ties) and all the scores."""
    scores = [value / length for value, length in zip(loglikelihoods, lengths, strict=True)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return best, scores


@dataclass(frozen=True)
class ChoiceState:
    settings: ChoiceSettings
    few_shot: FewShot | None
    prompt: PromptFormat
    notes: tuple[str, ...] = ()


ChoiceSettingsT = TypeVar("ChoiceSettingsT", bound=ChoiceSettings)


class ChoiceFormulation(Formulation[ChoiceSettingsT, ChoiceState, LoglikelihoodResponse]):
    """Shared machinery: one log-likelihood request per choice, arg-max decoding.

    In the chat format the context is the rendered chat (ending with the assistant turn's
    generation prompt) and each continuation is the choice without its target delimiter
    (:meth:`chat_choices`): lm-evaluation-harness's rule for ``--apply_chat_template``, which
    sets ``target_delimiter`` to ``""`` (task files here have no ``gen_prefix``).
    """

    request_kind = RequestKind.LOGLIKELIHOOD
    Settings = ChoiceSettings
    uses = PROMPT_OPTIONS

    @abstractmethod
    def choices(self, task: Task, example: Example) -> list[str]:
        """The continuations to compare, in order, as raw text follows the prompt."""

    def chat_choices(self, task: Task, example: Example) -> list[str]:
        """The continuations after a chat prompt: without the leading whitespace that
        separates them from a raw prompt (the target delimiter)."""
        return [text.lstrip() for text in self.choices(task, example)]

    @abstractmethod
    def answer(self, task: Task, example: Example, index: int) -> Prediction:
        """The prediction when choice ``index`` wins (per the task kind's contract)."""

    def prompt_format(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> tuple[PromptFormat, list[str]]:
        return prepare_prompt_format(adapter, options)

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> ChoiceState:
        fmt, notes = self.prompt_format(task, adapter, options)
        return ChoiceState(self.settings_for(task), prepare_few_shot(task, options), fmt, tuple(notes))

    def prompt_policy(self, task: Task, state: ChoiceState) -> PromptFormat:
        return state.prompt

    def settings(self, task: Task, state: ChoiceState) -> JSONObject:
        return {
            **state.settings.model_dump(mode="json"),
            "few_shot": few_shot_settings(task, state.few_shot),
            "prompt_format": prompt_format_settings(task, state.prompt, state.few_shot),
        }

    def observed(self, task: Task, state: ChoiceState, decoded: Sequence[Decoded]) -> tuple[JSONObject, list[str]]:
        return {}, list(state.notes)

    def _continuations(self, task: Task, example: Example, state: ChoiceState) -> list[str]:
        continuations = self.chat_choices(task, example) if state.prompt.chat else self.choices(task, example)
        for index, text in enumerate(continuations):
            if not text or (state.settings.normalization in ("char", "byte") and not text.strip()):
                raise SpecError(
                    f"{task.path}: choice {index} renders to {text!r} for example {example.id}; "
                    "every choice needs visible text to be scored"
                )
        return continuations

    def requests(self, task: Task, examples: Sequence[Example], state: ChoiceState) -> list[list[Request]]:
        prompts = build_prompts(task, examples, state.few_shot, state.prompt)
        return [
            [LoglikelihoodRequest(prompt, text) for text in self._continuations(task, example, state)]
            for prompt, example in zip(prompts, examples)
        ]

    def decode(
        self, task: Task, example: Example, responses: Sequence[LoglikelihoodResponse], state: ChoiceState
    ) -> Decoded:
        continuations = self._continuations(task, example, state)
        loglikelihoods = [response.logprob for response in responses]
        if not all(math.isfinite(value) for value in loglikelihoods):
            raise ModelError(f"{task.name}: example {example.id}: non-finite log-likelihoods {loglikelihoods}")
        normaliser = NORMALISERS[state.settings.normalization]
        lengths = [normaliser(response, text) for response, text in zip(responses, continuations)]
        best, scores = pick_choice(loglikelihoods, lengths)
        extra: JSONObject = {
            "choices": [*continuations],
            "loglikelihoods": [*loglikelihoods],
            "n_tokens": [response.n_tokens for response in responses],
            "is_greedy": [response.is_greedy for response in responses],
            **prompt_details(task, example, state.few_shot, state.prompt),
        }
        if state.settings.normalization != "none":
            extra["scores"] = [*scores]
        return Decoded(self.answer(task, example, best), prompt_for(task, example, state.few_shot, state.prompt), extra)


class ChoiceLoglikelihood(ChoiceFormulation[ChoiceSettings]):
    """Classification by prompting: ``prompt.choices[i]`` is the continuation of label ``i``."""

    name = "choice_loglikelihood"
    method = "log-likelihood of each of prompt.choices after the prompt, nothing generated, no label head"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is None and (task.spec.prompt is None or not task.spec.prompt.choices):
            return "the task has no prompt.choices (one continuation template per label) to compare"
        return reason

    def choices(self, task: Task, example: Example) -> list[str]:
        templates = task.spec.prompt.choices if task.spec.prompt else None
        return [
            render(template, example, task, where=f"prompt.choices[{index}]")
            for index, template in enumerate(templates or [])
        ]

    def answer(self, task: Task, example: Example, index: int) -> LabelPrediction:
        return LabelPrediction((task.spec.labels or [])[index])
