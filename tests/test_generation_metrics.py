"""Translation (sacrebleu) and summarization (rouge-score) metrics against their reference
implementations, called directly on the same inputs. Real-data golden tests live in
``test_wmt_golden.py`` and ``test_cnndm_golden.py``."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from evalharness.spec.catalog import validate_paths
from evalharness.errors import MetricInputError
from evalharness.metrics import build_metric
from evalharness.metrics.lcs import lcs_indices, lcs_length, summary_level_hits
from evalharness.metrics.summarization import split_sentences
from evalharness.stats import bootstrap_interval

HYPOTHESES = [
    "The cat sat on the mat near the door.",
    "A quick brown fox jumped over a lazy dog today.",
    "It was raining heavily in the city all day long.",
    "He said that the meeting would start at noon tomorrow.",
    "Prices rose by three percent in the last quarter.",
    "",
]
REFS_A = [
    "The cat was sitting on the mat by the door.",
    "The quick brown fox jumps over the lazy dog.",
    "It rained heavily in the city for the whole day.",
    "He said the meeting will begin at noon tomorrow.",
    "Prices increased by 3 percent in the past quarter.",
    "Nothing.",
]
REFS_B = [
    "A cat sat on the mat close to the door.",
    "A fast brown fox leapt over the lazy dog today.",
    "Heavy rain fell on the city all day.",
    "The meeting starts at noon tomorrow, he said.",
    "In the last quarter prices went up three percent.",
    "Nothing at all.",
]
REFERENCES = [[a, b] for a, b in zip(REFS_A, REFS_B)]


def _compute(name, settings=None, predictions=HYPOTHESES, references=REFERENCES):
    return build_metric(name, settings).compute(predictions, references, rng=np.random.default_rng(0), n_resamples=200)


@pytest.mark.parametrize(
    ("name", "settings", "reference"),
    [
        ("bleu", {}, lambda h, r: sacrebleu.corpus_bleu(h, r)),
        ("bleu", {"lowercase": True, "tokenize": "intl"}, lambda h, r: sacrebleu.corpus_bleu(h, r, lowercase=True, tokenize="intl")),
        ("chrf", {}, lambda h, r: sacrebleu.corpus_chrf(h, r)),
        ("chrf++", {}, lambda h, r: sacrebleu.corpus_chrf(h, r, word_order=2)),
        ("ter", {}, lambda h, r: sacrebleu.corpus_ter(h, r)),
    ],
)
def test_sacrebleu_metrics_equal_sacrebleu_corpus_scores(name, settings, reference):
    expected = reference(HYPOTHESES, [REFS_A, REFS_B]).score
    assert _compute(name, settings).value == expected
    single = reference(HYPOTHESES, [REFS_A]).score
    assert _compute(name, {**settings, "references": [0]}).value == single
    assert _compute(name, {**settings, "references": [1]}).value == reference(HYPOTHESES, [REFS_B]).score


def test_corpus_bleu_is_not_the_mean_of_sentence_bleu():
    result = _compute("bleu", {"references": [0]})
    sentence = [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(HYPOTHESES, REFS_A)]
    assert result.value == pytest.approx(sacrebleu.corpus_bleu(HYPOTHESES, [REFS_A]).score)
    assert abs(result.value - np.mean(sentence)) > 1.0


def test_bleu_statistics_are_sacrebleus_per_segment_statistics():
    metric = build_metric("bleu")
    stats = metric.example_stats(HYPOTHESES, REFERENCES)
    expected = sacrebleu.BLEU()._extract_corpus_statistics(HYPOTHESES, [REFS_A, REFS_B])
    assert stats.tolist() == expected
    assert stats.shape == (6, 10)


def test_ter_is_lower_is_better_and_zero_for_perfect_output():
    metric = build_metric("ter")
    assert metric.higher_is_better is False
    assert _compute("ter", predictions=REFS_A).value == 0.0


def test_signature_embeds_sacrebleus_signature_and_version():
    result = _compute("bleu", {"trg_lang": "de"})
    assert f"sacrebleu:[nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}]" in result.signature
    assert "trg_lang:de" in result.signature and "impl:sacrebleu.metrics.BLEU==" in result.signature
    single = _compute("chrf", {"references": [0]})
    assert "sacrebleu:[nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:" in single.signature


def test_target_language_selects_sacrebleus_tokenizer():
    hypotheses = ["我喜欢吃苹果。", "今天天气很好。"]
    references = [["我爱吃苹果。"], ["今天的天气很好。"]]
    result = _compute("bleu", {"trg_lang": "zh"}, hypotheses, references)
    expected = sacrebleu.BLEU(trg_lang="zh").corpus_score(hypotheses, [[r[0] for r in references]])
    assert result.value == expected.score
    assert "tok:zh" in result.signature


def test_variable_number_of_references_per_example():
    references = [REFERENCES[0], REFERENCES[1][:1], *REFERENCES[2:]]
    result = _compute("bleu", predictions=HYPOTHESES, references=references)
    streams = [REFS_A, [REFS_B[0], None, *REFS_B[2:]]]
    assert result.value == sacrebleu.corpus_bleu(HYPOTHESES, streams).score
    assert "nrefs:var" in result.signature


def test_bootstrap_through_summed_statistics_equals_rescoring_resamples():
    metric = build_metric("bleu")
    stats = metric.example_stats(HYPOTHESES * 5, REFERENCES * 5)
    common = dict(aggregate=metric.aggregate, n_resamples=100)
    fast = bootstrap_interval(stats, aggregate_sums=metric.aggregate_sums, rng=np.random.default_rng(3), **common)
    slow = bootstrap_interval(stats, aggregate_sums=None, rng=np.random.default_rng(3), **common)
    assert (fast.low, fast.high, fast.stderr) == pytest.approx((slow.low, slow.high, slow.stderr))


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge1", "rougeLsum"])
def test_bad_inputs_are_errors_naming_the_example(name):
    with pytest.raises(MetricInputError, match="prediction 1 should be the generated text"):
        _compute(name, predictions=["a b c", None], references=[["a b c"], ["d e f"]])
    with pytest.raises(MetricInputError, match="example 1 has 1 reference"):
        _compute(name, {"references": [1]}, ["a b c", "d e f"], [["a", "b"], ["c"]])
    with pytest.raises(MetricInputError, match="example 0 has no references"):
        _compute(name, predictions=["a"], references=[[]])


def test_invalid_settings_name_the_task_file_and_field(tmp_path):
    spec = tmp_path / "mt.yaml"
    spec.write_text(
        "version: 1\nkind: generation\ndata: {local: {files: [a.txt, b.txt], format: parallel_text}}\n"
        "metrics:\n  - {name: bleu, settings: {tokenize: 13b}}\n  - {name: rougeLsum, settings: {sentence_split: nltk}}\n"
    )
    ((_, error),) = validate_paths([spec])
    assert f"{spec}:5: metrics[0].settings.tokenize: unknown sacrebleu tokenizer '13b'; did you mean '13a'?" in error


# -- ROUGE ------------------------------------------------------------------------------

SUMMARIES = [
    "the cats were sitting on the mats .\nthey looked happy .",
    "police arrested two men on friday after a robbery in the town centre .",
    "the government announced new taxes. critics said the plans would hurt families!",
    "",
]
TARGETS = [
    ["a cat sat on the mat .\nit was happy .", "cats sit on mats ."],
    ["two men were arrested by police on friday .\nthe robbery happened in the town centre ."],
    ["new taxes were announced by the government .\ncritics warn that families will suffer ."],
    ["nothing happened ."],
]


@pytest.mark.parametrize("use_stemmer", [True, False])
@pytest.mark.parametrize("name", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_equals_rouge_score_per_example(name, use_stemmer):
    settings = {"use_stemmer": use_stemmer, **({"sentence_split": "newline"} if name == "rougeLsum" else {})}
    metric = build_metric(name, settings)
    stats = metric.example_stats(SUMMARIES, TARGETS)
    scorer = rouge_scorer.RougeScorer([name], use_stemmer=use_stemmer)
    expected = [scorer.score_multi(targets, summary)[name] for summary, targets in zip(SUMMARIES, TARGETS)]
    assert stats[:, :3].tolist() == [[100 * s.precision, 100 * s.recall, 100 * s.fmeasure] for s in expected]
    result = metric.compute(SUMMARIES, TARGETS, rng=np.random.default_rng(0))
    assert result.value == pytest.approx(np.mean([100 * s.fmeasure for s in expected]), abs=1e-12)
    assert result.ci_method.startswith("bootstrap-percentile") and 0 <= result.ci[0] <= result.ci[1] <= 100
    assert f"use_stemmer:{use_stemmer}" in result.signature


def test_stemming_is_explicit_and_changes_the_score():
    with_stem = _compute("rouge1", {"use_stemmer": True}, SUMMARIES[:1], TARGETS[:1]).value
    without = _compute("rouge1", {"use_stemmer": False}, SUMMARIES[:1], TARGETS[:1]).value
    assert with_stem > without
    assert "stemmer:nltk-porter==" in _compute("rouge1", {}, SUMMARIES, TARGETS).signature


def test_rouge_lsum_without_newlines_is_split_not_silently_rouge_l():
    flat_summaries = [s.replace("\n", " ") for s in SUMMARIES[:3]]
    flat_targets = [[t.replace("\n", " ") for t in targets] for targets in TARGETS[:3]]
    rouge_l = _compute("rougeL", {}, flat_summaries, flat_targets).value
    # The trap: newline-only splitting turns every flat text into one sentence.
    assert _compute("rougeLsum", {"sentence_split": "newline"}, flat_summaries, flat_targets).value == rouge_l
    auto = _compute("rougeLsum", {}, flat_summaries, flat_targets)
    assert auto.value != rouge_l
    # ...and auto on flat text equals rouge-score on the same text split by split_sentences().
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    expected = [
        max(scorer.score("\n".join(split_sentences(t)), "\n".join(split_sentences(s)))["rougeLsum"].fmeasure for t in targets)
        for s, targets in zip(flat_summaries, flat_targets)
    ]
    assert auto.value == pytest.approx(100 * np.mean(expected), abs=1e-12)
    assert "sentence_split:auto" in auto.signature and "splitter:evalharness-regex-v1" in auto.signature


def test_split_sentences_rule():
    text = 'Mr. Smith went to Washington. He said: "It\'s great!" Then he left... The U.S. is big. Is it? yes.'
    assert split_sentences(text) == [
        "Mr. Smith went to Washington.",
        'He said: "It\'s great!"',
        "Then he left...",
        "The U.S. is big.",
        "Is it?",
        "yes.",
    ]
    # PTB-tokenized, lowercased text (CNN/DailyMail release): "word ." ends a sentence.
    assert split_sentences("obama spoke to the new york times . he said `` yes '' . dr. who ?") == [
        "obama spoke to the new york times .",
        "he said `` yes '' .",
        "dr. who ?",
    ]
    assert split_sentences("   ") == [] and split_sentences("no end") == ["no end"]


tokens = st.lists(st.sampled_from("abcde"), max_size=12)


@settings(max_examples=400, deadline=None)
@given(tokens, tokens)
def test_lcs_equals_rouge_scores_table_and_backtracking(ref, can):
    table = rouge_scorer._lcs_table(ref, can)
    assert lcs_length(ref, can) == table[-1][-1]
    assert lcs_indices(ref, can) == rouge_scorer._backtrack_norec(table, ref, can)


@settings(max_examples=300, deadline=None)
@given(st.lists(tokens, min_size=1, max_size=4), st.lists(tokens, min_size=1, max_size=4))
def test_summary_level_lcs_equals_rouge_score(ref_sents, can_sents):
    m, n = sum(map(len, ref_sents)), sum(map(len, can_sents))
    expected = rouge_scorer._summary_level_lcs(ref_sents, can_sents)
    if m and n:
        hits = summary_level_hits(ref_sents, can_sents)
        assert (hits / n, hits / m) == (expected.precision, expected.recall)
    else:
        assert expected.fmeasure == 0
