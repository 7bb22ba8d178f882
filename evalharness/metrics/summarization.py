"""Summarization metrics through Google's ``rouge-score``: ROUGE-1, ROUGE-2, ROUGE-L and
ROUGE-Lsum F-measure, x100.

Replicates ``rouge_score.rouge_scorer.RougeScorer`` (itself a re-implementation of Lin's
ROUGE-1.5.5) by calling it: per example we keep rouge-score's precision, recall and F1, and
the corpus value is the mean F1, as summarization papers report (rouge-score's
``BootstrapAggregator`` "mid" approximates the same mean). What differs from a bare
``RougeScorer`` call changes no score, only the time (CNN/DailyMail: ~10x faster):

- the Porter stemmer's results are memoised (stemming is a pure function and most of
  rouge-score's tokenization time); tokenization is rouge-score's own ``tokenize.tokenize``;
- ROUGE-L/Lsum's longest common subsequences come from :mod:`evalharness.metrics.lcs`
  (bit-parallel, with rouge-score's backtracking rule); ROUGE-1/2 are rouge-score's scorer.

``use_stemmer`` is an explicit setting, on by default as in See et al. (2017) and the papers
that follow them (ROUGE-1.5.5 ``-m``), and recorded in the signature.

ROUGE-Lsum is summary-level LCS over *sentences*, which rouge-score takes from newlines.
Without newlines every summary is one sentence and ROUGE-Lsum silently equals ROUGE-L, so
``sentence_split: auto`` (the default) splits a text that has no newline with a documented,
deterministic rule (:func:`split_sentences`; NLTK's punkt needs data we do not download)
and keeps the newlines of a text that has them. Multiple references: the best F1 over the
selected references (rouge-score's ``score_multi``).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field

from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric, package_version
from evalharness.metrics.lcs import lcs_length, summary_level_hits
from evalharness.metrics.text import ReferenceSelection, check_texts, select_references
from evalharness.stats import FloatArray
from evalharness.types import TextPrediction

__all__ = ["Rouge1", "Rouge2", "RougeL", "RougeLsum", "SPLITTER", "split_sentences"]

SPLITTER = "evalharness-regex-v1"

# A '.' after one of these words (or after dotted initials such as "u.s." or "j.") does not end
# a sentence. Lower-case comparison, so the rule is the same for cased and lowercased text.
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs"})
_INITIALS = re.compile(r"(?:[a-z]\.)+")
# Sentence-final punctuation, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"([.!?]+)[\"'\u201d\u2019)\]]*(?=\s)")
_OPENERS = "\"'\u201c\u2018(["


def split_sentences(text: str) -> list[str]:
    """Split ``text`` after '.', '!' or '?' (plus closing quotes/brackets) followed by
    whitespace, except after a single '.' that ends a known abbreviation or dotted initials.

    Deterministic and dependency-free; works on PTB-tokenized text ("word ." splits) and on
    ordinary text. Empty pieces are dropped.
    """
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        if match.group(1) == ".":
            word = text[start : match.start(1) + 1].split()[-1].lower().lstrip(_OPENERS)
            if word[:-1] in _ABBREVIATIONS or _INITIALS.fullmatch(word):
                continue
        piece = text[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _lines_or_split(text: str) -> str:
    return text if "\n" in text else "\n".join(split_sentences(text))


def _split_every_line(text: str) -> str:
    return "\n".join(sentence for line in text.split("\n") for sentence in split_sentences(line))


# How a text is turned into rouge-score's newline-separated sentences for ROUGE-Lsum.
SENTENCE_SPLITS: dict[str, Callable[[str], str]] = {
    "auto": _lines_or_split,
    "newline": lambda text: text,
    "regex": _split_every_line,
}


class _Stemmer(Protocol):
    """What rouge-score's tokenizer uses of a stemmer (nltk's ``PorterStemmer``)."""

    def stem(self, word: str) -> str: ...


class _Score(Protocol):
    """rouge-score's ``scoring.Score`` (a named tuple)."""

    @property
    def precision(self) -> float: ...
    @property
    def recall(self) -> float: ...
    @property
    def fmeasure(self) -> float: ...


@functools.lru_cache(maxsize=1)
def _porter() -> _Stemmer:
    from nltk.stem import porter

    return porter.PorterStemmer()  # rouge-score's DefaultTokenizer uses the default mode


class _MemoStemmer:
    """The Porter stemmer with memoised results (same ``stem`` interface as nltk's).

    One table per process: stems depend only on the word (and nltk's version), and the
    vocabulary of an evaluation set is small.
    """

    _table: ClassVar[dict[str, str]] = {}

    @classmethod
    def stem(cls, word: str) -> str:
        try:
            return cls._table[word]
        except KeyError:
            stemmed = cls._table[word] = _porter().stem(word)
            return stemmed


@functools.lru_cache(maxsize=1 << 15)
def _cached_tokens(text: str, use_stemmer: bool) -> tuple[str, ...]:
    """rouge-score's tokenization of ``text``, kept for the next metric of the same task
    (ROUGE-1, -2 and -L tokenize the same texts); tokens are interned to share memory."""
    from rouge_score import tokenize

    return tuple(sys.intern(token) for token in tokenize.tokenize(text, _MemoStemmer if use_stemmer else None))


class _RougeTokenizer:
    """rouge-score's default tokenization (``tokenize.tokenize``) with a memoised stemmer."""

    def __init__(self, use_stemmer: bool) -> None:
        self._use_stemmer = use_stemmer

    def tokenize(self, text: str) -> list[str]:
        return list(_cached_tokens(text, self._use_stemmer))


