"""``evalharness score``: prediction formats, id alignment, mismatch errors, run records.

Small temporary tasks keep these fast; the real WMT and CNN/DailyMail outputs are scored in
``test_wmt_golden.py`` and ``test_cnndm_golden.py``.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import sacrebleu

from evalharness.spec.catalog import TaskCatalog
from evalharness.data.loader import load_examples
from evalharness.errors import DataError, UsageError
from evalharness.external.predictions import align_predictions, fingerprint_paths, read_predictions
from evalharness.records.record import load_record, read_samples
from tests.inprocess import main  # noqa: F401 - pytest fixture

SOURCES = ["Der Hund bellt laut.", "Die Sonne scheint heute.", "Wir gehen nach Hause.", "Das Essen ist kalt."]
REFS_A = ["The dog barks loudly.", "The sun is shining today.", "We are going home.", "The food is cold."]
REFS_B = ["The dog is barking loudly.", "Today the sun shines.", "We go home.", "The meal is cold."]
HYPOTHESES = ["The dog barks loud.", "The sun shines today.", "We go to home.", "The food is cold."]

MT_TASK = """\
version: 1
kind: generation
data:
  local: {files: [mt/src.de, mt/ref.A.en, mt/ref.B.en], format: parallel_text}
metrics:
  - {name: bleu, settings: {trg_lang: en}}
  - {name: bleu, key: bleu-refA, settings: {trg_lang: en, references: [0]}}
  - chrf
"""

SUM_TASK = """\
version: 1
kind: generation
data:
  local: {files: [sum/articles.tar.gz, sum/reference.tar.gz], format: indexed_text, columns: {source: article, references: reference}}
metrics: [rouge1, rougeLsum]
"""

QA_TASK = """\
version: 1
kind: extractive_qa
data:
  local: {files: [qa/dev.jsonl], format: jsonl}
