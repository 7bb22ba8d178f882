"""Language-modelling metrics: token, word and byte perplexity and bits per byte.

Corpus-level, as lm-evaluation-harness's ``weighted_perplexity`` / ``bits_per_byte``: sum the
documents' log-likelihoods, divide by the summed counts, exponentiate. The normaliser decides
the number, so it is explicit and in the signature:

- tokens: the scored tokens the model reported (``n_tokens``), so it depends on the tokenizer;
- words: counted from the reference text, ``lm_eval`` = ``len(re.split(r"\\s+", text))`` on
  the original (not detokenised) document, as lm-evaluation-harness's wikitext task, or
  ``words_plus_eos`` = whitespace tokens plus one ``<eos>`` per line, the Mikolov/Zaremba and
  pytorch/examples counting (PTB test: 78,669 words + 3,761 ``<eos>`` = 82,430);
- bytes: UTF-8 bytes of the reference text.

The prediction contract is ``{'logprob': float (natural log, summed), 'n_tokens': int}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np

from evalharness.config import StrictModel
from evalharness.errors import MetricInputError
from evalharness.jsonvalues import JsonValue
from evalharness.metrics.base import AdditiveMetric
from evalharness.stats import FloatArray
from evalharness.types import LogprobPrediction

__all__ = [
    "COUNTING_RULES",
    "BitsPerByte",
    "BytePerplexity",
    "TokenPerplexity",
    "WordPerplexity",
    "count_bytes",
    "count_words_lm_eval",
    "count_words_plus_eos",
]

_WHITESPACE = re.compile(r"\s+")


def count_words_lm_eval(text: str) -> int:
    """lm-evaluation-harness (wikitext ``process_results``): ``len(re.split(r"\\s+", text))``.

    Leading or trailing whitespace yields an empty piece that is counted, as there."""
    return len(_WHITESPACE.split(text))


def count_words_plus_eos(text: str) -> int:
    """Whitespace tokens plus one ``<eos>`` per line (a final newline does not open a line)."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return sum(len(line.split()) + 1 for line in lines)


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


COUNTING_RULES: dict[str, tuple[Callable[[str], int], str]] = {
    "lm_eval": (count_words_lm_eval, r"len(re.split(r'\s+',text))"),
    "words_plus_eos": (count_words_plus_eos, "whitespace tokens + 1 <eos> per line"),
}


def _logprob(prediction: JsonValue, index: int, name: str) -> tuple[float, Mapping[str, JsonValue]]:
    """The prediction's summed log-probability and the prediction, checked to be a mapping."""
    if not isinstance(prediction, Mapping) or "logprob" not in prediction:
        raise MetricInputError(
            f"{name}: prediction {index} is {prediction!r}; expected "
            "{'logprob': float (natural log, summed), 'n_tokens': int}"
        )
    value = prediction["logprob"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricInputError(f"{name}: prediction {index}: 'logprob' is {value!r}, not a finite number")
    if value > 1e-6:
        raise MetricInputError(
            f"{name}: prediction {index}: 'logprob' is {value} > 0; expected a summed natural-log probability"
        )
    return float(value), prediction


def _text(reference: JsonValue, index: int, name: str) -> str:
    if not isinstance(reference, str):
        raise MetricInputError(f"{name}: reference {index} is {reference!r}; expected the document text")
    return reference


class _CorpusLM(AdditiveMetric):
    """Statistics per document: (log-likelihood, count). Lower is better."""

    higher_is_better = False
    reference = "lm-evaluation-harness.weighted_perplexity"
    unit: ClassVar[str]

    accepts = (LogprobPrediction,)

    def counting(self) -> str:
        """How the normaliser is counted, for the signature."""
        raise NotImplementedError

    def count(self, prediction: Mapping[str, JsonValue], text: str, index: int) -> int:
        raise NotImplementedError

    def signature_context(self) -> dict[str, str]:
        return {"unit": self.unit, "count": self.counting(), "average": "corpus"}

    def example_stats(self, predictions: Sequence[JsonValue], references: Sequence[JsonValue]) -> FloatArray:
        stats = np.zeros((len(references), 2))
        for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
            logprob, checked = _logprob(prediction, index, self.name)
            stats[index] = (logprob, self.count(checked, _text(reference, index, self.name), index))
        if stats[:, 1].sum() <= 0:
            raise MetricInputError(f"{self.name}: the documents contain no {self.unit}s to normalise by")
        return stats

    def per_unit_nll(self, sums: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sums[:, 1] > 0, -sums[:, 0] / sums[:, 1], np.nan)

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.exp(self.per_unit_nll(sums))

    def example_scores(self, stats: FloatArray) -> FloatArray:
        return self.aggregate_sums(stats)


class TokenPerplexity(_CorpusLM):
    """exp(-sum logprob / sum scored tokens); depends on the model's tokenizer."""

    name = "token_perplexity"
    bounds = (1.0, math.inf)
    unit = "token"

    def counting(self) -> str:
        return "n_tokens reported by the model"

    def count(self, prediction: Mapping[str, JsonValue], text: str, index: int) -> int:
        n_tokens = prediction.get("n_tokens")
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 0:
            raise MetricInputError(f"{self.name}: prediction {index}: 'n_tokens' is {n_tokens!r}, not a count")
        return n_tokens


class WordSettings(StrictModel):
    counting: Literal["lm_eval", "words_plus_eos"] = "lm_eval"


class WordPerplexity(_CorpusLM):
    """exp(-sum logprob / sum words), words counted from the reference text."""

    name = "word_perplexity"
    bounds = (1.0, math.inf)
    unit = "word"
    settings: WordSettings
    Settings = WordSettings

    def counting(self) -> str:
        return COUNTING_RULES[self.settings.counting][1]

    def count(self, prediction: Mapping[str, JsonValue], text: str, index: int) -> int:
        return COUNTING_RULES[self.settings.counting][0](text)


class BytePerplexity(_CorpusLM):
    """exp(-sum logprob / sum UTF-8 bytes): comparable across tokenizers."""

    name = "byte_perplexity"
    bounds = (1.0, math.inf)
    unit = "byte"

    def counting(self) -> str:
        return "len(text.encode('utf-8'))"

    def count(self, prediction: Mapping[str, JsonValue], text: str, index: int) -> int:
        return count_bytes(text)


class BitsPerByte(BytePerplexity):
    """-sum logprob / (sum UTF-8 bytes * ln 2) (lm-evaluation-harness ``bits_per_byte``)."""

    name = "bits_per_byte"
    bounds = (0.0, math.inf)
    reference = "lm-evaluation-harness.bits_per_byte"

    def aggregate_sums(self, sums: FloatArray) -> FloatArray:
        return self.per_unit_nll(sums) / math.log(2)
