"""The prediction contract of each task kind: one typed prediction (``evalharness.types``)
and one parser from the value a prediction file or a samples file holds.

The single source for what a kind's prediction is: formulations return these types,
``evalharness score`` parses prediction files through :func:`parse_prediction`, ``rescore``
reads samples back through it, metrics declare the types they accept (``Metric.accepts``) and
``tasks validate`` checks them against the kind statically. Parsing refuses values no model
can produce (a positive log-likelihood, an index outside the options, a probability outside
[0, 1], NaN), naming the place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass

from evalharness.errors import DataError
from evalharness.jsonvalues import expect_object, finite_number
from evalharness.types import (
    ChoicePrediction,
    CounterfactualPrediction,
    LabelPrediction,
    LogprobPrediction,
    PairPrediction,
    Prediction,
    ScorePrediction,
    SpanPrediction,
    TextPrediction,
)

__all__ = ["CONTRACTS", "Contract", "parse_prediction", "prediction_type", "probability"]


@dataclass(frozen=True)
class Context:
    """What a value is checked against: the task's labels and the example's fields."""

    labels: Sequence[str]
    fields: Mapping[str, object]


def _finite(value: object, where: str) -> float:
    number = finite_number(value)
    if number is None:
        raise DataError(f"{where}: expected a finite number, got {value!r}")
    return number


def probability(value: object, where: str) -> float:
    number = _finite(value, where)
    if not 0.0 <= number <= 1.0:
        raise DataError(f"{where}: no_answer_probability must be a probability in [0, 1], got {value!r}")
    return number


def _log_likelihood(value: object, where: str, name: str) -> float:
    """A natural-log likelihood (summed or normalised): finite and never above 0."""
    number = _finite(value, f"{where}: {name}")
    if number > 0.0:
        raise DataError(f"{where}: {name} {value!r} is a positive log-likelihood, which no model can produce (log p <= 0)")
    return number


def _text(value: object, where: str, context: Context) -> TextPrediction:
    if not isinstance(value, str):
        raise DataError(f"{where}: expected the generated text (a string), got {type(value).__name__}")
    return TextPrediction(value)


def _span(value: object, where: str, context: Context) -> SpanPrediction:
    if isinstance(value, str):
        return SpanPrediction(value)
    if isinstance(value, Mapping) and isinstance(value.get("text"), str) and set(value) <= {"text", "no_answer_probability"}:
        given = value.get("no_answer_probability")
        return SpanPrediction(value["text"], None if given is None else probability(given, where))
    raise DataError(f'{where}: expected an answer string or {{"text": str, "no_answer_probability": float | null}}')


def _label(value: object, where: str, context: Context) -> LabelPrediction:
    if not isinstance(value, str) or value not in context.labels:
        raise DataError(f"{where}: {value!r} is not one of the task's labels {list(context.labels)}")
    return LabelPrediction(value)


def _score(value: object, where: str, context: Context) -> ScorePrediction:
    return ScorePrediction(_finite(value, where))


def _logprob(value: object, where: str, context: Context) -> LogprobPrediction:
    if not isinstance(value, Mapping) or set(value) != {"logprob", "n_tokens"}:
        raise DataError(f'{where}: expected {{"logprob": float, "n_tokens": int}}')
    n_tokens = value["n_tokens"]
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
        raise DataError(f"{where}: n_tokens should be a non-negative integer, got {n_tokens!r}")
    logprob = _log_likelihood(value["logprob"], where, "logprob")
    if n_tokens == 0 and logprob != 0.0:
        raise DataError(f"{where}: logprob {logprob!r} over 0 scored tokens (with no tokens the log-likelihood is 0)")
    return LogprobPrediction(logprob, n_tokens)


def _pair(value: object, where: str, context: Context) -> PairPrediction:
    if not isinstance(value, Mapping) or set(value) != {"more", "less"}:
        raise DataError(f'{where}: expected {{"more": float, "less": float}} (log-likelihoods of the two sentences)')
    return PairPrediction(_log_likelihood(value["more"], where, "more"), _log_likelihood(value["less"], where, "less"))


def _choice(value: object, where: str, context: Context) -> ChoicePrediction:
    if value is None:
        return ChoicePrediction(None)
    choices = context.fields.get("choices")
    options = len(choices) if isinstance(choices, Sized) and choices else 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < options:
        return ChoicePrediction(value)
    raise DataError(f"{where}: expected a choice index 0..{options - 1} or null (this example has {options} choices), got {value!r}")


@dataclass(frozen=True)
class Contract:
    """A task kind's prediction: its type and the parser of its JSON value."""

    type: type[Prediction]
    parse: Callable[[object, str, Context], Prediction]


# Task kind -> its prediction contract. Every kind has one (a test checks it).
CONTRACTS: dict[str, Contract] = {
    "classification": Contract(LabelPrediction, _label),
    "regression": Contract(ScorePrediction, _score),
    "extractive_qa": Contract(SpanPrediction, _span),
    "generation": Contract(TextPrediction, _text),
    "language_modeling": Contract(LogprobPrediction, _logprob),
    "stereotype_pairs": Contract(PairPrediction, _pair),
    "multiple_choice": Contract(ChoicePrediction, _choice),
}


def prediction_type(kind: str, *, counterfactual: bool = False) -> type[Prediction]:
    """The prediction type a task of ``kind`` produces (a counterfactual probe wraps it)."""
    return CounterfactualPrediction if counterfactual else CONTRACTS[kind].type


def parse_prediction(
    kind: str,
    value: object,
    where: str,
    *,
    labels: Sequence[str] = (),
    fields: Mapping[str, object] | None = None,
    counterfactual: bool = False,
) -> Prediction:
    """The typed prediction of a JSON value of a ``kind`` task (a counterfactual probe's when
    ``counterfactual``), or a ``DataError`` naming ``where``."""
    context = Context(tuple(labels), fields or {})
    if not counterfactual:
        return CONTRACTS[kind].parse(value, where, context)
    if not isinstance(value, Mapping) or set(value) != {"original", "perturbed", "flipped", "gold"}:
        raise DataError(f"{where}: expected a counterfactual prediction {{original, perturbed, flipped, gold}}")
    parse = CONTRACTS[kind].parse
    perturbed, flipped = value["perturbed"], value["flipped"]
    if not isinstance(perturbed, Mapping) or not isinstance(flipped, Mapping) or set(perturbed) != set(flipped):
        raise DataError(f"{where}: a counterfactual prediction needs one 'perturbed' answer and one 'flipped' flag per swap group")
    if not all(isinstance(flag, bool) for flag in flipped.values()):  # "false" or 0.1 is not a flag
        raise DataError(f"{where}: flipped: every flag should be true or false, got {dict(flipped)!r}")
    return CounterfactualPrediction(
        original=parse(value["original"], f"{where}: original", context),
        perturbed={group: parse(answer, f"{where}: perturbed {group}", context) for group, answer in perturbed.items()},
        flipped=dict(flipped),
        gold=expect_object(value["gold"], f"{where}: gold", error=DataError),
    )