metrics: [squad_exact]
"""

QA_ROWS = [
    {"id": "56be4db0acb8001400a502ec", "question": "Who won?", "context": "The Broncos won.", "answers": ["Broncos", "The Broncos"]},
    {"id": "56be4db0acb8001400a502ed", "question": "Where?", "context": "In Santa Clara.", "answers": ["Santa Clara"]},
    {"id": "5ad39d53604f3c001a3fe8d1", "question": "Who lost in 2020?", "context": "No one.", "answers": []},
]


def _tar(path: Path, folder: str, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def workspace(tmp_path):
    """A tasks folder (tmp/mt, tmp/sum, tmp/qa) and a data folder for them."""
    tasks, data = tmp_path / "tasks" / "tmp", tmp_path / "data"
    tasks.mkdir(parents=True)
    for name, text in {"mt": MT_TASK, "sum": SUM_TASK, "qa": QA_TASK}.items():
        (tasks / f"{name}.yaml").write_text(text)
    (data / "mt").mkdir(parents=True)
    for name, lines in {"src.de": SOURCES, "ref.A.en": REFS_A, "ref.B.en": REFS_B}.items():
        (data / "mt" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data / "sum").mkdir()
    _tar(data / "sum" / "articles.tar.gz", "articles", {f"{i:06d}_article.txt": f"article {i} ." for i in range(3)})
    _tar(data / "sum" / "reference.tar.gz", "reference", {
        "000000_reference.txt": "the cat sat on the mat .\nit was happy .",
        "000001_reference.txt": "police arrested two men .\nthe town was calm .",
        "000002_reference.txt": "prices rose again .",
    })
    (data / "qa").mkdir()
    (data / "qa" / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in QA_ROWS))
    return tmp_path


def _score(cli, workspace, task, predictions, *extra):
    return cli("score", "--task", task, "--predictions", str(predictions), "--data-dir", str(workspace / "data"),
               "--tasks-dir", str(workspace / "tasks"), *extra)


def test_plain_lines_are_scored_like_sacrebleu(main, workspace):
    hyp = workspace / "system.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    result = _score(main, workspace, "tmp/mt", hyp, "--output", str(workspace / "out.json"))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads((workspace / "out.json").read_text())
    assert printed["n"] == 4 and printed["system"] == "system" and printed["predictions"]["format"] == "lines"
    bleu = printed["metrics"]["bleu"]
    assert bleu["value"] == sacrebleu.corpus_bleu(HYPOTHESES, [REFS_A, REFS_B]).score
    assert printed["metrics"]["bleu-refA"]["value"] == sacrebleu.corpus_bleu(HYPOTHESES, [REFS_A]).score
    assert printed["metrics"]["chrf"]["value"] == sacrebleu.corpus_chrf(HYPOTHESES, [REFS_A, REFS_B]).score
    assert bleu["n"] == 4 and bleu["ci"][0] <= bleu["value"] <= bleu["ci"][1]
    assert bleu["signature"]["extras"]["sacrebleu"].startswith("[nrefs:2|") and "sacrebleu:[nrefs:2|" in bleu["signature"]["text"]


def test_jsonl_is_aligned_by_id_whatever_the_order(main, workspace):
    jsonl = workspace / "system.jsonl"
    rows = [{"id": i, "prediction": HYPOTHESES[i], "extra": "ignored"} for i in (3, 1, 0, 2)]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = _score(main, workspace, "tmp/mt", jsonl)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["bleu"]["value"] == sacrebleu.corpus_bleu(HYPOTHESES, [REFS_A, REFS_B]).score


def test_wrong_line_count_exits_2_saying_how_many(cli, workspace):
    """Through a real subprocess: exit status 2 and a message, no traceback."""
    short = workspace / "short.txt"
    short.write_text("\n".join(HYPOTHESES[:3]) + "\n")
    result = _score(cli, workspace, "tmp/mt", short)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{short}: 3 lines but tmp/mt has 4 examples (1 missing)" in result.stderr
    long = workspace / "long.txt"
    long.write_text("\n".join(HYPOTHESES + ["extra", "more"]) + "\n")
    result = _score(cli, workspace, "tmp/mt", long)
    assert result.returncode == 2 and "6 lines but tmp/mt has 4 examples (2 extra)" in result.stderr


def test_missing_and_extra_ids_exit_2_with_counts_and_examples(main, workspace):
    jsonl = workspace / "ids.jsonl"
    rows = [{"id": "0", "prediction": "a"}, {"id": "1", "prediction": "b"}, {"id": "7", "prediction": "c"}]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = _score(main, workspace, "tmp/mt", jsonl)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "2 of the task's 4 examples have no prediction (e.g. '2', '3')" in result.stderr
    assert "1 predictions have ids that are not in the task (e.g. '7')" in result.stderr
    assert "Ids must be the dataset's own, e.g. '0', '1', '2'" in result.stderr


def test_decoded_folder_and_tarball_give_the_same_scores(main, workspace):
    decoded = {"000000_decoded.txt": "the cat sat on a mat .\nit looked happy .", "000001_decoded.txt": "two men were arrested .",
               "000002_decoded.txt": "prices fell ."}
    folder = workspace / "pointer-gen"
    folder.mkdir()
    for name, text in decoded.items():
        (folder / name).write_text(text)
    archive = _tar(workspace / "pointer-gen.tar.gz", "pointer-gen", decoded)
    from_folder = _score(main, workspace, "tmp/sum", folder)
    from_tar = _score(main, workspace, "tmp/sum", archive)
    assert from_folder.returncode == 0 and from_tar.returncode == 0, from_folder.stderr + from_tar.stderr
    a, b = json.loads(from_folder.stdout), json.loads(from_tar.stdout)
    assert a["predictions"]["format"] == b["predictions"]["format"] == "decoded_files"
    assert a["system"] == b["system"] == "pointer-gen"
    assert {k: v["value"] for k, v in a["metrics"].items()} == {k: v["value"] for k, v in b["metrics"].items()}
    (folder / "000002_decoded.txt").unlink()
    missing = _score(main, workspace, "tmp/sum", folder)
    assert missing.returncode == 2 and "1 of the task's 3 examples have no prediction (e.g. '000002')" in missing.stderr


def test_run_dir_writes_a_run_record_and_collects_one_system_per_directory(main, workspace):
    hyp = workspace / "outputs" / "newstest.hyp.SystemX.en"
    hyp.parent.mkdir()
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    run_dir = workspace / "runs" / "SystemX"
    result = _score(main, workspace, "tmp/mt", hyp, "--run-dir", str(run_dir), "--name", "SystemX")
    assert result.returncode == 0, result.stderr
    record = load_record(run_dir)
    assert record.model.source == "predictions" and record.model.name == "SystemX" and record.model.kind == "external"
    assert record.model.fingerprint == fingerprint_paths([hyp])
    entry = record.tasks["tmp/mt"]
    assert entry.formulation == "predictions:lines" and entry.n_examples == 4
    assert entry.metrics["bleu"].value == json.loads(result.stdout)["metrics"]["bleu"]["value"]
    samples = read_samples(run_dir, "tmp/mt")
    assert [row["id"] for row in samples] == ["0", "1", "2", "3"]
    assert samples[0]["input"] == SOURCES[0] and samples[0]["prediction"] == HYPOTHESES[0]
    assert samples[0]["gold"] == [REFS_A[0], REFS_B[0]] and len(samples[0]["stats"]["bleu"]) == 10

    # The same system on another task joins the same record (a leaderboard row per system).
    decoded = workspace / "SystemX.jsonl"
    decoded.write_text("".join(json.dumps({"id": f"{i:06d}", "prediction": "the cat sat ."}) + "\n" for i in range(3)))
    second = _score(main, workspace, "tmp/sum", decoded, "--run-dir", str(run_dir), "--name", "SystemX")
    assert second.returncode == 0, second.stderr
    merged = load_record(run_dir)
    assert set(merged.tasks) == {"tmp/mt", "tmp/sum"} and merged.run_id == record.run_id
    assert set(merged.model.notes["predictions"]) == {"tmp/mt", "tmp/sum"}
    assert merged.model.fingerprint not in (record.model.fingerprint, fingerprint_paths([decoded]))

    # Another system may not be written into this directory.
    other = _score(main, workspace, "tmp/mt", hyp, "--run-dir", str(run_dir), "--name", "SystemY")
    assert other.returncode == 2 and "already holds a run of 'SystemX'" in other.stderr
    assert load_record(run_dir).model.name == "SystemX"


def test_usage_errors_exit_2(main, workspace):
    hyp = workspace / "system.txt"
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    probs = workspace / "na.json"
    probs.write_text("{}")
    result = _score(main, workspace, "tmp/mt", hyp, "--no-answer-probs", str(probs))
    assert result.returncode == 2 and "--no-answer-probs applies to SQuAD prediction files" in result.stderr
    result = _score(main, workspace, "tmp/mt", hyp, "--format", "jsnol")
    assert result.returncode == 2 and "did you mean 'jsonl'" in result.stderr
    result = _score(main, workspace, "tmp/mt", workspace / "nope.txt")
    assert result.returncode == 2 and "no such file or directory" in result.stderr
    squad_style = workspace / "predictions.json"
    squad_style.write_text('{"0": "a"}')
    result = _score(main, workspace, "tmp/mt", squad_style)
    assert result.returncode == 2 and "not a recognised prediction file for a 'generation' task" in result.stderr


def test_xsum_fails_clearly_offline(cli, tmp_path):
    hyp = tmp_path / "xsum.txt"
    hyp.write_text("a summary .\n")
    result = cli("score", "--task", "summarization/xsum", "--predictions", str(hyp), env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "summarization/xsum: evaluation data not found" in result.stderr
    assert "could not load hub dataset EdinburghNLP/xsum split=test" in result.stderr


# -- SQuAD prediction files, against a temporary extractive_qa task ------------------------


def _qa(workspace):
    task = TaskCatalog([workspace / "tasks"]).load("tmp/qa")
    return task, load_examples(task, workspace / "data")


def test_squad_prediction_file_gives_the_extractive_qa_contract(workspace):
    task, data = _qa(workspace)
    predictions = workspace / "predictions.json"
    answers = {"5ad39d53604f3c001a3fe8d1": "", "56be4db0acb8001400a502ec": "Broncos", "56be4db0acb8001400a502ed": "Santa Clara"}
    predictions.write_text(json.dumps(answers))
    read = read_predictions(predictions, task)
    assert read.format == "squad"
    decoded = align_predictions(read, task, data)
    assert [d.prediction.to_json() for d in decoded] == [
        {"text": "Broncos", "no_answer_probability": None},
        {"text": "Santa Clara", "no_answer_probability": None},
        {"text": "", "no_answer_probability": None},
    ]
    assert decoded[0].input == "Who won?"

    probs = workspace / "na_probs.json"
    probs.write_text(json.dumps({"56be4db0acb8001400a502ec": 0.1, "56be4db0acb8001400a502ed": 0.25, "5ad39d53604f3c001a3fe8d1": 0.9}))
    with_probs = read_predictions(predictions, task, no_answer_probs=probs)
    assert [d.prediction.no_answer_probability for d in align_predictions(with_probs, task, data)] == [0.1, 0.25, 0.9]
    assert with_probs.fingerprint != read.fingerprint and with_probs.paths == (predictions, probs)


def test_squad_prediction_file_errors(workspace):
    task, data = _qa(workspace)
    predictions = workspace / "predictions.json"
    predictions.write_text(json.dumps({"56be4db0acb8001400a502ec": "Broncos", "56be4db0acb8001400a502ed": "Santa Clara", "extra-id": "x"}))
    with pytest.raises(DataError, match=r"1 of the task's 3 examples have no prediction \(e\.g\. '5ad39d53604f3c001a3fe8d1'\); 1 predictions have ids that are not in the task \(e\.g\. 'extra-id'\)"):
        align_predictions(read_predictions(predictions, task), task, data)
    probs = workspace / "na_probs.json"
    probs.write_text(json.dumps({"56be4db0acb8001400a502ec": 0.1}))
    with pytest.raises(DataError, match="2 missing"):
        read_predictions(predictions, task, no_answer_probs=probs)
    predictions.write_text('{"56be4db0acb8001400a502ec": "a", "56be4db0acb8001400a502ec": "b"}')
    with pytest.raises(DataError, match="key '56be4db0acb8001400a502ec' appears twice"):
        read_predictions(predictions, task)
    predictions.write_text(json.dumps({"56be4db0acb8001400a502ec": 3}))
    with pytest.raises(DataError, match="should be a string"):
        read_predictions(predictions, task)
    with pytest.raises(UsageError, match="does not apply to 'extractive_qa' tasks"):
        read_predictions(predictions, task, format="lines")


def test_jsonl_predictions_for_extractive_qa_use_the_same_contract(workspace):
    task, data = _qa(workspace)
    jsonl = workspace / "qa.jsonl"
    jsonl.write_text(
        json.dumps({"id": "56be4db0acb8001400a502ec", "prediction": {"text": "Broncos", "no_answer_probability": 0.2}}) + "\n"
        + json.dumps({"id": "56be4db0acb8001400a502ed", "prediction": "Santa Clara"}) + "\n"
        + json.dumps({"id": "5ad39d53604f3c001a3fe8d1", "prediction": {"text": "", "no_answer_probability": 0.95}}) + "\n"
    )
    decoded = align_predictions(read_predictions(jsonl, task), task, data)
    assert decoded[1].prediction.to_json() == {"text": "Santa Clara", "no_answer_probability": None}
    assert decoded[2].prediction.to_json() == {"text": "", "no_answer_probability": 0.95}
    rows = jsonl.read_text().splitlines()
    rows[0] = json.dumps({"id": "56be4db0acb8001400a502ec", "prediction": {"answer": "Broncos"}})
    jsonl.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="expected an answer string or"):
        align_predictions(read_predictions(jsonl, task), task, data)


def test_a_record_whose_prediction_note_path_is_not_text_is_refused_naming_the_field(main, workspace):
    """Scoring another task into a run directory reads the prediction notes of the tasks it
    holds; a hand-edited note of the wrong type (it was a TypeError traceback) is refused."""
    hyp = workspace / "SystemX.hyp"
    hyp.write_text("\n".join(HYPOTHESES) + "\n")
    run_dir = workspace / "runs" / "SystemX"
    assert _score(main, workspace, "tmp/mt", hyp, "--run-dir", str(run_dir), "--name", "SystemX").returncode == 0
    results = run_dir / "results.json"
    record = json.loads(results.read_text())
    record["model"]["notes"]["predictions"]["tmp/mt"]["path"] = 5
    results.write_text(json.dumps(record))
    decoded = workspace / "SystemX.jsonl"
    decoded.write_text("".join(json.dumps({"id": f"{i:06d}", "prediction": "the cat sat ."}) + "\n" for i in range(3)))
    result = _score(main, workspace, "tmp/sum", decoded, "--run-dir", str(run_dir), "--name", "SystemX")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{results}: model.notes.predictions.tmp/mt.path: expected a string, got a number" in result.stderr
