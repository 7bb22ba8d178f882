"""Checkpoints that are not what they claim, and task files that would run code.

Each broken checkpoint is a copy of a tiny session checkpoint with one thing changed (head
weights deleted from the safetensors file, ``config.json`` architectures edited, tokenizer
files deleted or contradicting each other). transformers loads every one of them with at most
a logged warning, and a run would print a plausible number; evalharness must refuse with exit
2, naming the checkpoint, what is wrong and the override, and write no ``results.json``. With
the override the run completes and the record says what was let through.

Most runs go through the real CLI in-process (``main``: same parser, handlers and exit codes,
without an interpreter start-up per call); the first refusal of each class also goes through
a subprocess (``cli``), as a user would type it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.inprocess import main  # noqa: F401 - pytest fixture

SST2_ROWS = [
    ("it 's a charming and often affecting journey .", 1),
    ("unflinchingly bleak and desperate", 0),
    ("a wonderful , moving and funny story about love and loss .", 1),
    ("what a boring , tedious and forgettable script .", 0),
    ("the movie was great but the plot was dull .", 1),
    ("this film is not good , and the acting is awful .", 0),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """GLUE SST-2's local layout with six sentences (the built-in ``glue/sst2`` task reads it)."""
    data = tmp_path / "data"
    (data / "glue" / "SST-2").mkdir(parents=True)
    lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in SST2_ROWS]
    (data / "glue" / "SST-2" / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def _copy(checkpoint: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(checkpoint, target)
    return target


def _drop_weights(checkpoint: Path, prefix: str) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(checkpoint / "model.safetensors")
    kept = {key: value for key, value in tensors.items() if not key.startswith(prefix)}
    assert len(kept) < len(tensors), sorted(tensors)
    save_file(kept, checkpoint / "model.safetensors", metadata={"format": "pt"})


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _sst2(run, model: Path, data_dir: Path, out: Path, *extra: str):
    return run("run", "--model", str(model), "--tasks", "glue/sst2", "--limit", "4", "--data-dir", str(data_dir),
               "--output", str(out), "--device", "cpu", *extra)


def _refused(result, out: Path, *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    assert not (out / "results.json").exists()


def _record(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _predictions(out: Path, task: str = "glue/sst2") -> list:
    from evalharness.records.record import read_samples

    return [row["prediction"] for row in read_samples(out, task)]


# --- weights the model class had to initialise randomly -----------------------------------------


def test_classifier_with_missing_head_weights_is_refused(cli, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "headless")
    _drop_weights(checkpoint, "classifier.")
    out = tmp_path / "out"
    _refused(_sst2(cli, checkpoint, data_dir, out), out, str(checkpoint), "BertForSequenceClassification",
             "classifier.weight", "classifier.bias", "--allow-random-weights")


def test_allowed_random_head_is_recorded_in_notes_and_settings(main, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "headless")
    _drop_weights(checkpoint, "classifier.")
    out = tmp_path / "out"
    result = _sst2(main, checkpoint, data_dir, out, "--allow-random-weights")
    assert result.returncode == 0, result.stderr
    record = _record(out)
    assert record["settings"]["allow_random_weights"] is True
    notes = record["model"]["notes"]["random_weights"]
    assert notes["allowed_by"] == "--allow-random-weights"
    assert notes["weights"] == ["classifier.bias", "classifier.weight"] and notes["count"] == 2
    assert record["tasks"]["glue/sst2"]["n_examples"] == 4


def test_allowed_random_weights_are_the_same_in_every_rerun(main, tmp_path, data_dir, tiny_classifier):
    """A number produced under the override must at least be reproducible: the random head is
    seeded, so a rerun (without the prediction cache) scores the same weights."""
    checkpoint = _copy(tiny_classifier, tmp_path, "headless")
    _drop_weights(checkpoint, "classifier.")
    first, second = tmp_path / "first", tmp_path / "second"
    assert _sst2(main, checkpoint, data_dir, first, "--allow-random-weights").returncode == 0
    assert _sst2(main, checkpoint, data_dir, second, "--allow-random-weights", "--fresh").returncode == 0
    assert _predictions(first) == _predictions(second)


def test_missing_body_weights_are_refused_not_only_heads(main, tmp_path, data_dir, tiny_causal_lm):
    checkpoint = _copy(tiny_causal_lm, tmp_path, "hollow")
    _drop_weights(checkpoint, "transformer.h.1.mlp.")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "GPT2LMHeadModel", "transformer.h.1.mlp.c_fc.weight",
             "--allow-random-weights")


def test_head_whose_shape_differs_from_config_is_refused(main, tmp_path, data_dir, tiny_classifier):
    """config.json edited to three labels: transformers would re-initialise the 2-label head."""
    checkpoint = _copy(tiny_classifier, tmp_path, "relabelled")
    _edit_json(checkpoint / "config.json", id2label={"0": "negative", "1": "positive", "2": "neutral"},
               label2id={"negative": 0, "positive": 1, "neutral": 2})
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "classifier.weight (checkpoint (2, 32), model (3, 32))",
             "--allow-random-weights")


def test_weights_the_model_does_not_use_are_recorded_not_refused(main, tmp_path, data_dir, tiny_classifier):
    """A stray tensor that belongs to no head of any kind changes no number: noted, not refused."""
    import torch
    from safetensors.torch import load_file, save_file

    checkpoint = _copy(tiny_classifier, tmp_path, "extra")
    tensors = load_file(checkpoint / "model.safetensors")
    save_file({**tensors, "training_state.step": torch.zeros(1)}, checkpoint / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "out"
    assert _sst2(main, checkpoint, data_dir, out).returncode == 0
    assert _record(out)["model"]["notes"]["unused_weights"] == {"count": 1, "weights": ["training_state.step"]}


@pytest.mark.parametrize(
    "fixture", ["tiny_classifier", "tiny_regressor", "tiny_qa_model", "tiny_masked_lm", "tiny_causal_lm", "tiny_llama", "tiny_t5", "tiny_bart"]
)
def test_tiny_checkpoints_load_without_random_or_foreign_weights(request, fixture):
    """The builders in evalharness.testing.tiny save complete checkpoints: the checks must not
    fire on them (a check that refuses good checkpoints gets switched off)."""
    from evalharness.models.loading import load_model

    notes = load_model(str(request.getfixturevalue(fixture)), device="cpu").info.notes
    assert not {"random_weights", "foreign_head_weights", "unused_weights", "kind_mismatch", "tokenizer_source"} & set(notes)


# --- kind mismatches --------------------------------------------------------------------------------


def test_qa_checkpoint_forced_to_sequence_classifier_is_refused(cli, tmp_path, data_dir, tiny_qa_model):
    out = tmp_path / "out"
    result = _sst2(cli, tiny_qa_model, data_dir, out, "--model-kind", "sequence_classifier")
    _refused(result, out, str(tiny_qa_model), "--model-kind sequence_classifier contradicts config.json",
             "BertForQuestionAnswering", "extractive_qa", "--allow-kind-mismatch")


def test_qa_checkpoint_whose_config_claims_a_classifier_is_refused(main, tmp_path, data_dir, tiny_qa_model):
    """architectures edited to BertForSequenceClassification: the weights still hold the QA head."""
    checkpoint = _copy(tiny_qa_model, tmp_path, "claims-classifier")
    _edit_json(checkpoint / "config.json", architectures=["BertForSequenceClassification"])
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, str(checkpoint), "extractive_qa", "qa_outputs.weight",
             "--allow-kind-mismatch", "classifier.weight", "--allow-random-weights")


def test_classifier_whose_config_claims_a_qa_head_is_refused(main, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "claims-qa")
    _edit_json(checkpoint / "config.json", architectures=["BertForQuestionAnswering"])
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "sequence_classifier", "classifier.weight",
             "qa_outputs.weight", "BertForQuestionAnswering")


@pytest.mark.parametrize("architectures", ["BertForSequenceClassification", 5, [None], {"a": 1}])
def test_config_with_malformed_architectures_is_refused(main, tmp_path, data_dir, tiny_classifier, architectures):
    checkpoint = _copy(tiny_classifier, tmp_path, "odd-config")
    _edit_json(checkpoint / "config.json", architectures=architectures)
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, str(checkpoint / "config.json"), "'architectures' must be a list")


