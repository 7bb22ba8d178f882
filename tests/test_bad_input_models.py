"""Bad checkpoints through ``evalharness run`` (in-process): missing or corrupted weights, a
kind that cannot answer the task, tokenizers without a pad token, and NaN/inf outputs.

Policy for non-finite model outputs (NaN/inf logits or log-likelihoods): the run stops with
exit code 2 naming the task and the first affected example, and writes no results.json. A
NaN is never turned into a prediction (argmax over NaN would silently pick label 0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalharness.records.record import read_samples
from tests.inprocess import main  # noqa: F401 - pytest fixture

CLASSIFICATION = """\
version: 1
kind: classification
data:
  local:
    files: [d.tsv]
    format: tsv
    columns: {text: sentence, label: label}
labels: [negative, positive]
prompt:
  template: "Review: {{ text }}\\nSentiment:"
  choices: [" negative", " positive"]
metrics: [accuracy]
"""

GENERATION = """\
version: 1
kind: generation
data:
  local:
    files: [g.jsonl]
    format: jsonl
    columns: {source: src, references: refs}
prompt:
  template: "{{ source }} ="
generation: {max_new_tokens: 4}
metrics: [chrf]
"""

LANGUAGE_MODELING = """\
version: 1
kind: language_modeling
data:
  local:
    files: [lm.jsonl]
    format: jsonl
