"""SQuAD exact match / F1 against an independent oracle and the published dev predictions.

Provenance:
- ``Oracle`` below is written here from the rules of the official ``evaluate-v1.1.py`` and
  ``evaluate-v2.0.py`` scripts (rajpurkar/SQuAD-explorer): normalise (lowercase → drop ASCII
  punctuation → replace the words a/an/the by a space → collapse whitespace), token-multiset
  F1, maximum over gold answers; v2.0 drops gold answers that normalise to nothing, scores
  unanswerable questions against "", applies ``--na-prob-thresh`` and ``find_best_thresh``.
- The published dev-set predictions of 8 leaderboard systems (``squad/explorer_dev_predictions``)
  scored against the dev sets reconstructed from the explorer pages must reproduce the
  numbers in ../shared/data/MANIFEST.md to the printed precision (three decimals), which were
  obtained with the official evaluate-v2.0.py (run without an --na-prob-file).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter

import numpy as np
import pytest

from evalharness.spec.catalog import TaskCatalog
from evalharness.data import load_examples
from evalharness.errors import MetricInputError
from evalharness.metrics import build_metric


PUNCTUATION = set(string.punctuation)


class Oracle:
    """The official scripts' scoring, restated independently of evalharness."""

    @staticmethod
    def normalise(text):
        text = text.lower()
        text = "".join(ch for ch in text if ch not in PUNCTUATION)
        text = re.sub(r"\b(a|an|the)\b", " ", text)
        return " ".join(text.split())

    @classmethod
    def tokens(cls, text):
        return cls.normalise(text).split() if text else []

    @classmethod
    def f1_v1(cls, prediction, gold):
        p, g = cls.normalise(prediction).split(), cls.normalise(gold).split()
        overlap = sum((Counter(p) & Counter(g)).values())
        if overlap == 0:
            return 0.0
        precision, recall = overlap / len(p), overlap / len(g)
        return 2 * precision * recall / (precision + recall)

    @classmethod
    def f1_v2(cls, prediction, gold):
        p, g = cls.tokens(prediction), cls.tokens(gold)
        if not p or not g:
            return float(p == g)
        return cls.f1_v1(prediction, gold)

    @classmethod
    def v1(cls, predictions, dataset):
        """evaluate-v1.1.py: {exact_match, f1}; a missing prediction scores 0."""
        em = f1 = 0.0
        for qid, answers in dataset.items():
            if qid not in predictions:
                continue
            pred = predictions[qid]
            em += max(float(cls.normalise(pred) == cls.normalise(a)) for a in answers)
            f1 += max(cls.f1_v1(pred, a) for a in answers)
        return {"exact_match": 100 * em / len(dataset), "f1": 100 * f1 / len(dataset)}

    @classmethod
    def v2(cls, predictions, dataset, probabilities=None, threshold=1.0):
        """evaluate-v2.0.py's output dict (every question has a prediction here)."""
        probabilities = probabilities or {qid: 0.0 for qid in predictions}
        has_answer = {qid: bool(answers) for qid, answers in dataset.items()}
        raw_exact, raw_f1 = {}, {}
        for qid, answers in dataset.items():
            golds = [a for a in answers if cls.normalise(a)] or [""]
            pred = predictions[qid]
            raw_exact[qid] = max(float(cls.normalise(pred) == cls.normalise(a)) for a in golds)
            raw_f1[qid] = max(cls.f1_v2(pred, a) for a in golds)

        def thresholded(raw):
            return {q: float(not has_answer[q]) if probabilities[q] > threshold else s for q, s in raw.items()}

        def mean(scores, qids):
            return 100 * sum(scores[q] for q in qids) / len(qids) if qids else None

        def best(raw):
            score = best_score = sum(not h for h in has_answer.values())
            for qid in sorted(probabilities, key=lambda q: probabilities[q]):
                if has_answer[qid]:
                    score += raw[qid]
                else:
                    score += -1 if predictions[qid] else 0
                best_score = max(best_score, score)
            return 100 * best_score / len(raw)

        exact, f1 = thresholded(raw_exact), thresholded(raw_f1)
        everything = list(dataset)
        answerable = [q for q in everything if has_answer[q]]
        unanswerable = [q for q in everything if not has_answer[q]]
        return {
            "exact": mean(exact, everything), "f1": mean(f1, everything),
            "HasAns_exact": mean(exact, answerable), "HasAns_f1": mean(f1, answerable),
            "NoAns_exact": mean(exact, unanswerable), "NoAns_f1": mean(f1, unanswerable),
            "best_exact": best(raw_exact), "best_f1": best(raw_f1),
        }


def point_scores(task, predictions, references):
    """Every metric of the task by its record key (point estimates, no interval)."""
    out = {}
    for spec in task.spec.metrics:
        metric = build_metric(spec.name, spec.settings)
        metric.check_inputs(predictions, references)
        out[spec.result_key] = metric.aggregate(metric.example_stats(predictions, references))
    return out