class RougeSettings(ReferenceSelection):
    use_stemmer: bool = Field(default=True, description="Porter stemming of tokens longer than 3 characters (ROUGE -m)")


class RougeLsumSettings(RougeSettings):
    sentence_split: Literal["auto", "newline", "regex"] = Field(
        default="auto",
        description=(
            "auto: newlines when the text has any, else split_sentences(); newline: newlines only "
            "(a text without newlines is one sentence); regex: split_sentences() on every line"
        ),
    )


class Rouge(AdditiveMetric):
    """One ROUGE type. Statistics per example: precision, recall, F1 (x100) and a count."""

    bounds = (0.0, 100.0)
    accepts = (TextPrediction,)

    reference = "rouge_score.rouge_scorer.RougeScorer"
    reference_package = "rouge-score"
    rouge_type: ClassVar[str]
    settings: RougeSettings
    Settings = RougeSettings

    def _scorer(self, tokenizer: _RougeTokenizer) -> Callable[[str, str], _Score]:
        """(target, prediction) -> rouge_score ``Score``; default: rouge-score's own scorer."""
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer([self.rouge_type], tokenizer=tokenizer)
        return lambda target, prediction: scorer.score(target, prediction)[self.rouge_type]

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        hypotheses = check_texts(self.name, predictions)
        refs = select_references(self.name, references, self.settings.references)
        score = self._scorer(_RougeTokenizer(self.settings.use_stemmer))
        rows = np.empty((len(hypotheses), 4), dtype=float)
        for index, (hypothesis, example_refs) in enumerate(zip(hypotheses, refs, strict=True)):
            # rouge-score's score_multi: the first reference with the highest F1.
            best = max((score(target, hypothesis) for target in example_refs), key=lambda s: s.fmeasure)
            rows[index] = (100 * best.precision, 100 * best.recall, 100 * best.fmeasure, 1.0)
        return rows

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        return sums[:, 2] / sums[:, 3]

    def example_scores(self, stats: FloatArray) -> FloatArray:
        return stats[:, 2].copy()

    def signature_extras(self) -> dict[str, str]:
        extras = {"score": "fmeasure-mean", "multi_ref": "max"}
        if self.settings.use_stemmer:
            extras["stemmer"] = f"nltk-porter=={package_version('nltk')}"
        return extras


def _score(precision_hits: int, n_prediction: int, n_target: int) -> _Score:
    """rouge-score's Score from a hit count, with its own f-measure function."""
    from rouge_score import scoring

    precision = precision_hits / n_prediction
    recall = precision_hits / n_target
    return scoring.Score(precision=precision, recall=recall, fmeasure=scoring.fmeasure(precision, recall))


_ZERO = (0.0, 0.0, 0.0)


class Rouge1(Rouge):
    """ROUGE-1: unigram overlap F1."""

    name = "rouge1"
    rouge_type = "rouge1"


class Rouge2(Rouge):
    """ROUGE-2: bigram overlap F1."""

    name = "rouge2"
    rouge_type = "rouge2"


class RougeL(Rouge):
    """ROUGE-L: longest common subsequence over the whole text (newlines ignored), as
    rouge-score's ``_score_lcs`` with the LCS from :mod:`evalharness.metrics.lcs`."""

    name = "rougeL"
    rouge_type = "rougeL"

    def _scorer(self, tokenizer: _RougeTokenizer) -> Callable[[str, str], _Score]:
        from rouge_score import scoring

        def score(target: str, prediction: str) -> _Score:
            target_tokens, prediction_tokens = tokenizer.tokenize(target), tokenizer.tokenize(prediction)
            if not target_tokens or not prediction_tokens:
                return scoring.Score(*_ZERO)
            hits = lcs_length(target_tokens, prediction_tokens)
            return _score(hits, len(prediction_tokens), len(target_tokens))

        return score


class RougeLsum(Rouge):
    """ROUGE-Lsum: summary-level union LCS over sentences (ROUGE-1.5.5's "ROUGE-L" on
    sentence-per-line files, the number CNN/DailyMail papers report as ROUGE-L), as
    rouge-score's ``_summary_level_lcs`` with the LCS from :mod:`evalharness.metrics.lcs`."""

    name = "rougeLsum"
    rouge_type = "rougeLsum"
    settings: RougeLsumSettings
    Settings = RougeLsumSettings

    def _scorer(self, tokenizer: _RougeTokenizer) -> Callable[[str, str], _Score]:
        from rouge_score import scoring

        prepare = SENTENCE_SPLITS[self.settings.sentence_split]

        def sentences(text: str) -> list[list[str]]:
            # rouge-score: split on newlines, drop empty strings, tokenize each sentence.
            return [tokenizer.tokenize(line) for line in prepare(text).split("\n") if len(line)]

        def score(target: str, prediction: str) -> _Score:
            target_sents, prediction_sents = sentences(target), sentences(prediction)
            n_target = sum(map(len, target_sents))
            n_prediction = sum(map(len, prediction_sents))
            if not n_target or not n_prediction:
                return scoring.Score(*_ZERO)
            hits = summary_level_hits(target_sents, prediction_sents)
            return _score(hits, n_prediction, n_target)

        return score

    def signature_extras(self) -> dict[str, str]:
        return {**super().signature_extras(), "splitter": SPLITTER}
