"""The sequence-classifier adapter and label mapping, on tiny real checkpoints."""

from __future__ import annotations

import pytest

from evalharness.errors import ModelError, UsageError
from evalharness.models import load_model
from evalharness.prompting.heads import resolve_label_map
from evalharness.types import RequestKind

TEXTS = ["the movie was great .", "what a boring film", "a " * 400, "it is not good"]


def test_kind_detection_and_provenance(tiny_classifier):
    adapter = load_model(str(tiny_classifier))
    assert adapter.kind == "sequence_classifier" and RequestKind.CLASSIFY in adapter.answers
    assert adapter.labels == ("negative", "positive") and not adapter.is_regression
    info = adapter.info
    assert info.fingerprint.startswith("sha256:") and info.device == "cpu" and info.dtype == "float32"
    assert info.architecture == "BertForSequenceClassification" and info.num_parameters > 0


def test_fingerprint_changes_with_weights(tiny_classifier, tmp_path, tiny_tokenizer):
    from evalharness.testing.tiny import build_classifier

    other = build_classifier(tmp_path / "other", tiny_tokenizer, ["negative", "positive"], seed=99)
    assert load_model(str(tiny_classifier)).info.fingerprint != load_model(str(other)).info.fingerprint


def test_batch_size_does_not_change_logits(tiny_classifier):
    adapter = load_model(str(tiny_classifier))
    one = adapter.classify(TEXTS, batch_size=1)
    many = adapter.classify(TEXTS, batch_size=16)
    for a, b in zip(one, many):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_long_input_is_truncated_and_flagged(tiny_classifier):
    responses = load_model(str(tiny_classifier)).classify(TEXTS)
    assert [r.truncated for r in responses] == [False, False, True, False]


def test_sentence_pairs(tiny_classifier):
    adapter = load_model(str(tiny_classifier))
    single = adapter.classify(["the movie"])[0].scores
    pair = adapter.classify([("the movie", "was great")])[0].scores
    assert single != pair and len(pair) == 2


def test_regression_head(tiny_regressor):
    adapter = load_model(str(tiny_regressor))
    assert adapter.is_regression and len(adapter.classify(["a b"])[0].scores) == 1


def test_label_map_by_name_ignores_case_and_separators():
    assert resolve_label_map(["NEGATIVE", "Positive"], ["negative", "positive"], None) == ("negative", "positive")
    assert resolve_label_map(["not-entailment", "entailment"], ["entailment", "not_entailment"], None) == ("not_entailment", "entailment")


def test_label_map_generic_labels_fail_with_a_suggested_override():
    with pytest.raises(ModelError, match=r"--label-map LABEL_0=negative,LABEL_1=positive"):
        resolve_label_map(["LABEL_0", "LABEL_1"], ["negative", "positive"], None)


def test_label_map_override_by_name_or_index():
    assert resolve_label_map(["LABEL_0", "LABEL_1"], ["neg", "pos"], {"LABEL_0": "pos", "LABEL_1": "neg"}) == ("pos", "neg")
    assert resolve_label_map(["LABEL_0", "LABEL_1"], ["neg", "pos"], {"0": "neg", "1": "pos"}) == ("neg", "pos")
    with pytest.raises(UsageError, match="'bogus' is not a task label"):
        resolve_label_map(["LABEL_0"], ["neg"], {"LABEL_0": "bogus"})


def test_missing_config_and_corrupted_weights_are_model_errors(tiny_classifier, tmp_path):
    import shutil

    with pytest.raises(ModelError, match="has no config.json"):
        load_model(str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_classifier, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot load weights"):
        load_model(str(broken))