def test_forced_kind_with_unknown_architectures_still_checks_the_weights(main, tmp_path, data_dir, tiny_masked_lm):
    """Where config.json names no known class, --model-kind says the kind; the weights still
    have to fit it (a masked LM's weights have no classifier head)."""
    checkpoint = _copy(tiny_masked_lm, tmp_path, "custom-name")
    _edit_json(checkpoint / "config.json", architectures=["MyInHouseEncoder"])
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out, "--model-kind", "sequence_classifier"), out,
             "masked_lm", "cls.predictions", "classifier.weight", "--allow-random-weights")


def test_forced_kind_that_fits_unknown_architectures_runs(main, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "custom-name")
    _edit_json(checkpoint / "config.json", architectures=["MyInHouseClassifier"])
    out = tmp_path / "out"
    assert _sst2(main, checkpoint, data_dir, out, "--model-kind", "sequence_classifier").returncode == 0
    record = _record(out)
    assert record["model"]["kind"] == "sequence_classifier" and "kind_mismatch" not in record["model"]["notes"]


def test_allowed_kind_mismatch_is_recorded_with_the_foreign_head(main, tmp_path, data_dir, tiny_qa_model):
    out = tmp_path / "out"
    result = _sst2(main, tiny_qa_model, data_dir, out, "--model-kind", "sequence_classifier",
                   "--allow-kind-mismatch", "--allow-random-weights", "--label-map", "LABEL_0=negative,LABEL_1=positive")
    assert result.returncode == 0, result.stderr
    record = _record(out)
    assert record["settings"]["allow_kind_mismatch"] is True and record["settings"]["allow_random_weights"] is True
    notes = record["model"]["notes"]
    assert notes["kind_mismatch"]["requested"] == "sequence_classifier" and notes["kind_mismatch"]["claimed"] == ["extractive_qa"]
    assert notes["foreign_head_weights"]["extractive_qa"] == ["qa_outputs.bias", "qa_outputs.weight"]
    assert "classifier.weight" in notes["random_weights"]["weights"]


