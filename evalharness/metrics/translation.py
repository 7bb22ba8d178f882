"""Translation metrics through sacrebleu: corpus BLEU, chrF, chrF++ and TER.

Replicates ``sacrebleu`` (Post 2018) by calling it: per-segment sufficient statistics come
from sacrebleu's own ``_extract_corpus_statistics`` (the statistics its paired bootstrap and
approximate-randomisation tests resample), and every corpus score, including each bootstrap
replicate, from its ``_compute_score_from_stats`` on summed statistics. So the value equals
``sacrebleu.corpus_bleu``/``corpus_chrf``/``corpus_ter`` and the sacrebleu CLI exactly, and a
confidence interval costs one matrix product instead of re-scoring text. The corpus score is
*not* the mean of sentence scores (mean sentence-BLEU is a different, lower number).

Multiple references: each example has a list of references; ``references`` selects indices
(``[0]`` = WMT's "refA" only), ``null`` uses all of them (sacrebleu's multi-reference BLEU:
clipped counts against the max count over references, closest reference length; chrF/TER:
the best-matching reference per segment). Heavy imports are lazy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field, PositiveInt, field_validator

from evalharness.errors import SpecError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric, SettingsInput
from evalharness.metrics.text import ReferenceSelection, check_texts, select_references
from evalharness.stats import FloatArray
from evalharness.types import TextPrediction

__all__ = ["Bleu", "ChrF", "ChrFPlusPlus", "Ter"]


class BleuSettings(ReferenceSelection):
    """``sacrebleu.metrics.BLEU`` arguments (defaults are sacrebleu's and WMT's)."""

    trg_lang: str = Field(default="", description="target language code; picks zh/ja-mecab/ko-mecab tokenization")
    tokenize: str | None = Field(default=None, description="sacrebleu tokenizer; null = by trg_lang, else 13a")
    lowercase: bool = False
    smooth_method: Literal["exp", "floor", "add-k", "none"] = "exp"
    smooth_value: float | None = None
    max_ngram_order: PositiveInt = 4
    effective_order: bool = False

    @field_validator("tokenize")
    @classmethod
    def _known_tokenizer(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from sacrebleu.metrics import BLEU

        known = sorted(BLEU.TOKENIZERS)
        if value not in known:
            from evalharness.errors import did_you_mean

            raise ValueError(f"unknown sacrebleu tokenizer '{value}'{did_you_mean(value, known)} (known: {', '.join(known)})")
        return value


class ChrFSettings(ReferenceSelection):
    """``sacrebleu.metrics.CHRF`` arguments (chrF2: char order 6, no word n-grams)."""

    char_order: PositiveInt = 6
    word_order: int = Field(default=0, ge=0)
    beta: PositiveInt = 2
    lowercase: bool = False
    whitespace: bool = False
    eps_smoothing: bool = False


class ChrFPlusPlusSettings(ChrFSettings):
    """chrF++ (Popović 2017) is chrF with word unigrams and bigrams."""

    word_order: int = Field(default=2, ge=0)


class TerSettings(ReferenceSelection):
    """``sacrebleu.metrics.TER`` arguments (Tercom defaults)."""

    normalized: bool = False
    no_punct: bool = False
    asian_support: bool = False
    case_sensitive: bool = False


def _streams(references: list[list[str]]) -> list[list[str | None]]:
    """Per-example reference lists -> sacrebleu's reference streams (one list per reference
    position); examples with fewer references get ``None``, sacrebleu's "variable refs"."""
    width = max(len(refs) for refs in references)
    return [[refs[j] if j < len(refs) else None for refs in references] for j in range(width)]


class _SacreBleuScore(Protocol):
    @property
    def score(self) -> float: ...


class _SacreBleuSignature(Protocol):
    def format(self) -> str: ...


class _SacreBleuScorer(Protocol):
    """What evalharness uses of a ``sacrebleu.metrics`` object (BLEU, CHRF, TER): the
    statistics its significance tests resample, the score of summed statistics, its signature.
    ``num_refs`` is read into the signature as is (an int, or a word such as "all")."""

    num_refs: int | str

    def _extract_corpus_statistics(
        self, hypotheses: Sequence[str], references: Sequence[Sequence[str | None]] | None
    ) -> list[list[float]]: ...

    def _compute_score_from_stats(self, stats: list[float]) -> _SacreBleuScore: ...

    def get_signature(self) -> _SacreBleuSignature: ...


