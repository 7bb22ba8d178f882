"""Data sources: readers, column mapping, coercion, fingerprints, and clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalharness.data import load_examples, resolve_data_dir
from evalharness.errors import DataError
from evalharness.spec import load_task

SPEC = """\
version: 1
kind: classification
data:
  local:
    files: [{files}]
    format: {format}
    columns: {{text: sentence, label: label}}
  label_values: {{0: negative, 1: positive}}
labels: [negative, positive]
metrics: [accuracy]
"""


def make_task(tmp_path: Path, files: str = "d.tsv", format: str = "tsv", spec: str = SPEC):
    path = tmp_path / "t.yaml"
    path.write_text(spec.format(files=files, format=format), encoding="utf-8")
    return load_task(path, "t")


def write_bytes(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)


def test_tsv_with_bom_and_label_values(tmp_path):
    write_bytes(tmp_path, "d.tsv", "\ufeffsentence\tlabel\nfine \"quoted\" text\t1\nbad\t0\n".encode())
    data = load_examples(make_task(tmp_path), tmp_path)
    assert [e.fields for e in data.examples] == [
        {"text": 'fine "quoted" text', "label": "positive"},
        {"text": "bad", "label": "negative"},
    ]
    assert [e.id for e in data.examples] == ["0", "1"] and data.source == "local"


def test_fingerprint_depends_on_content_and_limit(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"sentence\tlabel\na\t1\nb\t0\n")
    task = make_task(tmp_path)
    full, again, limited = load_examples(task, tmp_path), load_examples(task, tmp_path), load_examples(task, tmp_path, limit=1)
    assert full.fingerprint == again.fingerprint != limited.fingerprint
    assert limited.n_available == 2 and len(limited.examples) == 1


def test_jsonl_and_csv_readers(tmp_path):
    write_bytes(tmp_path, "d.jsonl", b'{"sentence": "x", "label": 1}\n\n{"sentence": "y", "label": 0}\n')
    assert len(load_examples(make_task(tmp_path, "d.jsonl", "jsonl"), tmp_path).examples) == 2
    write_bytes(tmp_path, "d.csv", b'sentence,label\n"a, b",1\n')
    assert load_examples(make_task(tmp_path, "d.csv", "csv"), tmp_path).examples[0]["text"] == "a, b"


def test_label_outside_the_label_set_names_the_example(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"sentence\tlabel\na\t1\nb\t7\n")
    with pytest.raises(DataError, match=r"example 1: field 'label' has label value '7'"):
        load_examples(make_task(tmp_path), tmp_path)


def test_missing_column_lists_available_columns(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"text\tlabel\na\t1\n")
    with pytest.raises(DataError, match=r"column 'sentence' \(for field 'text'\) not found.*columns are: label, text"):
        load_examples(make_task(tmp_path), tmp_path)


def test_non_utf8_bytes_name_file_and_byte(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(DataError, match=r"d\.tsv: not valid utf-8-sig at byte 18"):
        load_examples(make_task(tmp_path), tmp_path)


def test_wrong_number_of_fields_names_the_line(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"sentence\tlabel\na\t1\nb\n")
    with pytest.raises(DataError, match=r"d\.tsv:3: expected 2 fields"):
        load_examples(make_task(tmp_path), tmp_path)


def test_empty_split_is_an_error(tmp_path):
    write_bytes(tmp_path, "d.tsv", b"sentence\tlabel\n")
    with pytest.raises(DataError, match="contains no examples"):
        load_examples(make_task(tmp_path), tmp_path)


def test_missing_data_says_what_was_looked_for(tmp_path):
    with pytest.raises(DataError) as info:
        load_examples(make_task(tmp_path), tmp_path)
    message = str(info.value)
    assert "local files not found under" in message and "d.tsv" in message and "no hub dataset" in message


def test_missing_data_without_data_dir_says_how_to_provide_it(tmp_path):
    with pytest.raises(DataError, match="pass --data-dir DIR or set EVALHARNESS_DATA_DIR"):
        load_examples(make_task(tmp_path), None)


def test_hub_failure_offline_names_the_hub_id(tmp_path, monkeypatch):
    spec = SPEC.replace("  label_values", "  hub: {{path: nyu-mll/glue, name: sst2, split: validation}}\n  label_values")
    task = make_task(tmp_path, spec=spec)
    with pytest.raises(DataError, match=r"hub: could not load hub dataset nyu-mll/glue \(sst2\) split=validation"):
        load_examples(task, tmp_path)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHARNESS_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")


@pytest.mark.shared_data
def test_builtin_sst2_reads_the_real_dev_set(shared_data):
    from evalharness.spec.catalog import TaskCatalog

    data = load_examples(TaskCatalog().load("glue/sst2"), shared_data)
    assert len(data.examples) == 872  # GLUE SST-2 dev size
    labels = [e["label"] for e in data.examples]
    assert labels.count("positive") == 444 and labels.count("negative") == 428
    assert data.examples[0]["text"].startswith("it 's a charming and often affecting journey")


def test_data_beside_the_task_file_is_read_without_a_data_dir(tmp_path):
    folder = tmp_path / "my_tasks"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "d.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n", encoding="utf-8")
    task = make_task(folder, files="./data/d.tsv")
    data = load_examples(task, None)
    assert [e.fields["label"] for e in data.examples] == ["positive", "negative"]
    assert data.location == str(folder / "data" / "d.tsv")
    # the same file named from a sibling folder, and absolutely: the same examples, the same fingerprint
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert load_examples(make_task(elsewhere, files="../my_tasks/data/d.tsv"), tmp_path / "unused").fingerprint == data.fingerprint
    assert load_examples(make_task(elsewhere, files=str(folder / "data" / "d.tsv")), None).fingerprint == data.fingerprint


def test_missing_data_beside_the_task_file_names_the_path_it_looked_at(tmp_path):
    with pytest.raises(DataError) as info:
        load_examples(make_task(tmp_path, files="./nowhere.tsv"), None)
    assert f"local files not found: {tmp_path / 'nowhere.tsv'} (named beside the task file {tmp_path / 't.yaml'}" in str(info.value)
    assert "no data directory given" not in str(info.value)


def test_a_squad_question_whose_answers_is_not_a_list_is_refused_naming_the_field(tmp_path):
    import json

    spec = "version: 1\nkind: extractive_qa\ndata: {local: {files: [s.json], format: squad_json}}\nmetrics: [squad_exact]\n"
    qa = {"id": "q1", "question": "who?", "answers": ""}  # was read as no answer: an unanswerable question
    document = {"data": [{"title": "t", "paragraphs": [{"context": "ann", "qas": [qa]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "t.yaml").write_text(spec, encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]: 'answers' is a string, not a list of answers"):
        load_examples(load_task(tmp_path / "t.yaml", "t"), tmp_path)


def test_a_reference_field_that_is_not_json_is_refused_naming_the_field(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = ("version: 1\nkind: multiple_choice\ndata: {local: {files: [d.parquet], format: parquet}}\n"
            "metrics: [choice_accuracy]\n")
    (tmp_path / "t.yaml").write_text(spec, encoding="utf-8")
    rows = [{"id": "a", "choices": ["x", "y"], "reference": {"label": 0, "note": b"\x00raw"}}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"example a: field 'reference' should hold JSON values \(text, numbers, lists, objects\), found bytes"):
        load_examples(load_task(tmp_path / "t.yaml", "t"), tmp_path)
    rows[0]["reference"] = {"label": 0, "note": "text"}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    assert load_examples(load_task(tmp_path / "t.yaml", "t"), tmp_path).examples[0]["reference"] == {"label": 0, "note": "text"}