# --- tokenizers that are not the checkpoint's -------------------------------------------------------


def test_checkpoint_without_tokenizer_files_is_refused(cli, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "no-tokenizer")
    (checkpoint / "tokenizer.json").unlink()
    (checkpoint / "tokenizer_config.json").unlink()
    out = tmp_path / "out"
    _refused(_sst2(cli, checkpoint, data_dir, out), out, str(checkpoint), "no tokenizer_config.json", "--tokenizer DIR")


def test_tokenizer_settings_without_a_vocabulary_are_refused(main, tmp_path, data_dir, tiny_classifier):
    """tokenizer_config.json names BertTokenizer but no vocabulary file is left: transformers 5
    builds a BertTokenizer with five tokens, and every word becomes [UNK]."""
    checkpoint = _copy(tiny_classifier, tmp_path, "settings-only")
    (checkpoint / "tokenizer.json").unlink()
    _edit_json(checkpoint / "tokenizer_config.json", tokenizer_class="BertTokenizer")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, str(checkpoint), "no tokenizer vocabulary",
             "BertTokenizer reads tokenizer.json, vocab.txt", "--tokenizer DIR")


@pytest.mark.parametrize(
    ("fixture", "removed"),
    [
        ("tiny_classifier", ["tokenizer.json"]),
        ("tiny_causal_lm", ["tokenizer.json", "tokenizer_config.json"]),
        ("tiny_t5", ["tokenizer.json"]),
        ("tiny_t5", ["tokenizer.json", "tokenizer_config.json"]),
    ],
    ids=["classifier-vocabulary", "gpt2-everything", "t5-vocabulary", "t5-everything"],
)
def test_checkpoint_missing_its_tokenizer_vocabulary_is_refused(request, tmp_path, fixture, removed):
    from evalharness.errors import ModelError
    from evalharness.models.loading import load_model

    checkpoint = _copy(request.getfixturevalue(fixture), tmp_path, "partial")
    for name in removed:
        (checkpoint / name).unlink()
    with pytest.raises(ModelError) as refused:
        load_model(str(checkpoint), device="cpu")
    assert str(checkpoint) in str(refused.value) and "tokenizer" in str(refused.value)


