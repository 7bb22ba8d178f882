"""Plain, immutable values shared by every layer. No logic and no I/O live here.

Requests are NamedTuples so that the public adapter API accepts plain tuples
(``adapter.loglikelihood([("The capital is", " Paris")])``) and the runner can pass the typed
form; both unpack the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

__all__ = [
    "PREDICTION_TYPES",
    "ChoicePrediction",
    "ClassifyRequest",
    "CounterfactualPrediction",
    "LabelPrediction",
    "LogprobPrediction",
    "PairPrediction",
    "Prediction",
    "ScorePrediction",
    "SpanPrediction",
    "TextPrediction",
    "ClassifyResponse",
    "Decoded",
    "Example",
    "ExampleOutcome",
    "GenerateResponse",
    "GenerationOptions",
    "GroupResult",
    "LoglikelihoodRequest",
    "LoglikelihoodResponse",
    "MetricResult",
    "PseudoLoglikelihoodRequest",
    "PseudoLoglikelihoodResponse",
    "RequestKind",
    "RollingLoglikelihoodResponse",
    "RollingOptions",
    "SpanOptions",
    "SpanRequest",
    "SpanResponse",
]


@dataclass(frozen=True, slots=True)
class Example:
    """One evaluation example after the task's column mapping: canonical field names only."""

    id: str
    fields: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
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


# -- options: how a request kind is answered (the engine hands them to the adapter as is) -----


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Decoding settings of ``generate`` requests. ``stop`` strings end a generation (the text
    is cut before them); ``num_beams == 1`` is greedy decoding."""

    stop: tuple[str, ...] = ()
    max_new_tokens: int = 64
    num_beams: int = 1
    min_new_tokens: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0


@dataclass(frozen=True, slots=True)
class RollingOptions:
    """How ``loglikelihood_rolling`` windows a text (see ``models.windows``); ``None`` lengths
    mean the model's maximum and half of it."""

    window: str = "disjoint"
    max_length: int | None = None
    stride: int | None = None
    append_eos: bool = False


@dataclass(frozen=True, slots=True)
class SpanOptions:
    """How an extractive QA head reads spans (the question-answering pipeline's settings)."""

    max_length: int | None = None
    doc_stride: int | None = None
    max_question_length: int = 64
    max_answer_length: int = 15
    n_best: int = 20
    allow_no_answer: bool = False
    null_threshold: float = 0.0
    scoring: str = "probability"
    align_to_words: bool = True


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


# -- predictions: one frozen type per task kind (``spec.predictions`` maps kinds to them) ----------
#
# ``to_json`` is the value samples files and prediction files hold (the kind's documented
# contract); metrics declare the types they accept (``Metric.accepts``).


@dataclass(frozen=True, slots=True)
class LabelPrediction:
    """A label name, one of the task's labels; ``None``: no answer (counted wrong)."""

    label: str | None

    def to_json(self) -> Any:
        return self.label


@dataclass(frozen=True, slots=True)
class ScorePrediction:
    """A real value (regression)."""

    value: float

    def to_json(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class SpanPrediction:
    """An answer text (``""``: no answer, SQuAD v2) and, where the model gives one, the
    probability that the question has no answer."""

    text: str
    no_answer_probability: float | None = None

    def to_json(self) -> Any:
        return {"text": self.text, "no_answer_probability": self.no_answer_probability}


@dataclass(frozen=True, slots=True)
class TextPrediction:
    """Generated text."""

    text: str

    def to_json(self) -> Any:
        return self.text


@dataclass(frozen=True, slots=True)
class LogprobPrediction:
    """The natural-log probability of a whole text, summed over its ``n_tokens`` scored tokens."""

    logprob: float
    n_tokens: int

    def to_json(self) -> Any:
        return {"logprob": self.logprob, "n_tokens": self.n_tokens}


@dataclass(frozen=True, slots=True)
class PairPrediction:
    """The scores (log-likelihoods, possibly normalised) of the more and the less stereotypical
    sentence of a pair."""

    more: float
    less: float

    def to_json(self) -> Any:
        return {"more": self.more, "less": self.less}


@dataclass(frozen=True, slots=True)
class ChoicePrediction:
    """The index of the chosen option; ``None``: no answer (counted wrong)."""

    index: int | None

    def to_json(self) -> Any:
        return self.index


@dataclass(frozen=True, slots=True)
class CounterfactualPrediction:
    """A counterfactual probe's answers: the base task's prediction on the original example,
    on each swap group's perturbed example, whether it flipped, and the perturbed golds."""

    original: Any
    perturbed: Mapping[str, Any]
    flipped: Mapping[str, bool]
    gold: Mapping[str, Any]

    def to_json(self) -> Any:
        return {
            "original": self.original.to_json(),
            "perturbed": {group: item.to_json() for group, item in self.perturbed.items()},
            "flipped": dict(self.flipped),
            "gold": dict(self.gold),
        }


Prediction = (
    LabelPrediction | ScorePrediction | SpanPrediction | TextPrediction | LogprobPrediction | PairPrediction
    | ChoicePrediction | CounterfactualPrediction
)
PREDICTION_TYPES: tuple[type, ...] = (
    LabelPrediction, ScorePrediction, SpanPrediction, TextPrediction, LogprobPrediction, PairPrediction,
    ChoicePrediction, CounterfactualPrediction,
)


@dataclass(frozen=True, slots=True)
class GroupResult:
    """A metric restricted to one group of examples (a bias type, a swap group...)."""

    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True, slots=True)
class MetricResult:
    """A corpus-level score with its uncertainty and provenance."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    stderr: float
    n: int
    higher_is_better: bool
    signature: str
    ci_method: str
    ideal: float | None = None
    groups: Mapping[str, GroupResult] = field(default_factory=dict)
    note: str | None = None  # why the value is undefined (NaN), when it is


@dataclass(frozen=True, slots=True)
class Decoded:
    """A model's (or a prediction file's) answer to one example, before scoring.

    ``input`` is what samples files and reports show as the example's input; ``extra``
    holds details worth keeping (logits, choice log-likelihoods, no-answer scores...).
    """

    prediction: Any
    input: Any
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    """What the run did with one example: what it asked, what came back, what was expected."""

    id: str
    input: Any
    prediction: Any
    gold: Any
    scores: Mapping[str, float] = field(default_factory=dict)
