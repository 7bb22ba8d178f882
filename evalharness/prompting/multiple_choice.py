"""``multiple_choice`` tasks (BBQ, WinoBias): the choices are a field of each example.

- Causal LMs (:class:`FieldChoiceLoglikelihood`): lm-evaluation-harness's ``multiple_choice``
  output type: the prompt (``prompt.template``, possibly empty) is the context, each choice
  (after ``choice_prefix``, a space by default) a continuation; the highest (optionally
  normalised) log-likelihood wins. With an empty template each choice is a whole sentence
  scored given BOS (WinoBias: the sentence with the pronoun resolved to each candidate).
  In the chat format the prompt is a user turn and each choice follows the assistant turn's
  generation prompt without ``choice_prefix``; an empty template stays raw (no turn to write).
- Masked LMs (:class:`MaskedChoice`): the pseudo-log-likelihood of the choice's tokens
  inside ``prompt + prefix + choice`` (every token when the prompt is empty), each masked in
  turn; ``normalization: token`` divides by the number of scored tokens.

The prediction is the chosen index (the kind's contract); the reference's ``label`` is gold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evalharness.config import StrictModel
from evalharness.errors import DataError, ModelError, SpecError
from evalharness.jsonvalues import JSONObject, JsonValue, expect_array, expect_str
from evalharness.models.protocols import LoadedModel, MaskedPositions, capability
from evalharness.prompting.base import Decoded, Formulation, FormulationOptions
from evalharness.prompting.chat import PromptFormat
from evalharness.prompting.choice import ChoiceFormulation, ChoiceSettings, pick_choice
from evalharness.prompting.templates import render
from evalharness.spec.loader import Task
from evalharness.types import (
    ChoicePrediction,
    Example,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResponse,
    Request,
    RequestKind,
)

__all__ = ["FieldChoiceLoglikelihood", "MaskedChoice"]


class FieldChoiceSettings(ChoiceSettings):
    choice_prefix: str = " "


def _choices(task: Task, example: Example) -> list[str]:
    where = f"{task.name}: example {example.id}: field 'choices'"
    items = expect_array(example["choices"], where, error=DataError)  # the data layer made it a text list
    choices = [expect_str(item, f"{where}[{index}]", error=DataError) for index, item in enumerate(items)]
    if len(choices) < 2:
        raise SpecError(f"{task.name}: example {example.id}: 'choices' has {len(choices)} entries; need at least 2")
    return choices


def _needs_prompt(task: Task) -> str | None:
    if task.spec.prompt is None:
        return "the task has no prompt (prompt.template; '' scores each choice on its own)"
    return None


def _template(task: Task) -> str:
    """The prompt template (``unsupported_reason`` refuses a task without a prompt)."""
    assert task.spec.prompt is not None
    return task.spec.prompt.template


class FieldChoiceLoglikelihood(ChoiceFormulation[FieldChoiceSettings]):
    """Log-likelihood of each choice of the example after the rendered prompt."""

    name = "field_choice_loglikelihood"
    Settings = FieldChoiceSettings
    method = "log-likelihood of each of the example's choices after the prompt, nothing generated, no label head"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        return super().unsupported_reason(task, adapter) or _needs_prompt(task)

    def choices(self, task: Task, example: Example) -> list[str]:
        prefix = self.settings_for(task).choice_prefix
        return [prefix + choice for choice in _choices(task, example)]

    def chat_choices(self, task: Task, example: Example) -> list[str]:
        """After a chat prompt the choice follows the generation prompt without ``choice_prefix``
        (the target delimiter; lm-evaluation-harness's ``--apply_chat_template`` rule)."""
        return _choices(task, example)

    def prompt_format(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> tuple[PromptFormat, list[str]]:
        """An empty template scores each choice as a whole sentence: there is no prompt to put in a turn."""
        if task.spec.prompt is not None and not task.spec.prompt.template.strip():
            reason = "the task's prompt is empty: each choice is scored as a whole sentence, with no turn to put it in"
            notes = [f"--prompt-format {options.prompt_format} not applied: {reason}"] if options.prompt_format == "chat" else []
            notes += [f"--system-prompt not applied: {reason}"] if options.system_prompt is not None else []
            return PromptFormat("raw", reason, options.prompt_format or "auto"), notes
        return super().prompt_format(task, adapter, options)

    def answer(self, task: Task, example: Example, index: int) -> ChoicePrediction:
        return ChoicePrediction(index)


class MaskedChoiceSettings(StrictModel):
    choice_prefix: str = " "
    normalization: Literal["none", "token"] = "none"


@dataclass(frozen=True)
class _MaskedState:
    adapter: MaskedPositions
    settings: MaskedChoiceSettings


class MaskedChoice(Formulation[MaskedChoiceSettings, _MaskedState, PseudoLoglikelihoodResponse]):
    """Pseudo-log-likelihood of each choice's tokens in context; the highest wins."""

    name = "masked_choice"
    request_kind = RequestKind.PSEUDO_LOGLIKELIHOOD
    Settings = MaskedChoiceSettings
    method = "masked-LM pseudo-log-likelihood of each choice, no few-shot prompt, nothing generated, no label head"

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        return super().unsupported_reason(task, adapter) or _needs_prompt(task)

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> _MaskedState:
        return _MaskedState(capability(adapter, MaskedPositions, self.name), self.settings_for(task))

    def settings(self, task: Task, state: _MaskedState) -> JSONObject:
        return {**state.settings.model_dump(mode="json"), "score": "pseudo-log-likelihood of the choice's tokens (Salazar et al. 2020)"}

    def _texts(self, task: Task, example: Example, state: _MaskedState) -> list[tuple[str, int]]:
        prompt = render(_template(task), example, task)
        return [(prompt + state.settings.choice_prefix + choice, len(prompt)) for choice in _choices(task, example)]

    def requests(self, task: Task, examples: Sequence[Example], state: _MaskedState) -> list[list[Request]]:
        requests: list[list[Request]] = []
        for example in examples:
            row: list[Request] = []
            for text, start in self._texts(task, example, state):
                positions = None if start == 0 else state.adapter.token_positions(text, [(start, len(text))])
                row.append(PseudoLoglikelihoodRequest(text, positions))
            requests.append(row)
        return requests

    def decode(self, task: Task, example: Example, responses: Sequence[PseudoLoglikelihoodResponse], state: _MaskedState) -> Decoded:
        values = [response.logprob for response in responses]
        if not all(math.isfinite(value) for value in values):
            raise ModelError(f"{task.name}: example {example.id}: non-finite pseudo-log-likelihoods {values}")
        token = state.settings.normalization == "token"
        lengths = [float(max(response.n_tokens, 1)) if token else 1.0 for response in responses]
        best, scores = pick_choice(values, lengths)
        shown = render(_template(task), example, task)
        choices: list[JsonValue] = [*_choices(task, example)]
        extra: JSONObject = {"choices": choices, "pseudo_loglikelihoods": [*values], "n_tokens": [r.n_tokens for r in responses]}
        if token:
            extra["scores"] = [*scores]
        return Decoded(ChoicePrediction(best), shown or choices, extra)