def test_tokenizer_class_that_does_not_match_the_files_is_refused(main, tmp_path, data_dir, tiny_classifier):
    """tokenizer_class GPT2Tokenizer over a WordPiece tokenizer.json: transformers rebuilds it as a
    merge-less BPE that splits every word into characters."""
    checkpoint = _copy(tiny_classifier, tmp_path, "wrong-class")
    _edit_json(checkpoint / "tokenizer_config.json", tokenizer_class="GPT2Tokenizer")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, str(checkpoint), "GPT2Tokenizer",
             "does not tokenize like", str(checkpoint / "tokenizer.json"))


def test_unknown_tokenizer_class_is_refused(main, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "unknown-class")
    _edit_json(checkpoint / "tokenizer_config.json", tokenizer_class="AcmeTokenizer")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "tokenizer_class 'AcmeTokenizer'", "--tokenizer")


def test_checkpoint_without_tokenizer_config_or_tokenizer_json_is_refused(main, tmp_path, data_dir, tiny_classifier):
    """Without tokenizer_config.json and without a tokenizer.json to check against, lower-casing,
    special tokens, maximum length and decoding would all be class defaults that nothing in the
    checkpoint confirms."""
    checkpoint = _copy(tiny_classifier, tmp_path, "no-config")
    (checkpoint / "tokenizer_config.json").unlink()
    (checkpoint / "tokenizer.json").unlink()
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, str(checkpoint), "no tokenizer_config.json", "--tokenizer DIR")