metrics: [word_perplexity]
"""

SENTENCES = [
    ("it 's a charming and often affecting journey .", "positive"),
    ("unflinchingly bleak and desperate", "negative"),
    ("a wonderful , moving and funny story about love and loss .", "positive"),
    ("what a boring , tedious and forgettable script .", "negative"),
    ("the movie was great but the plot was dull .", "negative"),
]


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    tasks, data = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    data.mkdir()
    (tasks / "cls.yaml").write_text(CLASSIFICATION, encoding="utf-8")
    (tasks / "gen.yaml").write_text(GENERATION, encoding="utf-8")
    (tasks / "lmtask.yaml").write_text(LANGUAGE_MODELING, encoding="utf-8")
    (data / "d.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in SENTENCES), encoding="utf-8")
    (data / "g.jsonl").write_text("".join(json.dumps({"src": s, "refs": [s]}) + "\n" for s, _ in SENTENCES), encoding="utf-8")
    (data / "lm.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s, _ in SENTENCES), encoding="utf-8")
    return tasks, data


def _run(main, model: Path, task: str, workspace, out: Path, *extra: str):
    tasks, data = workspace
    return main("run", "--model", str(model), "--tasks", task, "--tasks-dir", str(tasks), "--data-dir", str(data),
                "--output", str(out), "--device", "cpu", "--batch-size", "4", *extra)


def _assert_clean_failure(result, out: Path, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr
    assert not (out / "results.json").exists()


def _copy(checkpoint: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(checkpoint, target)
    return target


def test_missing_weight_file_is_a_model_error(main, tmp_path, workspace, tiny_classifier):
    broken = _copy(tiny_classifier, tmp_path, "no-weights")
    (broken / "model.safetensors").unlink()
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, broken, "cls", workspace, out), out, str(broken), "cannot load weights")


def test_truncated_safetensors_is_a_model_error(main, tmp_path, workspace, tiny_classifier):
    broken = _copy(tiny_classifier, tmp_path, "truncated")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, broken, "cls", workspace, out), out, str(broken), "cannot load weights")


def test_garbage_safetensors_header_is_a_model_error(main, tmp_path, workspace, tiny_classifier):
    broken = _copy(tiny_classifier, tmp_path, "garbage")
    (broken / "model.safetensors").write_bytes(b"\xff" * 64)
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, broken, "cls", workspace, out), out, str(broken))


@pytest.mark.parametrize("config", [None, "{not json", '{"architectures": ["NoSuchModelForThings"]}'],
                         ids=["missing-config", "corrupted-config", "unknown-architecture"])
def test_missing_or_corrupted_config_is_a_model_error(main, tmp_path, workspace, tiny_classifier, config):
    broken = _copy(tiny_classifier, tmp_path, "config")
    if config is None:
        (broken / "config.json").unlink()
    else:
        (broken / "config.json").write_text(config, encoding="utf-8")
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, broken, "cls", workspace, out), out, str(broken))


def test_classifier_cannot_answer_a_language_modelling_task(main, tmp_path, workspace, tiny_classifier):
    out = tmp_path / "out"
    result = _run(main, tiny_classifier, "lmtask", workspace, out)
    _assert_clean_failure(result, out, "lmtask", "sequence_classifier")


def test_regression_head_cannot_answer_a_classification_task(main, tmp_path, workspace, tiny_regressor):
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, tiny_regressor, "cls", workspace, out), out, "regression head")


def test_causal_lm_without_pad_token_pads_with_eos(main, tmp_path, workspace, tiny_causal_lm):
    """GPT-2 style tokenizers have no pad token; batches of unequal length must still work."""
    assert json.loads((tiny_causal_lm / "tokenizer_config.json").read_text()).get("pad_token") is None
    out = tmp_path / "out"
    result = _run(main, tiny_causal_lm, "cls,gen", workspace, out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert set(record["tasks"]) == {"cls", "gen"}
    assert record["tasks"]["gen"]["n_examples"] == len(SENTENCES)
    assert "pad" in json.dumps(record["model"]["notes"]).lower()
    # Padding must not change what is scored: batch size 1 (no padding) gives the same samples.
    single = tmp_path / "single"
    assert _run(main, tiny_causal_lm, "cls,gen", workspace, single, "--batch-size", "1").returncode == 0
    for task in ("cls", "gen"):
        padded = [row["prediction"] for row in read_samples(out, task)]
        unpadded = [row["prediction"] for row in read_samples(single, task)]
        assert padded == unpadded


def _poison(checkpoint: Path, tmp_path: Path, name: str, parameter: str, value: float) -> Path:
    """A copy of ``checkpoint`` whose ``parameter`` tensor is filled with ``value``."""
    from safetensors.torch import load_file, save_file

    target = _copy(checkpoint, tmp_path, name)
    tensors = load_file(target / "model.safetensors")
    matches = [key for key in tensors if key.endswith(parameter)]
    assert matches, sorted(tensors)
    for key in matches:
        tensors[key].fill_(value)
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_classifier_with_non_finite_logits_is_reported_not_scored(main, tmp_path, workspace, tiny_classifier, value):
    poisoned = _poison(tiny_classifier, tmp_path, "poisoned", "classifier.weight", value)
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, poisoned, "cls", workspace, out), out, "cls", "example 0", "non-finite")


def test_causal_lm_with_nan_logits_is_reported_not_scored(main, tmp_path, workspace, tiny_causal_lm):
    poisoned = _poison(tiny_causal_lm, tmp_path, "poisoned-lm", "ln_f.weight", float("nan"))
    for task in ("cls", "lmtask"):
        out = tmp_path / f"out-{task}"
        result = _run(main, poisoned, task, workspace, out)
        _assert_clean_failure(result, out, f"error: {task}: example 0")
        assert "nan" in result.stderr.lower() or "non-finite" in result.stderr
    # Generation: greedy search would take argmax over NaN (token 0) and score the garbage.
    out = tmp_path / "out-gen"
    result = _run(main, poisoned, "gen", workspace, out)
    _assert_clean_failure(result, out, "non-finite (NaN/inf) logits while generating")
    assert any(sentence[:30] in result.stderr for sentence, _ in SENTENCES)


@pytest.mark.parametrize("num_beams", ["1", "2"])
def test_seq2seq_with_nan_logits_is_reported_not_scored(main, tmp_path, workspace, tiny_t5, num_beams):
    poisoned = _poison(tiny_t5, tmp_path, "poisoned-t5", "decoder.final_layer_norm.weight", float("nan"))
    out = tmp_path / "out"
    result = _run(main, poisoned, "gen", workspace, out, "--num-beams", num_beams)
    _assert_clean_failure(result, out, "non-finite (NaN/inf) logits while generating")


QA = """\
version: 1
kind: extractive_qa
data:
  local:
    files: [qa.jsonl]
    format: jsonl
metrics: [squad_exact, squad_f1]
"""


def test_qa_head_with_nan_logits_is_reported_not_scored(main, tmp_path, workspace, tiny_qa_model):
    tasks, data = workspace
    (tasks / "qa.yaml").write_text(QA, encoding="utf-8")
    rows = [{"id": "q1", "question": "who won ?", "context": "the denver broncos defeated the carolina panthers .",
             "answers": ["the denver broncos"]}]
    (data / "qa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert _run(main, tiny_qa_model, "qa", workspace, tmp_path / "ok").returncode == 0  # the healthy model runs
    poisoned = _poison(tiny_qa_model, tmp_path, "poisoned-qa", "qa_outputs.weight", float("nan"))
    out = tmp_path / "out"
    _assert_clean_failure(_run(main, poisoned, "qa", workspace, out), out, "non-finite")
