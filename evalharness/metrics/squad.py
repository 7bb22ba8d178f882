"""SQuAD v1.1 / v2.0 exact match and F1, replicating the official evaluation scripts.

Rules of ``evaluate-v2.0.py`` (and ``evaluate-v1.1.py`` under ``rules: v1.1``): answers are
normalised (lowercase, punctuation removed, articles a/an/the dropped, whitespace collapsed);
F1 is over token multisets; an example scores the maximum over its gold answers. In v2.0 a
question whose gold answer list is empty is unanswerable and is scored against the empty
string, so the no-answer prediction ``""`` is right and any other answer is wrong. Nothing is
dropped: a missing prediction (None) scores 0 and "plausible answers" are never gold.

A prediction is ``{'text': str, 'no_answer_probability': float | None}`` or a bare string.
With a probability, ``no_answer_threshold`` turns an answer into ``""`` when the probability
exceeds it (the official ``--na-prob-thresh``, default 1.0). ``squad_best_*`` report the best
score over all thresholds (the official ``best_exact`` / ``best_f1``).
"""

from __future__ import annotations

import collections
import functools
import math
import re
import string
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric, Metric, SettingsInput
from evalharness.stats import BoolArray, FloatArray
from evalharness.types import SpanPrediction

__all__ = [
    "SquadBestExact",
    "SquadBestF1",
    "SquadExact",
    "SquadF1",
    "normalize_answer",
    "parse_prediction",
    "score_example",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
Rules = Literal["v1.1", "v2.0"]
SCRIPT = {"v1.1": "evaluate-v1.1.py", "v2.0": "evaluate-v2.0.py"}


@functools.lru_cache(maxsize=1 << 16)  # gold answers are normalised once per metric and answer
def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop articles, collapse whitespace (official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(gold: str, prediction: str, *, empty_matches_empty: bool) -> float:
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(prediction).split()
    if empty_matches_empty and (not gold_tokens or not pred_tokens):
        return float(gold_tokens == pred_tokens)  # v2.0: no-answer vs no-answer is a match
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _exact(gold: str, prediction: str, *, empty_matches_empty: bool) -> float:
    return float(normalize_answer(gold) == normalize_answer(prediction))


class Scorer(Protocol):
    """One gold answer against a prediction, in [0, 1]."""

    def __call__(self, gold: str, prediction: str, *, empty_matches_empty: bool) -> float: ...


SCORERS: dict[str, Scorer] = {"exact": _exact, "f1": _f1}


def _golds_v2(answers: Sequence[str]) -> list[str]:
    return [a for a in answers if normalize_answer(a)] or [""]


def _golds_v1(answers: Sequence[str]) -> list[str]:
    if not answers:
        raise MetricInputError("has no gold answer; SQuAD v1.1 rules need one (use rules: v2.0)")
    return list(answers)


GOLDS: dict[str, Callable[[Sequence[str]], list[str]]] = {"v1.1": _golds_v1, "v2.0": _golds_v2}


def score_example(prediction: str, answers: Sequence[str], score: str, rules: Rules = "v2.0") -> float:
    """One example's exact match or F1 in [0, 1]: the maximum over its gold answers."""
    scorer = SCORERS[score]
    empty = rules == "v2.0"
    return max(scorer(gold, prediction, empty_matches_empty=empty) for gold in GOLDS[rules](answers))


def parse_prediction(prediction: JsonValue, index: int, name: str) -> tuple[str | None, float | None]:
    """``(text, no_answer_probability)`` from the prediction contract; (None, None) if missing."""
    if prediction is None:
        return None, None
    if isinstance(prediction, str):
        return prediction, None
    if not isinstance(prediction, dict) or "text" not in prediction:
        raise MetricInputError(
            f"{name}: prediction {index} is {prediction!r}; expected a string or "
            "{'text': str, 'no_answer_probability': float | None}"
        )
    text, probability = prediction["text"], prediction.get("no_answer_probability")
    if text is not None and not isinstance(text, str):
        raise MetricInputError(f"{name}: prediction {index}: 'text' is {text!r}, not a string")
    if probability is not None:
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not math.isfinite(probability):
            raise MetricInputError(
                f"{name}: prediction {index}: 'no_answer_probability' is {probability!r}, not a finite number"
            )
        probability = float(probability)
    return text, probability


def _answers(reference: JsonValue, index: int, name: str) -> list[str]:
    if isinstance(reference, (list, tuple)):
        answers = [answer for answer in reference if isinstance(answer, str)]
        if len(answers) == len(reference):
            return answers
    raise MetricInputError(
        f"{name}: reference {index} is {reference!r}; expected a list of gold answer strings "
        "([] for an unanswerable question)"
    )


class _SquadBase(Metric):
    bounds = (0.0, 100.0)
    score: ClassVar[str]  # "exact" or "f1"
    reference = "official-squad-evaluate-v2.0.py"
    settings: SquadSettings | SquadBestSettings

    accepts = (SpanPrediction,)

    def __init__(self, settings: SettingsInput = None) -> None:
        super().__init__(settings)
        self.reference = f"official-squad-{SCRIPT[self.settings.rules]}"  # named in the signature

    def _score(self, text: str, answers: list[str], index: int) -> float:
        try:
            return score_example(text, answers, self.score, self.settings.rules)
        except MetricInputError as exc:
            raise MetricInputError(f"{self.name}: reference {index} {exc}") from None


class SquadSettings(StrictModel):
    subset: Literal["all", "has_ans", "no_ans"] = Field(
        default="all", description="all questions, answerable ones (HasAns_*) or unanswerable ones (NoAns_*)"
    )
    no_answer_threshold: float = Field(
        default=1.0, description="answer '' when no_answer_probability exceeds this (official --na-prob-thresh)"
    )
    rules: Rules = "v2.0"


class _SquadScore(_SquadBase, AdditiveMetric):
    """Mean exact match / F1 x100 over the chosen subset of questions.

    Statistics per example: (score if in the subset else 0, 1 if in the subset else 0). Only
    the subset's questions enter the metric: ``n`` is their number (the official script's
    ``HasAns_total`` / ``NoAns_total``) and the interval is over them. An empty subset (e.g.
    no unanswerable question within ``--limit``) scores NaN (null).
    """

    settings: SquadSettings
    Settings = SquadSettings
    mean_of_examples = True

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        subset = self.settings.subset
        stats = np.zeros((len(references), 2))
        for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            answers = _answers(reference, index, self.name)
            has_answer = bool(answers)
            if subset != "all" and has_answer != (subset == "has_ans"):
                continue
            text, probability = parse_prediction(prediction, index, self.name)
            if text is None:
                value = 0.0  # a missing prediction is wrong, also for unanswerable questions
            elif probability is not None and probability > self.settings.no_answer_threshold:
                value = float(not has_answer)  # official apply_no_ans_threshold
            else:
                value = self._score(text, answers, index)
            stats[index] = (value, 1.0)
        return stats

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sums[:, 1] > 0, 100.0 * sums[:, 0] / sums[:, 1], np.nan)

    def example_scores(self, stats: FloatArray) -> FloatArray:
        return np.where(stats[:, 1] > 0, 100.0 * stats[:, 0], np.nan)

    def entered(self, stats: FloatArray) -> BoolArray:
        return stats[:, 1] > 0

    def undefined_reason(self, stats: FloatArray) -> str | None:
        if stats[:, 1].sum() > 0:
            return None
        which = {"has_ans": "answerable", "no_ans": "unanswerable"}.get(self.settings.subset, "")
        return f"no {which} question among the {stats.shape[0]} scored (subset: {self.settings.subset})"


class SquadExact(_SquadScore):
    """Exact match is 0 or 1 per question: a proportion, with the Wilson interval."""

    name = "squad_exact"
    score = "exact"
    interval_method = "wilson"


class SquadF1(_SquadScore):
    """F1 is a bounded mean: the percentile bootstrap keeps its interval inside [0, 100]."""

    name = "squad_f1"
    score = "f1"


class SquadBestSettings(StrictModel):
    rules: Rules = "v2.0"


class _SquadBest(_SquadBase):
    """Best exact match / F1 x100 over no-answer thresholds (official ``find_best_thresh``).

    Every answer is first forced to no-answer (score = 1 for unanswerable questions), then
    answers are switched back in order of increasing ``no_answer_probability``; the best total
    along the way wins. Statistics per example: (probability, score when forced to no-answer,
    gain when answered), with the official gain (the raw score for answerable questions,
    -1 for a non-empty answer to an unanswerable one). Two deliberate differences from the
    script: equal probabilities switch together (a threshold cannot separate them, and the
    score then does not depend on example order), and a missing prediction scores 0 at every
    threshold. A prediction without a probability counts as probability 0, as the script
    does when no ``--na-prob-file`` is given.
    """

    settings: SquadBestSettings
    Settings = SquadBestSettings

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        stats = np.zeros((len(references), 3))
        for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            answers = _answers(reference, index, self.name)
            text, probability = parse_prediction(prediction, index, self.name)
            if text is None:
                continue  # (0, 0, 0): wrong whatever the threshold
            if answers:
                gain = self._score(text, answers, index)
            else:
                gain = -1.0 if text else 0.0
            stats[index] = (probability or 0.0, float(not answers), gain)
        return stats

    def aggregate(self, stats: FloatArray) -> float:
        stats = np.asarray(stats, dtype=float)
        if stats.shape[0] == 0:
            return float("nan")
        order = np.argsort(stats[:, 0], kind="stable")
        probabilities, gains = stats[order, 0], np.cumsum(stats[order, 2])
        # Only after the last of a run of equal probabilities is a threshold possible.
        last_of_group = np.append(probabilities[1:] != probabilities[:-1], True)
        best_gain = max(0.0, float(gains[last_of_group].max()))
        return 100.0 * (float(stats[:, 1].sum()) + best_gain) / stats.shape[0]

    def example_scores(self, stats: FloatArray) -> FloatArray:
        """Per example: the score at the example's own answer (probability ignored)."""
        return 100.0 * (stats[:, 1] + stats[:, 2])


class SquadBestExact(_SquadBest):
    name = "squad_best_exact"
    score = "exact"


class SquadBestF1(_SquadBest):
    name = "squad_best_f1"
    score = "f1"