def test_checkpoint_with_tokenizer_json_but_no_tokenizer_config_runs_and_says_so(main, tmp_path, data_dir, tiny_classifier):
    """Many hub checkpoints (roberta-base among them) ship tokenizer.json without
    tokenizer_config.json: the tokenizer.json fixes the pipeline, the loaded tokenizer is checked
    to tokenize exactly like it, and the record says where the settings came from."""
    checkpoint = _copy(tiny_classifier, tmp_path, "json-only")
    (checkpoint / "tokenizer_config.json").unlink()
    out = tmp_path / "out"
    result = _sst2(main, checkpoint, data_dir, out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "no tokenizer_config.json" in record["model"]["notes"]["tokenizer_config"]


def test_tokenizer_class_default_that_changes_tokenization_is_refused(main, tmp_path, data_dir, tiny_classifier):
    """A cased vocabulary whose tokenizer_config.json names BertTokenizer without do_lower_case:
    the class default would lower-case every input."""
    checkpoint = _copy(tiny_classifier, tmp_path, "cased")
    _edit_json(checkpoint / "tokenizer_config.json", tokenizer_class="BertTokenizer")
    tokenizer = json.loads((checkpoint / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["normalizer"]["lowercase"] = False
    (checkpoint / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "BertTokenizer", "does not tokenize like", "['the', 'qu'")


def test_tokenizer_config_pointing_outside_the_checkpoint_is_refused(main, tmp_path, data_dir, tiny_classifier, tiny_causal_lm):
    checkpoint = _copy(tiny_classifier, tmp_path, "redirected")
    _edit_json(checkpoint / "tokenizer_config.json", tokenizer_file=str(tiny_causal_lm / "tokenizer.json"))
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "'tokenizer_file'", "outside the checkpoint")


def test_hub_snapshot_whose_files_are_links_into_the_blob_cache_loads(tmp_path, tiny_classifier):
    """A Hugging Face cache snapshot holds symlinks into ../../blobs: a tokenizer_config.json
    naming its own tokenizer.json must not be mistaken for a file outside the checkpoint."""
    from evalharness.models.loading import load_model

    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for file in tiny_classifier.iterdir():
        shutil.copy(file, blobs / f"blob-{file.name}")
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", f"blob-{file.name}"))
    _edit_json(blobs / "blob-tokenizer_config.json", tokenizer_file="tokenizer.json")
    assert load_model(str(snapshot), device="cpu").info.kind == "sequence_classifier"


def test_special_token_missing_from_the_vocabulary_is_refused(main, tmp_path, data_dir, tiny_classifier):
    """A pad token the vocabulary lacks: transformers appends it as a new, untrained id."""
    checkpoint = _copy(tiny_classifier, tmp_path, "new-pad")
    _edit_json(checkpoint / "tokenizer_config.json", pad_token="<pad>")
    out = tmp_path / "out"
    _refused(_sst2(main, checkpoint, data_dir, out), out, "['<pad>']", "does not contain")


def test_tokenizer_from_another_directory_is_used_and_recorded(main, tmp_path, data_dir, tiny_classifier):
    checkpoint = _copy(tiny_classifier, tmp_path, "weights-only")
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer_dir.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (checkpoint / name).rename(tokenizer_dir / name)
    out, reference = tmp_path / "out", tmp_path / "reference"
    result = _sst2(main, checkpoint, data_dir, out, "--tokenizer", str(tokenizer_dir))
    assert result.returncode == 0, result.stderr
    record = _record(out)
    assert record["settings"]["tokenizer"] == str(tokenizer_dir)
    source = record["model"]["notes"]["tokenizer_source"]
    assert source["path"] == str(tokenizer_dir) and source["files"] == ["tokenizer.json", "tokenizer_config.json"]
    assert source["fingerprint"].startswith("sha256:")
    assert _sst2(main, tiny_classifier, data_dir, reference).returncode == 0
    assert _predictions(out) == _predictions(reference)
    # Another tokenizer makes another model: the model fingerprint covers both, so a leaderboard
    # never merges this run with one of the checkpoint's own tokenizer.
    assert record["model"]["fingerprint"] != source["checkpoint_fingerprint"]


def test_tokenizer_with_more_ids_than_the_embedding_is_refused(main, tmp_path, data_dir, tiny_classifier, tiny_causal_lm):
    """--tokenizer of another model: ids beyond the embedding matrix cannot be scored."""
    out = tmp_path / "out"
    _refused(_sst2(main, tiny_classifier, data_dir, out, "--tokenizer", str(tiny_causal_lm)), out,
             f"--tokenizer {tiny_causal_lm}", "input embedding has", "rows")


def test_missing_tokenizer_directory_is_refused(main, tmp_path, data_dir, tiny_classifier):
    out = tmp_path / "out"
    _refused(_sst2(main, tiny_classifier, data_dir, out, "--tokenizer", str(tmp_path / "nowhere")), out,
             "tokenizer directory", "does not exist")


# --- code referenced by task files ------------------------------------------------------------------

MODULE = '''
import pathlib

import datasets
import evaluate

pathlib.Path({marker!r}).write_text("executed")


class MarkerMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="exact match", citation="", inputs_description="",
            features=datasets.Features({{"predictions": datasets.Value("string"), "references": datasets.Value("string")}}),
        )

    def _compute(self, predictions, references):
        return {{"match": sum(p == r for p, r in zip(predictions, references)) / len(references)}}
'''

CODE_TASK = """\
version: 1
kind: classification
data:
  local:
    files: [glue/SST-2/dev.tsv]
    format: tsv
    columns: {{text: sentence, label: label}}
  label_values: {{0: negative, 1: positive}}
labels: [negative, positive]
metrics:
  - accuracy
  - {{name: hf_evaluate, settings: {{path: {module}, per_example: true, scale: 100}}}}
"""


@pytest.fixture
def code_task(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(tasks folder holding ``code/sst2``, the module script, the marker its import writes)."""
    marker = tmp_path / "module-ran"
    module = tmp_path / "modules" / "marker_match"
    module.mkdir(parents=True)
    script = module / "marker_match.py"
    script.write_text(MODULE.format(marker=str(marker)), encoding="utf-8")
    tasks = tmp_path / "tasks"
    (tasks / "code").mkdir(parents=True)
    (tasks / "code" / "sst2.yaml").write_text(CODE_TASK.format(module=str(module)), encoding="utf-8")
    return tasks, script, marker


def test_task_metric_that_runs_code_is_refused_without_trust_task_code(cli, tmp_path, data_dir, code_task):
    """Refused while planning: the model path does not even exist, and the module never runs."""
    tasks, script, marker = code_task
    out = tmp_path / "out"
    result = cli("run", "--model", str(tmp_path / "no-such-model"), "--tasks", "code/sst2", "--tasks-dir", str(tasks),
                 "--data-dir", str(data_dir), "--output", str(out))
    _refused(result, out, "task 'code/sst2'", "metrics[1] hf_evaluate", str(script), "--trust-task-code")
    assert "no-such-model" not in result.stderr and not marker.exists()


def test_trust_task_code_runs_the_module_and_is_recorded(main, tmp_path, data_dir, code_task, tiny_classifier):
    tasks, script, marker = code_task
    out = tmp_path / "out"
    result = main("run", "--model", str(tiny_classifier), "--tasks", "code/sst2", "--tasks-dir", str(tasks), "--limit", "4",
                  "--data-dir", str(data_dir), "--output", str(out), "--device", "cpu", "--trust-task-code")
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    record = _record(out)
    assert record["settings"]["trust_task_code"] is True
    metrics = record["tasks"]["code/sst2"]["metrics"]
    assert metrics["hf_evaluate"]["value"] == pytest.approx(metrics["accuracy"]["value"])
    assert "marker_match@sha256:" in metrics["hf_evaluate"]["signature"]["implementation"]


def test_task_group_with_a_code_task_is_refused_not_silently_skipped(main, tmp_path, data_dir, code_task, tiny_classifier):
    tasks, _, marker = code_task
    (tasks / "code" / "plain.yaml").write_text(CODE_TASK.format(module="x").split("  - {name: hf_evaluate")[0], encoding="utf-8")
    out = tmp_path / "out"
    result = main("run", "--model", str(tiny_classifier), "--tasks", "code", "--tasks-dir", str(tasks),
                  "--data-dir", str(data_dir), "--output", str(out), "--device", "cpu")
    _refused(result, out, "task 'code/sst2'", "--trust-task-code")
    assert "code/plain" not in result.stderr and not marker.exists()


def test_score_refuses_a_code_metric_without_trust_task_code(main, tmp_path, data_dir, code_task):
    tasks, script, marker = code_task
    predictions = tmp_path / "predictions.jsonl"
    rows = [json.dumps({"id": str(index), "prediction": "positive"}) for index in range(len(SST2_ROWS))]
    predictions.write_text("\n".join(rows) + "\n", encoding="utf-8")
    run_dir = tmp_path / "scored"
    args = ("score", "--task", "code/sst2", "--predictions", str(predictions), "--tasks-dir", str(tasks),
            "--data-dir", str(data_dir), "--run-dir", str(run_dir))
    _refused(main(*args), run_dir, str(script), "--trust-task-code")
    assert not marker.exists()
    result = main(*args, "--trust-task-code")
    assert result.returncode == 0, result.stderr
    assert marker.exists() and _record(run_dir)["settings"]["trust_task_code"] is True


def test_rescore_refuses_a_code_metric_added_after_the_run(main, tmp_path, data_dir, code_task, tiny_classifier):
    tasks, script, marker = code_task
    plain = (tasks / "code" / "sst2.yaml").read_text(encoding="utf-8").split("  - {name: hf_evaluate")[0]
    with_code = (tasks / "code" / "sst2.yaml").read_text(encoding="utf-8")
    (tasks / "code" / "sst2.yaml").write_text(plain, encoding="utf-8")
    out = tmp_path / "out"
    assert main("run", "--model", str(tiny_classifier), "--tasks", "code/sst2", "--tasks-dir", str(tasks), "--limit", "4",
                "--data-dir", str(data_dir), "--output", str(out), "--device", "cpu").returncode == 0
    before = (out / "results.json").read_bytes()
    (tasks / "code" / "sst2.yaml").write_text(with_code, encoding="utf-8")
    result = main("rescore", str(out), "--tasks-dir", str(tasks))
    assert result.returncode == 2 and str(script) in result.stderr and "--trust-task-code" in result.stderr
    assert (out / "results.json").read_bytes() == before and not marker.exists()
    assert main("rescore", str(out), "--tasks-dir", str(tasks), "--trust-task-code").returncode == 0
    record = _record(out)
    assert marker.exists() and record["settings"]["trust_task_code"] is True
    assert "hf_evaluate" in record["tasks"]["code/sst2"]["metrics"]


def test_sweep_refuses_a_code_metric_before_any_job_runs(main, tmp_path, data_dir, code_task, tiny_classifier):
    tasks, script, marker = code_task
    output = tmp_path / "sweep"
    result = main("sweep", "--models", str(tiny_classifier), "--tasks", "code/sst2", "--output", str(output),
                  "--tasks-dir", str(tasks), "--data-dir", str(data_dir), "--device", "cpu", "--no-leaderboard")
    assert result.returncode == 2 and str(script) in result.stderr and "--trust-task-code" in result.stderr
    assert not output.exists() and not marker.exists()


def test_sweep_passes_trust_task_code_to_its_jobs(main, tmp_path, data_dir, code_task, tiny_classifier):
    tasks, _, marker = code_task
    output = tmp_path / "sweep"
    result = main("sweep", "--models", str(tiny_classifier), "--tasks", "code/sst2", "--output", str(output), "--limit", "4",
                  "--tasks-dir", str(tasks), "--data-dir", str(data_dir), "--device", "cpu", "--no-leaderboard", "--trust-task-code")
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = output.rglob("results.json")
    assert json.loads(record.read_text())["settings"]["trust_task_code"] is True and marker.exists()


def test_nested_code_metric_inside_counterfactual_score_change_is_refused(tmp_path, code_task):
    """counterfactual_score_change scores with any registered metric, hf_evaluate included."""
    from evalharness.errors import UsageError
    from evalharness.metrics.registry import refuse_untrusted_code
    from evalharness.spec.loader import load_task

    _, script, marker = code_task
    path = tmp_path / "cf.yaml"
    path.write_text(CODE_TASK.format(module="x").split("metrics:")[0] + (
        "metrics:\n  - {name: counterfactual_score_change, settings: {metric: hf_evaluate, "
        f"settings: {{path: {script}}}}}}}\n"), encoding="utf-8")
    task = load_task(path, "cf")
    with pytest.raises(UsageError, match=r"metrics\[0\] counterfactual_score_change would load and run .*marker_match\.py"):
        refuse_untrusted_code([task], trusted=False)
    refuse_untrusted_code([task], trusted=True)
    assert not marker.exists()


def test_tasks_validate_accepts_a_code_task_but_says_it_needs_the_flag(main, code_task):
    tasks, script, marker = code_task
    result = main("tasks", "validate", str(tasks / "code" / "sst2.yaml"))
    assert result.returncode == 0, result.stderr
    assert "needs --trust-task-code" in result.stdout and str(script) in result.stdout
    assert not marker.exists()


def test_hub_datasets_are_loaded_without_running_loading_scripts(monkeypatch, tmp_path):
    """datasets < 3 runs a hub dataset's loading script unless told not to."""
    import datasets

    from evalharness.data.loader import load_examples
    from evalharness.spec.loader import load_task

    seen = {}

    def fake_load_dataset(path, name=None, **kwargs):
        seen.update(kwargs, path=path)
        return [{"sentence": "fine", "label": "positive"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = tmp_path / "hub.yaml"
    spec.write_text("version: 1\nkind: classification\ndata:\n  hub: {path: someone/with-a-script, split: test, "
                    "columns: {text: sentence, label: label}}\nlabels: [negative, positive]\nmetrics: [accuracy]\n")
    load_examples(load_task(spec, "hub"), None)
    assert seen["path"] == "someone/with-a-script" and seen["trust_remote_code"] is False