def load_squad(shared_data, name):
    task = TaskCatalog().load(name)
    examples = load_examples(task, shared_data).examples
    return task, examples, {e.id: e["answers"] for e in examples}


PUBLISHED_V1 = {  # MANIFEST.md, second pass: official script on the reconstructed dev set
    "BERT_ensemble_GoogleAI": (86.206, 92.196),
    "MatchLSTM_AnsPtr_boundary_ensemble_SMU": (67.635, 76.756),
    "SLQAplus_ensemble_Alibaba": (81.949, 88.384),
    "rnetplus_ensemble_MSRA": (82.469, 88.478),
}
PUBLISHED_V2 = {
    "BERT_single_GoogleAI": {"exact": 78.742, "f1": 81.775, "HasAns_exact": 74.106, "HasAns_f1": 80.182, "NoAns_exact": 83.364},
    "nlnet_single_MSRA": {"exact": 75.828, "f1": 78.778},
    "BiDAF_SelfAttn_ELMo_single_AI2_Stanford": {"exact": 65.704, "f1": 67.876},
}


@pytest.mark.shared_data
def test_published_v1_predictions_reproduce_the_manifest(shared_data):
    task, examples, dataset = load_squad(shared_data, "squad/v1")
    assert len(examples) == 10570
    for system, (em, f1) in PUBLISHED_V1.items():
        predictions = json.loads((shared_data / f"squad/explorer_dev_predictions/v1.1/{system}.json").read_text())
        scores = point_scores(task, [predictions.get(e.id) for e in examples], [e["answers"] for e in examples])
        assert (round(scores["exact_match"], 3), round(scores["f1"], 3)) == (em, f1), system
        oracle = Oracle.v1(predictions, dataset)
        assert scores["exact_match"] == pytest.approx(oracle["exact_match"], abs=1e-9)
        assert scores["f1"] == pytest.approx(oracle["f1"], abs=1e-9)


@pytest.mark.shared_data
def test_v1_missing_predictions_count_as_zero(shared_data):
    """The LR baseline file predates v1.1 and lacks 13 of its ids: they score 0, over all 10,570."""
    task, examples, dataset = load_squad(shared_data, "squad/v1")
    predictions = json.loads((shared_data / "squad/explorer_dev_predictions/v1.1/LogisticRegression_baseline_Stanford.json").read_text())
    ours = [predictions.get(e.id) for e in examples]
    assert sum(p is None for p in ours) == 13
    scores = point_scores(task, ours, [e["answers"] for e in examples])
    assert (round(scores["exact_match"], 3), round(scores["f1"], 3)) == (40.142, 50.982)  # MANIFEST
    assert scores["f1"] == pytest.approx(Oracle.v1(predictions, dataset)["f1"], abs=1e-9)


@pytest.mark.shared_data
def test_published_v2_predictions_reproduce_the_manifest(shared_data):
    task, examples, dataset = load_squad(shared_data, "squad/v2")
    assert len(examples) == 11873
    assert sum(bool(a) for a in dataset.values()) == 5928 and sum(not a for a in dataset.values()) == 5945
    references = [e["answers"] for e in examples]
    for system, published in PUBLISHED_V2.items():
        predictions = json.loads((shared_data / f"squad/explorer_dev_predictions/v2.0/{system}.json").read_text())
        scores = point_scores(task, [predictions[e.id] for e in examples], references)
        for key, value in published.items():
            assert round(scores[key], 3) == value, (system, key)
        oracle = Oracle.v2(predictions, dataset)
        for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
            assert scores[key] == pytest.approx(oracle[key], abs=1e-9), (system, key)
        # No probabilities: every threshold either answers all or abstains on all.
        no_answer_score = 100 * 5945 / 11873
        assert scores["best_exact"] == pytest.approx(max(scores["exact"], no_answer_score))


@pytest.mark.shared_data
def test_v2_thresholds_and_best_threshold_match_the_oracle(shared_data):
    """Real v2.0 questions and BERT's answers, with seeded distinct no-answer probabilities."""
    task, examples, dataset = load_squad(shared_data, "squad/v2")
    examples = examples[:3000]
    dataset = {e.id: e["answers"] for e in examples}
    answers = json.loads((shared_data / "squad/explorer_dev_predictions/v2.0/BERT_single_GoogleAI.json").read_text())
    rng = np.random.default_rng(11)
    # Probabilities that lean towards the truth, so that a threshold helps.
    probabilities = {
        e.id: float(np.clip(rng.normal(0.35 if e["answers"] else 0.65, 0.25), 0, 1)) for e in examples
    }
    texts = {e.id: answers[e.id] or e["context"].split()[0] for e in examples}  # always answer
    predictions = [{"text": texts[e.id], "no_answer_probability": probabilities[e.id]} for e in examples]
    references = [e["answers"] for e in examples]
    for threshold in (1.0, 0.5, 0.2):
        ours = {}
        for spec in task.spec.metrics:
            settings = dict(spec.settings)
            if spec.name in {"squad_exact", "squad_f1"}:
                settings["no_answer_threshold"] = threshold
            metric = build_metric(spec.name, settings)
            ours[spec.result_key] = metric.aggregate(metric.example_stats(predictions, references))
        oracle = Oracle.v2(texts, dataset, probabilities, threshold)
        for key, value in oracle.items():
            assert ours[key] == pytest.approx(value, abs=1e-9), (threshold, key)
        if threshold == 1.0:  # nothing forced to no-answer: the best threshold must help
            assert ours["best_exact"] > ours["exact"] and ours["best_f1"] > ours["f1"]


