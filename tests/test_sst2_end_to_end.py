"""GLUE SST-2 from YAML to results.json with a real checkpoint and the real dev set.

Checks (issue 2): 872 examples, accuracy equal to ``sklearn.metrics.accuracy_score`` on the
per-example predictions, and equal to what a plain transformers loop gives on the same
checkpoint.
"""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import accuracy_score

from evalharness.records.record import load_record, read_samples

pytestmark = pytest.mark.shared_data


def plain_transformers_predictions(checkpoint, sentences):
    """The reference: a textbook transformers loop, no evalharness code involved."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(sentences), 64):
            batch = tokenizer(sentences[start : start + 64], padding=True, truncation=True, return_tensors="pt")
            ids = model(**batch).logits.argmax(-1).tolist()
            predictions.extend(model.config.id2label[i] for i in ids)
    return predictions


def test_sst2_run_end_to_end(cli, tmp_path, shared_data, tiny_classifier):
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_classifier), "--tasks", "glue/sst2", "--data-dir", str(shared_data), "--output", str(out), "--batch-size", "64")
    assert result.returncode == 0, result.stderr
    assert "glue/sst2" in result.stdout and "accuracy" in result.stdout

    record = load_record(out)
    task = record.tasks["glue/sst2"]
    assert task.n_examples == 872 and task.data.source == "local" and task.data.fingerprint.startswith("sha256:")
    assert record.model.fingerprint.startswith("sha256:") and record.environment["packages"]["torch"]
    samples = read_samples(out, "glue/sst2")
    predictions = [row["prediction"] for row in samples]
    golds = [row["gold"] for row in samples]
    accuracy = task.metrics["accuracy"]
    assert accuracy.value == pytest.approx(100 * accuracy_score(golds, predictions), abs=1e-9)
    assert accuracy.n == 872 and accuracy.ci[0] <= accuracy.value <= accuracy.ci[1]

    sentences = [row["input"] for row in samples]
    assert predictions == plain_transformers_predictions(str(tiny_classifier), sentences)
    json.loads((out / "results.json").read_text())  # strict JSON, no NaN


def test_generic_labels_need_a_label_map(cli, tmp_path, shared_data, tiny_generic_classifier):
    args = ["run", "--model", str(tiny_generic_classifier), "--tasks", "glue/sst2", "--data-dir", str(shared_data), "--limit", "20"]
    refused = cli(*args, "--output", str(tmp_path / "a"))
    assert refused.returncode == 2 and "--label-map LABEL_0=negative,LABEL_1=positive" in refused.stderr
    assert not (tmp_path / "a" / "results.json").exists()
    mapped = cli(*args, "--output", str(tmp_path / "b"), "--label-map", "LABEL_0=negative,LABEL_1=positive")
    assert mapped.returncode == 0, mapped.stderr
    assert load_record(tmp_path / "b").tasks["glue/sst2"].settings["label_map"] == {"0": "negative", "1": "positive"}


def test_regression_head_cannot_run_a_classification_task(cli, tmp_path, shared_data, tiny_regressor):
    result = cli("run", "--model", str(tiny_regressor), "--tasks", "glue/sst2", "--data-dir", str(shared_data), "--output", str(tmp_path))
    assert result.returncode == 2 and "regression head" in result.stderr
