"""Requests, their options and responses: what the engine hands adapters and gets back.

Requests are NamedTuples so that the public adapter API accepts plain tuples
(``adapter.loglikelihood([("The capital is", " Paris")])``) and the runner can pass the typed
form; both unpack the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar, Literal, NamedTuple

from pydantic import model_validator
from typing_extensions import Self

from evalharness.config.models import StrictModel, option
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.types.predictions import Prediction


@dataclass(frozen=True, slots=True)
class Example:
    """One evaluation example after the task's column mapping: canonical field names only."""

    id: str
    fields: Mapping[str, JsonValue]

    def __getitem__(self, name: str) -> JsonValue:
        return self.fields[name]


class RequestKind(str, Enum):
    """What a model adapter can be asked. Adapters declare the kinds they answer."""

    CLASSIFY = "classify"
    EXTRACT_SPAN = "extract_span"
    LOGLIKELIHOOD = "loglikelihood"
    LOGLIKELIHOOD_ROLLING = "loglikelihood_rolling"
    GENERATE = "generate"
    PSEUDO_LOGLIKELIHOOD = "pseudo_loglikelihood"


class ClassifyRequest(NamedTuple):
    text: str
    text_pair: str | None = None


class SpanRequest(NamedTuple):
    question: str
    context: str


class LoglikelihoodRequest(NamedTuple):
    context: str
    continuation: str


class PseudoLoglikelihoodRequest(NamedTuple):
    """A text and, optionally, the token positions to score (indices into the text's tokens
    without special tokens); ``None`` scores every token."""

    text: str
    positions: tuple[int, ...] | None = None


class Decoding(StrictModel):
    """How generated answers are decoded: the one definition of each generation option.

    It is a task file's ``generation:`` section, a run's overrides (the fields a run sets with
    ``--max-new-tokens``, a sweep's ``run:`` or the API; unset fields keep the task's value)
    and, with ``stop``, what adapters receive (:class:`GenerationOptions`). Adding an option is
    a field here plus its use in the adapters; its command-line flag (``cli``) and sweep key
    follow from the field.
    """

    max_new_tokens: int = option(64, ge=1, help="generated answers: the most tokens to generate (overrides the tasks' generation.max_new_tokens)")
    num_beams: int = option(1, ge=1, help="generated answers: beams of the beam search, 1 for greedy (overrides the tasks' generation.num_beams)")
    min_new_tokens: int = option(0, ge=0, cli=False, help="generated answers: end-of-sequence is not allowed before this many tokens")
    length_penalty: float = option(1.0, cli=False, help="beam search: the exponent of the length normalisation of beam scores")
    no_repeat_ngram_size: int = option(0, ge=0, cli=False, help="never generate an n-gram of this size twice (0: no restriction)")

    # Settings used as they are (a task's section once complete, what adapters receive) are
    # checked as a whole; a run's overrides may set min_new_tokens alone, the task's maximum is
    # not known yet, and the pair is checked when they are merged (``updated``).
    complete: ClassVar[bool] = False

    @model_validator(mode="after")
    def _min_below_max(self) -> Decoding:
        if (self.complete or "max_new_tokens" in self.model_fields_set) and self.min_new_tokens > self.max_new_tokens:
            raise ValueError(f"min_new_tokens ({self.min_new_tokens}) is larger than max_new_tokens ({self.max_new_tokens})")
        return self

    def given(self) -> JSONObject:
        """The fields that were set (as overrides: the ones that replace the task's); Decoding's
        fields are JSON numbers (overrides are never the ``stop`` of :class:`GenerationOptions`)."""
        return self.model_dump(exclude_unset=True)

    def updated(self, overrides: Mapping[str, object]) -> Self:
        """These settings with ``overrides`` applied, every field set and checked together."""
        return self.model_validate({**self.model_dump(), **overrides})


# -- options: how a request kind is answered (the engine hands them to the adapter as is) -----


class GenerationOptions(Decoding):
    """Decoding settings of ``generate`` requests. ``stop`` strings end a generation (the text
    is cut before them); ``num_beams == 1`` is greedy decoding."""

    complete: ClassVar[bool] = True  # the defaults of unset fields are what decoding uses

    stop: tuple[str, ...] = ()


class RollingOptions(StrictModel):
    """How ``loglikelihood_rolling`` windows a text (see ``models.windows``); ``None`` lengths
    mean the model's maximum and half of it."""

    window: str = "disjoint"
    max_length: int | None = None
    stride: int | None = None
    append_eos: bool = False


class SpanOptions(StrictModel):
    """How an extractive QA head reads spans (the question-answering pipeline's settings)."""

    max_length: int | None = None
    doc_stride: int | None = None
    max_question_length: int = 64
    max_answer_length: int = 15
    n_best: int = 20
    allow_no_answer: bool = False
    null_threshold: float = 0.0
    scoring: Literal["probability", "logit"] = "probability"
    align_to_words: bool = True


# The typed options of the request kinds that take some.
RequestOptions = GenerationOptions | RollingOptions | SpanOptions


@dataclass(frozen=True, slots=True)
class ClassifyResponse:
    """Raw head outputs: one logit per model label in ``id2label`` order (one value for a
    regression head). ``truncated`` says the input did not fit the model and was cut."""

    scores: tuple[float, ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class SpanResponse:
    """An extracted answer. ``text`` is ``""`` for a no-answer prediction (SQuAD v2)."""

    text: str
    start: int | None
    score: float
    no_answer_probability: float | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class LoglikelihoodResponse:
    """Summed log-probability of the continuation and whether greedy decoding reproduces it."""

    logprob: float
    is_greedy: bool
    n_tokens: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class RollingLoglikelihoodResponse:
    """Summed log-probability of a whole text and the number of scored tokens."""

    logprob: float
    n_tokens: int


@dataclass(frozen=True, slots=True)
class GenerateResponse:
    text: str
    n_tokens: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class PseudoLoglikelihoodResponse:
    """Sum of masked-token log-probabilities over the scored positions (Salazar et al. 2020)."""

    logprob: float
    n_tokens: int


# Any request or response, as the engine, the cache and the distributed planner move them
# without reading them; each protocol method takes and returns its own kind's types. A
# ``loglikelihood_rolling`` or ``generate`` request is its text.
Request = str | ClassifyRequest | SpanRequest | LoglikelihoodRequest | PseudoLoglikelihoodRequest
Response = (
    ClassifyResponse | SpanResponse | LoglikelihoodResponse | RollingLoglikelihoodResponse | GenerateResponse
    | PseudoLoglikelihoodResponse
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A model's (or a prediction file's) answer to one example, before scoring.

    ``input`` is what samples files and reports show as the example's input; ``extra``
    holds details worth keeping (logits, choice log-likelihoods, no-answer scores...).
    """

    prediction: Prediction
    input: JsonValue
    extra: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    """What the run did with one example: what it asked, what came back, what was expected."""

    id: str
    input: JsonValue
    prediction: JsonValue
    gold: JsonValue
    scores: Mapping[str, float] = field(default_factory=dict)
