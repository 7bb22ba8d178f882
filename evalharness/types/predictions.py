"""Predictions: one frozen type per task kind (``spec.predictions`` maps kinds to them).

``to_json`` is the value samples files and prediction files hold (the kind's documented
contract); metrics declare the types they accept (``Metric.accepts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evalharness.jsonvalues import JsonValue


@dataclass(frozen=True, slots=True)
class LabelPrediction:
    """A label name, one of the task's labels; ``None``: no answer (counted wrong)."""

    label: str | None

    def to_json(self) -> JsonValue:
        return self.label


@dataclass(frozen=True, slots=True)
class ScorePrediction:
    """A real value (regression)."""

    value: float

    def to_json(self) -> JsonValue:
        return self.value


@dataclass(frozen=True, slots=True)
class SpanPrediction:
    """An answer text (``""``: no answer, SQuAD v2) and, where the model gives one, the
    probability that the question has no answer."""

    text: str
    no_answer_probability: float | None = None

    def to_json(self) -> JsonValue:
        return {"text": self.text, "no_answer_probability": self.no_answer_probability}


@dataclass(frozen=True, slots=True)
class TextPrediction:
    """Generated text."""

    text: str

    def to_json(self) -> JsonValue:
        return self.text


@dataclass(frozen=True, slots=True)
class LogprobPrediction:
    """The natural-log probability of a whole text, summed over its ``n_tokens`` scored tokens."""

    logprob: float
    n_tokens: int

    def to_json(self) -> JsonValue:
        return {"logprob": self.logprob, "n_tokens": self.n_tokens}


@dataclass(frozen=True, slots=True)
class PairPrediction:
    """The scores (log-likelihoods, possibly normalised) of the more and the less stereotypical
    sentence of a pair."""

    more: float
    less: float

    def to_json(self) -> JsonValue:
        return {"more": self.more, "less": self.less}


@dataclass(frozen=True, slots=True)
class ChoicePrediction:
    """The index of the chosen option; ``None``: no answer (counted wrong)."""

    index: int | None

    def to_json(self) -> JsonValue:
        return self.index


@dataclass(frozen=True, slots=True)
class CounterfactualPrediction:
    """A counterfactual probe's answers: the base task's prediction on the original example,
    on each swap group's perturbed example, whether it flipped, and the perturbed golds."""

    original: Prediction
    perturbed: Mapping[str, Prediction]
    flipped: Mapping[str, bool]
    gold: Mapping[str, JsonValue]

    def to_json(self) -> JsonValue:
        return {
            "original": self.original.to_json(),
            "perturbed": {group: item.to_json() for group, item in self.perturbed.items()},
            "flipped": {group: flag for group, flag in self.flipped.items()},
            "gold": {group: gold for group, gold in self.gold.items()},
        }


Prediction = (
    LabelPrediction | ScorePrediction | SpanPrediction | TextPrediction | LogprobPrediction | PairPrediction
    | ChoicePrediction | CounterfactualPrediction
)
PREDICTION_TYPES = (  # a literal tuple, so isinstance() narrows to Prediction
    LabelPrediction, ScorePrediction, SpanPrediction, TextPrediction, LogprobPrediction, PairPrediction,
    ChoicePrediction, CounterfactualPrediction,
)
