"""Plain, immutable values shared by every layer. No logic and no I/O live here.

Requests are NamedTuples so that the public adapter API accepts plain tuples
(``adapter.loglikelihood([("The capital is", " Paris")])``) and the runner can pass the typed
form; both unpack the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = [
    "PREDICTION_TYPES",
    "Direction",
    "Signature",
    "signature_identity",
    "signature_text",
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
    scoring: Literal["probability", "logit"] = "probability"
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
PREDICTION_TYPES = (  # a literal tuple, so isinstance() narrows to Prediction
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


class Signature(BaseModel):
    """What determines a metric's value, as fields (after sacrebleu's ``Signature``): the metric,
    its settings, facts of its computation (``context`` reads before the settings, ``extras``
    after, as the formatted text shows them), the implementation it replicates and its
    version, the interval method (and the cluster field), evalharness's version, and the run's
    ``n``, ``seed`` and ``resamples``. Stored as fields in run records; :meth:`format` is the
    display text; :meth:`identity` is what two values must share to be comparable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    settings: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, str] = Field(default_factory=dict)
    implementation: str
    interval: str
    clusters: str | None = None
    evalharness: str
    extras: dict[str, str] = Field(default_factory=dict)
    n: int | None = None
    seed: int | None = None
    resamples: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_text(cls, data: Any) -> Any:
        """``text`` is written for people reading the JSON; it is derived, never read back."""
        if isinstance(data, dict) and "text" in data:
            data = {key: value for key, value in data.items() if key != "text"}
        return data

    @computed_field  # type: ignore[prop-decorator]  # mypy refuses decorators over @property; pydantic's documented form
    @property
    def text(self) -> str:
        return self.format()

    def format(self) -> str:
        """``metric|context|settings|impl:...|ci:...|evalharness:...|extras`` (no run-specific part)."""
        parts = [self.metric, *(f"{key}:{value}" for key, value in self.context.items())]
        parts += [f"{key}:{value}" for key, value in sorted(self.settings.items())]
        parts += [f"impl:{self.implementation}", f"ci:{self.interval}"]
        if self.clusters:
            parts.append(f"ci-clusters:{self.clusters}")
        parts.append(f"evalharness:{self.evalharness}")
        parts += [f"{key}:{value}" for key, value in self.extras.items()]
        return "|".join(parts)

    def identity(self) -> tuple[Any, ...]:
        """The fields that make two values comparable: all but evalharness's version and the
        run's n, seed and resamples."""
        return (self.metric, sorted(self.settings.items()), sorted(self.context.items()), self.implementation,
                self.interval, self.clusters, sorted(self.extras.items()))

    def __str__(self) -> str:
        return self.format()

    def __contains__(self, text: str) -> bool:
        return text in self.format()


def signature_text(signature: Signature | str) -> str:
    """The display text of a signature (records written before signatures had fields hold it as text)."""
    return signature.format() if isinstance(signature, Signature) else signature


def signature_identity(signature: Signature | str) -> Any:
    """What two signatures must share to be comparable (text records: the text without the version)."""
    if isinstance(signature, Signature):
        return signature.identity()
    return "|".join(part for part in signature.split("|") if not part.startswith("evalharness:"))


@dataclass(frozen=True, slots=True)
class Direction:
    """Which way a metric is better: higher, lower, or closer to an ``ideal`` value (bias
    scores). One answer to "better", "worse" and "how good" everywhere they are asked."""

    higher_is_better: bool = True
    ideal: float | None = None

    @property
    def name(self) -> str:
        """``higher``, ``lower`` or ``ideal``."""
        return "ideal" if self.ideal is not None else "higher" if self.higher_is_better else "lower"

    @property
    def label(self) -> str:
        if self.ideal is not None:
            return f"closest to {self.ideal:g}"
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def short(self) -> str:
        return f"ideal {self.ideal:g}" if self.ideal is not None else "higher" if self.higher_is_better else "lower"

    def goodness(self, value: float) -> float:
        """A number that grows as ``value`` gets better (minus the distance from an ideal)."""
        if self.ideal is not None:
            return -abs(value - self.ideal)
        return value if self.higher_is_better else -value

    @property
    def lower_change_is_better(self) -> bool:
        """Whether a fall of the compared quantity is an improvement: for an ideal the compared
        quantity is the distance from it."""
        return self.ideal is not None or not self.higher_is_better

    def worsening(self, change: float) -> float:
        """How much worse a change of the compared quantity makes it (negative: better)."""
        return change if self.lower_change_is_better else -change


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
    signature: Signature
    ci_method: str
    ideal: float | None = None
    groups: Mapping[str, GroupResult] = field(default_factory=dict)
    note: str | None = None  # why the value is undefined (NaN), when it is

    @property
    def direction(self) -> Direction:
        return Direction(self.higher_is_better, self.ideal)


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