class SacreBleuMetric(AdditiveMetric):
    """Common machinery: build the sacrebleu object once, extract statistics, score sums."""

    bounds = (0.0, 100.0)
    accepts = (TextPrediction,)
    reference_package = "sacrebleu"
    sacrebleu_class: ClassVar[str]
    settings: ReferenceSelection

    def __init__(self, settings: SettingsInput = None) -> None:
        super().__init__(settings)
        self._scorer: _SacreBleuScorer | None = None
        self._num_refs: int | str | None = None

    def _arguments(self) -> dict[str, object]:
        return self.settings.model_dump(exclude={"references"})

    @property
    def scorer(self) -> _SacreBleuScorer:
        """The configured sacrebleu metric object."""
        if self._scorer is None:
            import sacrebleu.metrics

            try:
                self._scorer = getattr(sacrebleu.metrics, self.sacrebleu_class)(**self._arguments())
            except (ImportError, RuntimeError) as exc:
                raise SpecError(
                    f"{self.name}: sacrebleu cannot be set up with {self._arguments()}: {exc} "
                    "(Japanese/Korean tokenizers need `pip install 'sacrebleu[ja]'` / `'sacrebleu[ko]'`)"
                ) from None
        return self._scorer

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        hypotheses = check_texts(self.name, predictions)
        refs = select_references(self.name, references, self.settings.references)
        scorer = self.scorer
        stats = scorer._extract_corpus_statistics(hypotheses, _streams(refs))
        self._num_refs = scorer.num_refs
        return np.asarray(stats, dtype=float).reshape(len(hypotheses), -1)

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        compute = self.scorer._compute_score_from_stats
        return np.array([compute(row.tolist()).score for row in np.atleast_2d(sums)], dtype=float)

    def sacrebleu_signature(self) -> str:
        """sacrebleu's own signature string (nrefs as seen in the last scored data)."""
        scorer = self.scorer
        if self._num_refs is not None:
            scorer.num_refs = self._num_refs
        elif self.settings.references is not None:
            scorer.num_refs = len(self.settings.references)
        else:
            scorer.num_refs = "all"
        return scorer.get_signature().format()

    def signature_extras(self) -> dict[str, str]:
        return {"sacrebleu": f"[{self.sacrebleu_signature()}]"}


class Bleu(SacreBleuMetric):
    """Corpus BLEU (Papineni et al. 2002) exactly as ``sacrebleu.corpus_bleu``.

    Statistics per segment (sacrebleu's order): hypothesis length, closest reference length,
    matched n-grams for n = 1..4, hypothesis n-grams for n = 1..4. The per-example score in
    samples files is BLEU of that one segment's statistics with the same settings
    (informative only; use ``effective_order: true`` for a sentence-BLEU metric).
    """

    name = "bleu"
    reference = "sacrebleu.metrics.BLEU"
    sacrebleu_class = "BLEU"
    settings: BleuSettings
    Settings = BleuSettings


class ChrF(SacreBleuMetric):
    """Corpus chrF (Popović 2015) exactly as ``sacrebleu.corpus_chrf``: character n-gram
    F-score (beta = 2) from summed [hyp, ref, match] counts per order."""

    name = "chrf"
    reference = "sacrebleu.metrics.CHRF"
    sacrebleu_class = "CHRF"
    settings: ChrFSettings
    Settings = ChrFSettings


class ChrFPlusPlus(ChrF):
    """chrF++: chrF plus word 1- and 2-grams (``sacrebleu -m chrf --chrf-word-order 2``)."""

    name = "chrf++"
    settings: ChrFPlusPlusSettings
    Settings = ChrFPlusPlusSettings


class Ter(SacreBleuMetric):
    """Translation edit rate (Snover et al. 2006) as ``sacrebleu.corpus_ter``: total edits
    over total (average) reference length, x100. Lower is better."""

    name = "ter"
    bounds = (0.0, math.inf)
    higher_is_better = False
    reference = "sacrebleu.metrics.TER"
    sacrebleu_class = "TER"
    settings: TerSettings
    Settings = TerSettings
