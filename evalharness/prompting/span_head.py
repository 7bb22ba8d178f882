"""Extractive-QA heads answer ``extractive_qa`` tasks by span extraction (SQuAD v1.1/v2.0).

The settings are the knobs of SQuAD-style decoding (windows, stride, answer length, n-best,
null threshold); their defaults are transformers' ``question-answering`` pipeline's. SQuAD
v2.0 tasks must say ``allow_no_answer: true``; a task whose gold data holds unanswerable
questions (``answers: []``) and leaves ``allow_no_answer`` unset is refused rather than
scored as if abstaining were impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from evalharness.config import StrictModel
from evalharness.errors import DataError, SpecError
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import LoadedModel, SpanWindows, capability
from evalharness.prompting.base import Decoded, Formulation, FormulationOptions, text_field
from evalharness.spec.loader import Task
from evalharness.types import (
    Example,
    Request,
    RequestKind,
    SpanOptions,
    SpanPrediction,
    SpanRequest,
    SpanResponse,
)

__all__ = ["SpanHead", "SpanHeadSettings"]


class SpanHeadSettings(StrictModel):
    """``formulations: {span_head: {...}}`` in an ``extractive_qa`` task."""

    max_length: int | None = Field(
        default=None, ge=16, description="tokens per window, question included (default: min(model limit, 384))"
    )
    doc_stride: int | None = Field(
        default=None, ge=0, description="context tokens shared by consecutive windows (default: min(max_length // 2, 128))"
    )
    max_question_length: int = Field(default=64, ge=1, description="longer questions are cut (and counted as truncated)")
    max_answer_length: int = Field(default=15, ge=1, description="longest answer, in tokens")
    n_best: int = Field(default=20, ge=1, description="candidate spans kept per window")
    allow_no_answer: bool | None = Field(
        default=None, description="true for SQuAD v2.0: the empty answer competes with the best span"
    )
    null_threshold: float = Field(
        default=0.0, description="predict no answer when null score - best span score exceeds this (log scale)"
    )
    scoring: Literal["probability", "logit"] = Field(
        default="probability",
        description="probability: transformers' QA pipeline; logit: BERT run_squad.py / transformers run_qa.py",
    )
    align_to_words: bool = Field(default=True, description="widen answers to whole words (as the pipeline does)")

    @model_validator(mode="after")
    def _stride_fits(self) -> SpanHeadSettings:
        if self.max_length is not None and self.doc_stride is not None and self.doc_stride >= self.max_length:
            raise ValueError(f"doc_stride ({self.doc_stride}) must be below max_length ({self.max_length})")
        return self


@dataclass(frozen=True)
class SpanState:
    options: JSONObject
    recorded: JSONObject


class SpanHead(Formulation[SpanHeadSettings, SpanState, SpanResponse]):
    """The head's best span (or the empty answer), with its no-answer probability."""

    name = "span_head"
    request_kind = RequestKind.EXTRACT_SPAN
    method = "extractive QA head: answers are spans of the context, no prompt, nothing generated"
    Settings = SpanHeadSettings

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> SpanState:
        settings: SpanHeadSettings = self.settings_for(task)
        length, stride = capability(adapter, SpanWindows, self.name).windowing(settings.max_length, settings.doc_stride)
        values = settings.model_dump()
        values.update(max_length=length, doc_stride=stride, allow_no_answer=bool(settings.allow_no_answer))
        recorded = {**values, "allow_no_answer_set": settings.allow_no_answer is not None}
        return SpanState(values, recorded)

    def request_options(self, task: Task, state: SpanState) -> SpanOptions:
        return SpanOptions.model_validate(state.options)

    def settings(self, task: Task, state: SpanState) -> JSONObject:
        return dict(state.recorded)

    def requests(self, task: Task, examples: Sequence[Example], state: SpanState) -> list[list[Request]]:
        unanswerable = [example.id for example in examples if not example.fields.get("answers")]
        if unanswerable and not state.recorded["allow_no_answer_set"]:
            raise SpecError(
                f"{task.path}: {len(unanswerable)} example(s) have no gold answer (e.g. {unanswerable[0]}), "
                "as in SQuAD v2.0, but formulations.span_head.allow_no_answer is not set; set it to true "
                "to let the model abstain, or to false to always extract a span"
            )
        for example in examples:
            if not text_field(task, example, "context").strip():
                raise DataError(f"{task.name}: example {example.id}: field 'context' is empty")
        return [[SpanRequest(text_field(task, example, "question"), text_field(task, example, "context"))] for example in examples]

    def decode(self, task: Task, example: Example, responses: Sequence[SpanResponse], state: SpanState) -> Decoded:
        (response,) = responses
        shown = {"question": example["question"], "context": example["context"]}
        prediction = SpanPrediction(response.text, response.no_answer_probability)
        return Decoded(prediction, shown, {"start": response.start, "score": response.score})
