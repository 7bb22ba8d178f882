"""Language-modelling metrics and the WikiText-2 / PTB document units.

Provenance: the formulas are lm-evaluation-harness's (``weighted_perplexity`` =
exp(-Σ loglikelihood / Σ count), ``bits_per_byte`` = -Σ loglikelihood / (Σ bytes · ln 2), words
counted as ``len(re.split(r"\\s+", page))`` on the original page, in
``lm_eval/tasks/wikitext/preprocess_wikitext.py``); the PTB and WikiText token counts
(82,430 and 245,569 including one <eos> per line) are the MANIFEST's, i.e. the counts of
Mikolov's / pytorch/examples' readers. Log-likelihoods here are synthetic but exact.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from evalharness.spec.catalog import TaskCatalog
from evalharness.data import load_examples
from evalharness.errors import MetricInputError
from evalharness.metrics import build_metric
from evalharness.metrics.perplexity import count_words_lm_eval, count_words_plus_eos


def compute(name, predictions, references, settings=None):
    return build_metric(name, settings).compute(predictions, references, rng=np.random.default_rng(0), n_resamples=200)


def test_corpus_level_formulas():
    texts = ["a b c", "déjà vu  twice\n", " leading space"]
    logprobs = [-6.0, -9.5, -4.25]
    tokens = [4, 6, 3]
    predictions = [{"logprob": lp, "n_tokens": n} for lp, n in zip(logprobs, tokens)]
    total = sum(logprobs)
    words = sum(len(re.split(r"\s+", t)) for t in texts)  # 3 + 4 + 3: empty pieces count, as in lm-eval
    assert words == 10
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    assert compute("word_perplexity", predictions, texts).value == pytest.approx(math.exp(-total / words))
    assert compute("token_perplexity", predictions, texts).value == pytest.approx(math.exp(-total / 13))
    assert compute("byte_perplexity", predictions, texts).value == pytest.approx(math.exp(-total / n_bytes))
    bpb = compute("bits_per_byte", predictions, texts).value
    assert bpb == pytest.approx(-total / (n_bytes * math.log(2)))
    assert compute("byte_perplexity", predictions, texts).value == pytest.approx(2**bpb)
    # Corpus-level, not the mean of document perplexities.
    per_document = np.mean([math.exp(-lp / len(re.split(r"\s+", t))) for lp, t in zip(logprobs, texts)])
    assert compute("word_perplexity", predictions, texts).value != pytest.approx(per_document)
    assert compute("word_perplexity", predictions, texts).higher_is_better is False


def test_counting_rules():
    assert count_words_lm_eval(" = Title = \n") == 5  # '', '=', 'Title', '=', ''
    assert count_words_plus_eos("no it was n't black monday") == 7
    assert count_words_plus_eos("a b\n\nc\n") == 2 + 1 + 1 + 1 + 1  # blank lines carry an <eos> too
    assert count_words_plus_eos("") == 1


def test_signature_states_unit_counting_and_averaging():
    signature = build_metric("word_perplexity", {"counting": "words_plus_eos"}).signature()
    assert signature.context == {"unit": "word", "count": "whitespace tokens + 1 <eos> per line", "average": "corpus"}
    assert signature.settings["counting"] == "words_plus_eos"
    assert signature.format().startswith("word_perplexity|unit:word|count:whitespace tokens + 1 <eos> per line|average:corpus|")
    assert r"count:len(re.split(r'\s+',text))" in build_metric("word_perplexity").signature()
    assert "count:len(text.encode('utf-8'))" in build_metric("bits_per_byte").signature()


def test_bad_predictions_are_errors():
    with pytest.raises(MetricInputError, match="prediction 0: 'logprob' is 2.0 > 0"):
        compute("word_perplexity", [{"logprob": 2.0, "n_tokens": 1}], ["a"])
    with pytest.raises(MetricInputError, match=r"prediction 1 is None; expected \{'logprob'"):
        compute("bits_per_byte", [{"logprob": -1.0, "n_tokens": 1}, None], ["a", "b"])
    with pytest.raises(MetricInputError, match="'n_tokens' is 2.5, not a count"):
        compute("token_perplexity", [{"logprob": -1.0, "n_tokens": 2.5}], ["a"])
    with pytest.raises(MetricInputError, match="'logprob' is nan"):
        compute("byte_perplexity", [{"logprob": float("nan"), "n_tokens": 1}], ["a"])
    with pytest.raises(MetricInputError, match="no bytes to normalise by"):
        compute("byte_perplexity", [{"logprob": -1.0, "n_tokens": 1}], [""])


@pytest.mark.shared_data
def test_ptb_test_has_the_standard_82430_tokens(shared_data):
    data = load_examples(TaskCatalog().load("lm/ptb"), shared_data)
    texts = [example["text"] for example in data.examples]
    assert len(texts) == 3761
    assert texts[0] == "no it was n't black monday"  # surrounding spaces stripped
    assert sum(count_words_plus_eos(t) for t in texts) == 82430
    assert sum(len(t.split()) for t in texts) == 78669
    # Word perplexity uses exactly that normaliser.
    predictions = [{"logprob": -2.0 * count_words_plus_eos(t), "n_tokens": 1} for t in texts]
    result = compute("word_perplexity", predictions, texts, {"counting": "words_plus_eos"})
    assert result.value == pytest.approx(math.exp(2.0))


@pytest.mark.shared_data
def test_wikitext2_articles_partition_the_test_file(shared_data):
    raw = (shared_data / "wikitext-2/wiki.test.tokens.txt").read_text(encoding="utf-8")
    data = load_examples(TaskCatalog().load("lm/wikitext2"), shared_data)
    pages = [example["text"] for example in data.examples]
    assert len(pages) == 62
    assert all(page.startswith(" = ") and not page.startswith(" = = ") for page in pages)
    assert pages[0].startswith(" = Robert <unk> = \n")
    # Only the blank first line (before the first heading) is not part of an article.
    assert " \n" + "\n".join(pages) == raw
    assert count_words_plus_eos(" \n" + "\n".join(pages)) == 245569  # MANIFEST: tokens incl. <eos>
    assert sum(len(re.split(r"\s+", p)) for p in pages) == sum(count_words_lm_eval(p) for p in pages)
    sections = sum(page.count("\n = = ") for page in pages)
    assert sections > 62  # section headings stay inside their article


@pytest.mark.shared_data
def test_lm_tasks_respect_limit(shared_data):
    catalog = TaskCatalog()
    for name, total in [("lm/ptb", 3761), ("lm/wikitext2", 62)]:
        data = load_examples(catalog.load(name), shared_data, limit=5)
        assert len(data.examples) == 5 and data.n_available == total
