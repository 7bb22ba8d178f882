"""Span decoding for extractive question answering: windows of start/end logits -> one answer.

The QA adapter splits a long context into overlapping windows; this module turns each
window's logits into candidate spans and all windows' candidates into one answer. Two
scorings are offered, each replicating a reference:

- ``probability``: transformers' ``question-answering`` pipeline (v4 to v5.2). Start and end
  logits are softmax-normalised per window over the context tokens plus the null ([CLS])
  token; a span scores ``p_start * p_end``; the same answer text (ignoring case) found in
  several windows adds up; the null score is the smallest null probability over windows.
- ``logit``: Google BERT's ``run_squad.py`` and transformers' ``run_qa.py`` post-processing.
  A span scores ``start_logit + end_logit`` and the best window wins; the null score is the
  smallest [CLS] ``start + end`` logit over windows.

Spans are searched exhaustively among valid ``(start, end)`` token pairs inside the context
with ``end - start < max_answer_length``, keeping the ``n_best`` best of each window. The
answer is always a slice of the original context through the tokenizer's character offsets,
optionally widened to whole words (the pipeline's ``align_to_words``). When no answer is
allowed (SQuAD v2) the null wins if ``log null - log best > null_threshold`` (probability) or
``null - best > null_threshold`` (logit; ``run_qa``'s ``null_score_diff_threshold``), and
``no_answer_probability`` is the logistic of that difference, so the official v2 script's
best-threshold search can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from evalharness.errors import UsageError
from evalharness.types import SpanResponse

__all__ = ["SCORINGS", "SpanDecoding", "Window", "decode_answer"]

Scoring = Literal["probability", "logit"]
Logits: TypeAlias = "NDArray[np.float32] | NDArray[np.float64]"  # as the model returns them (float32), or given
Scores: TypeAlias = NDArray[np.float64]


@dataclass(frozen=True)
class SpanDecoding:
    """How spans are chosen; see the module docstring for the two scorings."""

    max_answer_length: int = 15
    n_best: int = 20
    allow_no_answer: bool = False
    null_threshold: float = 0.0
    scoring: Scoring = "probability"
    align_to_words: bool = True

    def __post_init__(self) -> None:
        if self.max_answer_length < 1 or self.n_best < 1:
            raise UsageError(
                f"max_answer_length and n_best must be at least 1 (got {self.max_answer_length}, {self.n_best})"
            )
        if self.scoring not in SCORINGS:
            raise UsageError(f"unknown span scoring '{self.scoring}' (known: {', '.join(SCORINGS)})")
        if not math.isfinite(self.null_threshold):
            raise UsageError(f"null_threshold must be finite (got {self.null_threshold})")


@dataclass(frozen=True)
class Window:
    """One window of one (question, context) pair as the model saw it.

    ``answerable`` marks the context tokens; ``offsets`` are character offsets into the
    *original* context (only read where ``answerable``); ``word_ids`` number the context's
    words (tokenizer pre-tokenization) for ``align_to_words``; ``null_index`` is the [CLS]
    position whose logits score "no answer".
    """

    start_logits: Logits
    end_logits: Logits
    answerable: NDArray[np.bool_]
    offsets: Sequence[tuple[int, int]]
    word_ids: Sequence[int | None] | None = None
    null_index: int = 0


@dataclass
class _Candidate:
    score: float
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Scorer:
    """One scoring: per-token scores, how a span combines them, how windows combine spans."""

    token_scores: Callable[[Window], tuple[Scores, Scores, float]]
    combine: Callable[[Scores, Scores], Scores]
    merge_same_text: bool
    log_ratio: Callable[[float, float], float]  # log(null / best) in this scoring's units


def _softmax_scores(window: Window) -> tuple[Scores, Scores, float]:
    """Probabilities over the context tokens and the null token (the pipeline's softmax)."""
    domain = np.asarray(window.answerable, dtype=bool).copy()
    domain[window.null_index] = True

    def softmax(logits: Logits) -> Scores:
        values = np.where(domain, np.asarray(logits, dtype=np.float64), -np.inf)
        values = np.exp(values - values.max())
        return values / values.sum()

    start, end = softmax(window.start_logits), softmax(window.end_logits)
    return start, end, float(start[window.null_index] * end[window.null_index])


def _logit_scores(window: Window) -> tuple[Scores, Scores, float]:
    start = np.asarray(window.start_logits, dtype=np.float64)
    end = np.asarray(window.end_logits, dtype=np.float64)
    return start, end, float(start[window.null_index] + end[window.null_index])


def _log_probability_ratio(null: float, best: float) -> float:
    with np.errstate(divide="ignore"):
        return float(np.log(null) - np.log(best))


SCORINGS: dict[str, _Scorer] = {
    "probability": _Scorer(_softmax_scores, np.multiply, True, _log_probability_ratio),
    "logit": _Scorer(_logit_scores, np.add, False, lambda null, best: null - best),
}


def _word_chars(window: Window) -> dict[int, tuple[int, int]]:
    """Character extent of each context word, from the tokens of this window."""
    extents: dict[int, tuple[int, int]] = {}
    for index in np.flatnonzero(window.answerable).tolist():
        word = window.word_ids[index] if window.word_ids is not None else None
        if word is None:
            continue
        start, end = window.offsets[index]
        low, high = extents.get(word, (start, end))
        extents[word] = (min(low, start), max(high, end))
    return extents


def _char_span(window: Window, words: dict[int, tuple[int, int]], start: int, end: int, align: bool) -> tuple[int, int]:
    first, last = window.offsets[start][0], window.offsets[end][1]
    if align and window.word_ids is not None:
        start_word, end_word = window.word_ids[start], window.word_ids[end]
        if start_word in words and end_word in words:
            first, last = words[start_word][0], words[end_word][1]
    return first, last


def _window_candidates(window: Window, context: str, scorer: _Scorer, decoding: SpanDecoding) -> tuple[list[_Candidate], float]:
    start_scores, end_scores, null = scorer.token_scores(window)
    positions = np.flatnonzero(np.asarray(window.answerable, dtype=bool))
    if positions.size == 0:
        return [], null
    scores = scorer.combine(start_scores[positions][:, None], end_scores[positions][None, :])
    gap = positions[None, :] - positions[:, None]
    valid = (gap >= 0) & (gap < decoding.max_answer_length)
    flat = np.where(valid, scores, -np.inf).ravel()
    count = min(decoding.n_best, int(valid.sum()))
    top = np.argpartition(-flat, count - 1)[:count]
    rows, columns = np.unravel_index(top, scores.shape)
    order = np.lexsort((columns, rows, -flat[top]))  # best first; ties by position
    words = _word_chars(window) if decoding.align_to_words else {}
    candidates = []
    for row, column in zip(rows[order], columns[order]):
        start, end = int(positions[row]), int(positions[column])
        first, last = _char_span(window, words, start, end, decoding.align_to_words)
        text = context[first:last]
        if text.strip():  # a zero-width or whitespace span is not an answer
            candidates.append(_Candidate(float(scores[row, column]), first, last, text))
    return candidates, null


def _merge(candidates: list[_Candidate], same_text: bool) -> list[_Candidate]:
    """The pipeline adds up the scores of equal answer texts (case-insensitive)."""
    if not same_text:
        return candidates
    merged: dict[str, _Candidate] = {}
    for candidate in candidates:
        key = candidate.text.lower()
        if key in merged:
            merged[key].score += candidate.score
        else:
            merged[key] = _Candidate(candidate.score, candidate.start, candidate.end, candidate.text)
    return list(merged.values())


def _logistic(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value)) if math.isfinite(value) else 1.0
    return math.exp(value) / (1.0 + math.exp(value)) if math.isfinite(value) else 0.0


def decode_answer(context: str, windows: Sequence[Window], decoding: SpanDecoding) -> SpanResponse:
    """The answer to one question from its windows (in context order)."""
    scorer = SCORINGS[decoding.scoring]
    candidates: list[_Candidate] = []
    nulls: list[float] = []
    for window in windows:
        found, null = _window_candidates(window, context, scorer, decoding)
        candidates.extend(found)
        nulls.append(null)
    candidates = _merge(candidates, scorer.merge_same_text)
    best = max(candidates, key=lambda c: c.score) if candidates else None  # first wins ties
    if not decoding.allow_no_answer:
        if best is None:
            raise UsageError("the context has no tokens that can form an answer (is it empty?)")
        return SpanResponse(best.text, best.start, best.score)
    null = min(nulls)
    difference = math.inf if best is None else scorer.log_ratio(null, best.score)
    probability = _logistic(difference)
    if best is None or difference > decoding.null_threshold:
        return SpanResponse("", None, null, probability)
    return SpanResponse(best.text, best.start, best.score, probability)
