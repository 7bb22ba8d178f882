"""``evalharness score`` on published SQuAD dev predictions reproduces the official numbers.

Provenance: the prediction files are the leaderboard systems' dev predictions from
SQuAD-explorer (../shared/data/squad/explorer_dev_predictions); the expected EM/F1 are the
official evaluate-v1.1/v2.0.py results stated in ../shared/data/MANIFEST.md (BERT ensemble
v1.1 matches the BERT paper's 86.2 / 92.2 dev numbers).
"""

from __future__ import annotations

import json

import pytest

from evalharness.records.record import load_record

pytestmark = pytest.mark.shared_data

PREDICTIONS = "squad/explorer_dev_predictions"


def score(cli, shared_data, task, system, *extra):
    path = shared_data / PREDICTIONS / system
    return cli("score", "--task", task, "--predictions", str(path), "--data-dir", str(shared_data), *extra)


def test_v2_bert_single_matches_the_official_script(cli, shared_data, tmp_path):
    result = score(cli, shared_data, "squad/v2", "v2.0/BERT_single_GoogleAI.json", "--run-dir", str(tmp_path / "bert"))
    assert result.returncode == 0, result.stderr
    metrics = {key: round(entry["value"], 3) for key, entry in json.loads(result.stdout)["metrics"].items()}
    assert metrics["exact"] == 78.742 and metrics["f1"] == 81.775
    assert metrics["HasAns_exact"] == 74.106 and metrics["HasAns_f1"] == 80.182 and metrics["NoAns_exact"] == 83.364
    record = load_record(tmp_path / "bert")
    assert record.model.source == "predictions" and record.tasks["squad/v2"].n_examples == 11873


def test_v1_bert_ensemble_matches_the_published_dev_score(cli, shared_data):
    result = score(cli, shared_data, "squad/v1", "v1.1/BERT_ensemble_GoogleAI.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert round(metrics["exact_match"]["value"], 3) == 86.206 and round(metrics["f1"]["value"], 3) == 92.196


def test_v1_0_baseline_file_is_refused_with_counts(cli, shared_data):
    # The logistic-regression file predates v1.1 dev: 13 ids missing, 28 extra (MANIFEST).
    result = score(cli, shared_data, "squad/v1", "v1.1/LogisticRegression_baseline_Stanford.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "13" in result.stderr and "28" in result.stderr
