"""Invariance-suite inputs for the GLUE, SQuAD, language-modelling and interop metrics.

``CASES[metric_name]`` gives settings, references, predictions that are all right
(``perfect``) and predictions with mistakes (``imperfect``); ``best`` is the score perfect
predictions must reach. Plain data only: ``tests/test_metric_invariance.py`` runs the same
checks over every registered metric and fails when one has no case here or in another
``tests/metric_cases_*.py``.
"""

from __future__ import annotations

from pathlib import Path

_LABELS = ["yes", "no", "yes", "yes", "no", "no", "yes", "no", "yes", "yes", "no", "yes", "no", "no", "yes", "no"]
_WRONG = ["yes", "yes", "yes", "no", "no", "no", "yes", "no", None, "yes", "yes", "yes", "no", "yes", "yes", "no"]

_NLI = ["entailment", "neutral", "contradiction"] * 5
_NLI_WRONG = ["entailment", "neutral", "neutral", "entailment", "contradiction", "contradiction",
              "entailment", "neutral", "contradiction", None, "neutral", "contradiction",
              "entailment", "entailment", "contradiction"]

_SCORES = [0.0, 0.4, 1.2, 1.75, 2.0, 2.5, 3.1, 3.3, 3.8, 4.0, 4.6, 5.0, 0.8, 2.9]
_NOISY = [0.5, 0.2, 1.9, 1.1, 2.7, 2.2, 2.8, 3.9, 3.0, 4.4, 4.1, 4.7, 1.5, 2.1]

# SQuAD v2-style: answer lists ([] = unanswerable) and answer texts.
_ANSWERS = [
    ["Denver Broncos", "the Denver Broncos"], [], ["1066"], ["Saint Bernadette Soubirous"], [],
    ["a golden statue of the Virgin Mary"], ["September 1876", "1876"], [], ["three"],
    ["the Main Building"], [], ["France"], ["10th and 11th centuries"], [],
]
_PERFECT_ANSWERS = [a[0] if a else "" for a in _ANSWERS]
_PROBABILITIES = [0.1, 0.9, 0.2, 0.05, 0.6, 0.3, 0.3, 0.4, 0.75, 0.15, 0.2, 0.01, 0.5, 0.95]
_IMPERFECT_TEXTS = [
    "Broncos", "Carolina Panthers", "1066", "Bernadette", "", "golden statue", "1876", "",
    "two", "the Main Building.", "a dome", None, "in the 10th century", "",
]


def _qa(texts, probabilities=None):
    if probabilities is None:
        return list(texts)
    return [None if t is None else {"text": t, "no_answer_probability": p} for t, p in zip(texts, probabilities)]


_DOCS = [
    " = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 is a tactical role @-@ playing game . \n",
    "no it was n't black monday",
    "the dow jones industrial average plunged N points",
    " = = Gameplay = = \n \n The game 's battle system <unk> \n",
    "naïve café — ünïcödé bytes",
    "some circuit breakers failed their first test",
    "traders say",
    "a b c d e f g h",
    "one more document with several words in it",
    "short",
    "x y",
    "the end",
]
_LOGPROBS = [-95.0, -21.5, -30.2, -40.0, -60.1, -25.0, -9.9, -30.0, -33.3, -5.5, -12.0, -7.25]
_TOKENS = [31, 7, 9, 12, 20, 8, 3, 8, 10, 2, 4, 3]


def _lm(logprobs, tokens):
    return [{"logprob": lp, "n_tokens": n} for lp, n in zip(logprobs, tokens)]


_LM = {
    "settings": {},
    "references": _DOCS,
    "perfect": _lm([0.0] * len(_DOCS), _TOKENS),
    "imperfect": _lm(_LOGPROBS, _TOKENS),
    "best": 1.0,
}

_EVALUATE_MODULE = str(Path(__file__).resolve().parent / "evaluate_modules" / "exact_match_local")

CASES = {
    "accuracy": {"settings": {}, "references": _LABELS, "perfect": _LABELS, "imperfect": _WRONG, "best": 100.0},
    "f1": {
        "settings": {"positive_label": "yes"},
        "references": _LABELS, "perfect": _LABELS, "imperfect": _WRONG, "best": 100.0,
    },
    "mcc": {"settings": {}, "references": _NLI, "perfect": _NLI, "imperfect": _NLI_WRONG, "best": 100.0},
    "pearson": {"settings": {}, "references": _SCORES, "perfect": _SCORES, "imperfect": _NOISY, "best": 100.0},
    "spearman": {"settings": {}, "references": _SCORES, "perfect": _SCORES, "imperfect": _NOISY, "best": 100.0},
    "squad_exact": {
        "settings": {},
        "references": _ANSWERS, "perfect": _qa(_PERFECT_ANSWERS), "imperfect": _qa(_IMPERFECT_TEXTS), "best": 100.0,
    },
    "squad_f1": {
        "settings": {"subset": "has_ans"},
        "references": _ANSWERS, "perfect": _qa(_PERFECT_ANSWERS), "imperfect": _qa(_IMPERFECT_TEXTS), "best": 100.0,
    },
    "squad_best_exact": {
        "settings": {},
        "references": _ANSWERS,
        "perfect": _qa(_PERFECT_ANSWERS, _PROBABILITIES),
        "imperfect": _qa(_IMPERFECT_TEXTS, _PROBABILITIES),
        "best": 100.0,
    },
    "squad_best_f1": {
        "settings": {},
        "references": _ANSWERS,
        "perfect": _qa(_PERFECT_ANSWERS, _PROBABILITIES),
        "imperfect": _qa(_IMPERFECT_TEXTS, _PROBABILITIES),
        "best": 100.0,
    },
    "token_perplexity": _LM,
    "word_perplexity": {**_LM, "settings": {"counting": "lm_eval"}},
    "byte_perplexity": _LM,
    "bits_per_byte": {**_LM, "best": 0.0},
    "hf_evaluate": {
        "settings": {"path": _EVALUATE_MODULE, "scale": 100.0, "per_example": True},
        "references": _LABELS, "perfect": _LABELS, "imperfect": [w or "" for w in _WRONG], "best": 100.0,
    },
}