def test_v2_rules_on_edge_cases_match_the_oracle():
    dataset = {
        "punct": ["."],  # a gold answer that normalises to nothing is dropped -> scored as no-answer
        "article": ["the"],
        "unanswerable": [],
        "tie": ["Denver Broncos", "Broncos"],
        "unicode": ["Saint Bernadette’s grotto"],
    }
    predictions = {"punct": "", "article": "an", "unanswerable": "A", "tie": "the broncos", "unicode": "bernadette’s"}
    oracle = Oracle.v2(predictions, dataset)
    for name, key in [("squad_exact", "exact"), ("squad_f1", "f1")]:
        result = build_metric(name).compute(list(predictions.values()), list(dataset.values()), rng=np.random.default_rng(0))
        assert result.value == pytest.approx(oracle[key], abs=1e-9)


def test_unanswerable_questions_are_never_dropped_and_plausible_answers_never_count():
    metric = build_metric("squad_exact")
    rng = np.random.default_rng(0)
    references = [["Paris"], []]
    assert metric.compute(["Paris", ""], references, rng=rng).value == 100.0
    assert metric.compute(["Paris", "Lyon"], references, rng=rng).value == 50.0  # a plausible answer is wrong
    assert metric.compute(["Paris", None], references, rng=rng).value == 50.0  # missing is wrong, not "no answer"
    no_ans = build_metric("squad_f1", {"subset": "no_ans"}).compute(["Paris", "Lyon"], references, rng=rng)
    assert no_ans.value == 0.0 and no_ans.n == 1  # only the unanswerable question enters NoAns
    has_ans = build_metric("squad_f1", {"subset": "has_ans"}).compute(["Paris", "Lyon"], references, rng=rng)
    assert has_ans.value == 100.0
    # No unanswerable question in scope (e.g. --limit): NoAns is undefined, not 0.
    assert build_metric("squad_exact", {"subset": "no_ans"}).compute(["Paris"], [["Paris"]], rng=rng).value is None


def test_no_answer_threshold_turns_answers_into_no_answer():
    predictions = [{"text": "Lyon", "no_answer_probability": 0.8}, {"text": "Paris", "no_answer_probability": 0.8}]
    references = [[], ["Paris"]]
    rng = np.random.default_rng(0)
    assert build_metric("squad_exact").compute(predictions, references, rng=rng).value == 50.0  # default 1.0: kept
    assert build_metric("squad_exact", {"no_answer_threshold": 0.5}).compute(predictions, references, rng=rng).value == 50.0
    assert build_metric("squad_best_exact").compute(predictions, references, rng=rng).value == 50.0
    # Equal probabilities cannot be separated by a threshold, whatever the example order.
    tied = [{"text": "Paris", "no_answer_probability": 0.3}, {"text": "Lyon", "no_answer_probability": 0.3}]
    for order in ([0, 1], [1, 0]):
        value = build_metric("squad_best_exact").compute([tied[i] for i in order], [[["Paris"], []][i] for i in order], rng=rng).value
        assert value == 50.0


def test_v1_rules_refuse_unanswerable_questions_and_keep_empty_gold_answers():
    rng = np.random.default_rng(0)
    v1 = build_metric("squad_exact", {"rules": "v1.1"})
    with pytest.raises(MetricInputError, match=r"reference 1 has no gold answer.*rules: v2.0"):
        v1.compute(["a", "b"], [["a"], []], rng=rng)
    # evaluate-v1.1.py keeps a gold "." (normalises to ""): a prediction normalising to "" matches it.
    assert v1.compute(["!"], [["Paris", "."]], rng=rng).value == 100.0
    assert build_metric("squad_exact").compute(["!"], [["Paris", "."]], rng=rng).value == 0.0
    assert "impl:official-squad-evaluate-v1.1.py" in v1.signature()


def test_prediction_contract_errors_name_the_example():
    rng = np.random.default_rng(0)
    metric = build_metric("squad_f1")
    with pytest.raises(MetricInputError, match=r"prediction 1 is \{'answer': 'x'\}"):
        metric.compute(["a", {"answer": "x"}], [["a"], ["x"]], rng=rng)
    with pytest.raises(MetricInputError, match="prediction 0: 'no_answer_probability' is 'high'"):
        metric.compute([{"text": "a", "no_answer_probability": "high"}], [["a"]], rng=rng)
    with pytest.raises(MetricInputError, match="reference 0 is 'a'; expected a list"):
        metric.compute(["a"], ["a"], rng=rng)

