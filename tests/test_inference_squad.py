"""Clustered intervals on real data: SQuAD v2.0 dev questions share paragraphs.

Data: the dev set reconstructed from the official SQuAD explorer pages and the published
dev predictions of BERT (single, Google AI) and nlnet (single, MSRA) in shared/data (see its
MANIFEST.md; the means below are the MANIFEST's official-script scores). Skipped when the
shared data is absent. ``benchmarks/clustered_squad.py`` prints the full table.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evalharness.inference import cluster_robust_mean, paired_difference
from evalharness.metrics import build_metric

DEV = "squad/dev_reconstructed_from_explorer_html/dev-v2.0.from_explorer_html.json"
PREDICTIONS = "squad/explorer_dev_predictions/v2.0/{}.json"

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def squad_f1(shared_data):
    document = json.loads((shared_data / DEV).read_text(encoding="utf-8"))
    ids, answers, paragraphs = [], [], []
    for article in document["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                answers.append([answer["text"] for answer in qa["answers"]])
                paragraphs.append(f"{article['title']}#{number}")
    metric = build_metric("squad_f1")
    scores = {}
    for system in ("BERT_single_GoogleAI", "nlnet_single_MSRA"):
        predictions = json.loads((shared_data / PREDICTIONS.format(system)).read_text(encoding="utf-8"))
        scores[system] = 100 * metric.example_stats([predictions[i] for i in ids], answers)[:, 0]
    return scores, paragraphs


def test_squad_questions_clustered_by_paragraph_widen_the_interval(squad_f1):
    scores, paragraphs = squad_f1
    bert = scores["BERT_single_GoogleAI"]
    assert bert.mean() == pytest.approx(81.775, abs=5e-4)  # official evaluate-v2.0.py F1 (MANIFEST)
    naive = scipy_stats.t.interval(0.95, bert.size - 1, loc=bert.mean(), scale=scipy_stats.sem(bert))
    clustered = cluster_robust_mean(bert, paragraphs)
    assert clustered.clusters == 1204 and clustered.estimate == pytest.approx(bert.mean())
    assert clustered.width > 1.1 * (naive[1] - naive[0])


def test_squad_paired_difference_clustered_by_paragraph_is_wider_than_naive(squad_f1):
    scores, paragraphs = squad_f1
    candidate, baseline = scores["BERT_single_GoogleAI"], scores["nlnet_single_MSRA"]
    naive = paired_difference(candidate, baseline, bounds=(0.0, 100.0))
    clustered = paired_difference(candidate, baseline, bounds=(0.0, 100.0), clusters=paragraphs)
    assert naive.estimate == pytest.approx(81.775 - 78.778, abs=1e-3)
    assert clustered.width > naive.width and np.isfinite(clustered.width)
