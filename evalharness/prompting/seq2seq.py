"""Encoder-decoder checkpoints generate answers: translation, summarization, T5-style QA.

The encoder input is the example's ``source`` field, or the formulation's own ``template``
(the task's ``prompt.template`` is written for causal LMs and is not used). A task prefix is
prepended only when the checkpoint's ``config.model_type`` has one under ``prefixes``: T5 was
trained with "translate German to English: ", Marian and BART were not. Decoding settings come
from the task's ``generation:`` section, overridden per run (``FormulationOptions.generation``),
and the effective configuration is written to the run record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from evalharness.config import StrictModel
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import DecodesSequences, LoadedModel, capability
from evalharness.prompting.base import (
    Decoded,
    Formulation,
    FormulationOptions,
    RunOption,
    task_decoding,
    text_field,
)
from evalharness.prompting.templates import render
from evalharness.spec.kinds import TASK_KINDS
from evalharness.spec.loader import Task
from evalharness.spec.schema import TEMPLATE
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

__all__ = ["Seq2SeqGenerate", "Seq2SeqSettings"]


class Seq2SeqSettings(StrictModel):
    """``formulations: {seq2seq_generate: {...}}``."""

    template: Annotated[str | None, TEMPLATE] = Field(
        default=None, description="Jinja2 template for the encoder input (default: the 'source' field)"
    )
    prefixes: dict[str, str] = Field(
        default_factory=dict,
        description="config.model_type -> text put before the input, e.g. {t5: 'translate German to English: '}",
    )
    no_answer_text: str | None = Field(
        default=None, description="extractive_qa: a generated answer equal to this (any case) means no answer"
    )


@dataclass(frozen=True)
class _State:
    settings: Seq2SeqSettings
    prefix: str
    decoding: Decoding
    recorded: JSONObject


def _generated_text(settings: Seq2SeqSettings, text: str) -> Prediction:
    return TextPrediction(text.strip())


def _qa_answer(settings: Seq2SeqSettings, text: str) -> Prediction:
    text = text.strip()
    abstains = settings.no_answer_text is not None and text.casefold() == settings.no_answer_text.casefold()
    return SpanPrediction("" if abstains else text)


# Task kind -> how the generated text becomes that kind's prediction (spec/kinds.py).
PREDICTIONS: dict[str, Callable[[Seq2SeqSettings, str], Prediction]] = {
    "generation": _generated_text,
    "extractive_qa": _qa_answer,
}


class Seq2SeqGenerate(Formulation[Seq2SeqSettings, _State, GenerateResponse]):
    """Generated text from an encoder-decoder model, as the task kind's prediction."""

    name = "seq2seq_generate"
    request_kind = RequestKind.GENERATE
    uses = frozenset({RunOption.GENERATION})
    method = "encoder-decoder generation from the source text, no few-shot prompt, no label head"
    Settings = Seq2SeqSettings

    def unsupported_reason(self, task: Task, adapter: LoadedModel) -> str | None:
        reason = super().unsupported_reason(task, adapter)
        if reason is None and adapter.kind != "seq2seq":
            return f"needs an encoder-decoder (seq2seq) checkpoint, not a {adapter.kind} one"
        if reason is None and task.spec.kind not in PREDICTIONS:
            return f"cannot answer '{task.spec.kind}' tasks"
        if reason is None and self.settings_for(task).template is None and "source" not in TASK_KINDS[task.spec.kind].fields:
            return (
                f"a '{task.spec.kind}' task needs formulations.seq2seq_generate.template, e.g. "
                "'question: {{ question }} context: {{ context }}'"
            )
        return reason

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> _State:
        settings: Seq2SeqSettings = self.settings_for(task)
        decoding = task_decoding(task, options)
        model = capability(adapter, DecodesSequences, self.name)
        prefix = settings.prefixes.get(model.model_type, "")
        recorded: JSONObject = {
            "model_type": model.model_type,
            "prefix": prefix,
            "template": settings.template or "{{ source }}",
            "generation": model.generation_settings(decoding),
        }
        if settings.no_answer_text is not None:
            recorded["no_answer_text"] = settings.no_answer_text
        return _State(settings, prefix, decoding, recorded)

    def request_options(self, task: Task, state: _State) -> GenerationOptions:
        return GenerationOptions(**state.decoding.model_dump())

    def settings(self, task: Task, state: _State) -> JSONObject:
        return dict(state.recorded)

    def requests(self, task: Task, examples: Sequence[Example], state: _State) -> list[list[Request]]:
        return [[_encoder_input(task, example, state)] for example in examples]

    def decode(self, task: Task, example: Example, responses: Sequence[GenerateResponse], state: _State) -> Decoded:
        (response,) = responses
        prediction = PREDICTIONS[task.spec.kind](state.settings, response.text)
        return Decoded(prediction, _encoder_input(task, example, state), {"n_tokens": response.n_tokens})


def _encoder_input(task: Task, example: Example, state: _State) -> str:
    """Prefix + the ``source`` field or the rendered template (rendering is cheap and pure)."""
    template = state.settings.template
    if template is None:
        return state.prefix + text_field(task, example, "source")
    return state.prefix + render(template, example, task, where="formulations.seq2seq_generate.template")
