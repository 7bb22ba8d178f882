"""Bad evaluation data through ``evalharness run`` (in-process) on a tiny real classifier:
exit code 2 with a message naming the task, file, column or example, no traceback and no
results.json; BOMs and very long inputs are handled (not errors) and accounted for.

Reader-level messages are checked in tests/test_data.py; mismatched prediction files for
``evalharness score`` in tests/test_score_command.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.inprocess import main  # noqa: F401 - pytest fixture

CLASSIFICATION = """\
version: 1
kind: classification
data:
  local:
    files: [{file}]
    format: {format}
    columns: {{text: sentence, label: label}}
  label_values: {{0: negative, 1: positive}}
labels: [negative, positive]
metrics: [accuracy]
"""

REGRESSION = """\
version: 1
kind: regression
data:
  local:
    files: [d.jsonl]
    format: jsonl
    columns: {text: sentence, label: score}
metrics: [pearson]
"""

GENERATION = """\
version: 1
kind: generation
data:
  local:
    files: [d.jsonl]
    format: jsonl
    columns: {source: src, references: refs}
metrics: [bleu]
"""

PROMPTED_MISSING_COLUMN = CLASSIFICATION.replace("{{text: sentence, label: label}}", "{{text: sentense, label: label}}")


def _setup(tmp_path: Path, spec: str, data: dict[str, bytes]) -> tuple[Path, Path]:
    tasks, data_dir = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    data_dir.mkdir()
    (tasks / "t.yaml").write_text(spec, encoding="utf-8")
    for name, content in data.items():
        (data_dir / name).write_bytes(content)
    return tasks, data_dir


def _run(main, model: Path, tasks: Path, data_dir: Path, out: Path, *extra: str):
    return main("run", "--model", str(model), "--tasks", "t", "--tasks-dir", str(tasks), "--data-dir", str(data_dir),
                "--output", str(out), "--device", "cpu", "--batch-size", "4", *extra)


TSV = CLASSIFICATION.format(file="d.tsv", format="tsv")
JSONL = CLASSIFICATION.format(file="d.jsonl", format="jsonl")

# name -> (spec, data files, fragments the message must contain)
BAD_DATA = {
    "missing_file": (TSV, {}, ["t", "d.tsv"]),
    "missing_column": (PROMPTED_MISSING_COLUMN.format(file="d.tsv", format="tsv"), {"d.tsv": b"sentence\tlabel\nfine\t1\n"},
                       ["column 'sentense'", "d.tsv", "did you mean 'sentence'"]),
    "empty_split": (TSV, {"d.tsv": b"sentence\tlabel\n"}, ["d.tsv", "no examples"]),
    "label_outside_the_label_set": (TSV, {"d.tsv": b"sentence\tlabel\nfine\t1\nodd\t7\n"}, ["example 1", "label", "'7'"]),
    "none_label": (JSONL, {"d.jsonl": b'{"sentence": "fine", "label": 1}\n{"sentence": "odd", "label": null}\n'},
                   ["example 1", "field 'label'", "missing"]),
    "nan_regression_reference": (REGRESSION, {"d.jsonl": b'{"sentence": "a", "score": 1.5}\n{"sentence": "b", "score": NaN}\n'},
                                 ["example 1", "field 'label'"]),
    "string_nan_regression_reference": (REGRESSION, {"d.jsonl": b'{"sentence": "a", "score": 1.5}\n{"sentence": "b", "score": "nan"}\n'},
                                        ["example 1", "field 'label'", "finite"]),
    "none_among_references": (GENERATION, {"d.jsonl": b'{"src": "a", "refs": ["x", null]}\n'}, ["example 0", "references"]),
    "non_utf8_bytes": (TSV, {"d.tsv": b"sentence\tlabel\ncaf\xe9\t1\n"}, ["d.tsv", "UTF-8"]),
    "ragged_tsv_line": (TSV, {"d.tsv": b"sentence\tlabel\nfine\t1\textra\n"}, ["d.tsv", ":2"]),
    "invalid_jsonl_line": (JSONL, {"d.jsonl": b'{"sentence": "fine", "label": 1}\n{"sentence": \n'}, ["d.jsonl:2", "invalid JSON"]),
    "duplicate_ids": (JSONL.replace("label: label}", "label: label, id: key}"),
                      {"d.jsonl": b'{"key": "a", "sentence": "x", "label": 1}\n{"key": "a", "sentence": "y", "label": 0}\n'},
                      ["duplicate example id 'a'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_exits_2_naming_what_is_wrong(main, tmp_path, tiny_classifier, case):
    spec, files, fragments = BAD_DATA[case]
    tasks, data_dir = _setup(tmp_path, spec, files)
    out = tmp_path / "out"
    result = _run(main, tiny_classifier, tasks, data_dir, out)
    assert result.returncode == 2, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.stderr
    assert not (out / "results.json").exists()


def test_bom_is_stripped_from_the_first_column_name(main, tmp_path, tiny_classifier):
    """A UTF-8 BOM (Excel's CSV export) must not become part of the first column's name."""
    tasks, data_dir = _setup(tmp_path, TSV, {"d.tsv": "\ufeffsentence\tlabel\nfine\t1\nbad\t0\n".encode()})
    result = _run(main, tiny_classifier, tasks, data_dir, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert record["tasks"]["t"]["n_examples"] == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / record["tasks"]["t"]["samples"]).read_text(encoding="utf-8").splitlines()]
    assert [row["gold"] for row in rows] == ["positive", "negative"]
    assert all("\ufeff" not in json.dumps(row, ensure_ascii=False) for row in rows)


def test_bom_in_jsonl_and_csv_is_handled(main, tmp_path, tiny_classifier):
    spec = CLASSIFICATION.format(file="d.jsonl", format="jsonl")
    tasks, data_dir = _setup(tmp_path, spec, {"d.jsonl": '\ufeff{"sentence": "fine", "label": 1}\n'.encode()})
    assert _run(main, tiny_classifier, tasks, data_dir, tmp_path / "out").returncode == 0
    (tasks / "t.yaml").write_text(CLASSIFICATION.format(file="d.csv", format="csv"), encoding="utf-8")
    (data_dir / "d.csv").write_bytes("\ufeffsentence,label\nfine,1\n".encode())
    result = _run(main, tiny_classifier, tasks, data_dir, tmp_path / "out2")
    assert result.returncode == 0, result.stderr


def test_very_long_inputs_are_truncated_and_counted_in_the_record(main, tmp_path, tiny_classifier):
    long_text = " ".join(["the movie was great but the plot was dull ."] * 400)  # ~4000 tokens >> 512 positions
    data = f"sentence\tlabel\n{long_text}\t1\nfine\t0\n{long_text}\t0\n".encode()
    tasks, data_dir = _setup(tmp_path, TSV, {"d.tsv": data})
    result = _run(main, tiny_classifier, tasks, data_dir, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    entry = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))["tasks"]["t"]
    assert entry["n_examples"] == 3
    assert any(note.startswith("2 of 3 requests were truncated") for note in entry["notes"]), entry["notes"]


def test_one_run_mixes_a_builtin_task_on_the_data_dir_with_a_user_task_on_its_own_files(main, tiny_classifier, tmp_path):
    tasks, data_dir = tmp_path / "mine", tmp_path / "shared"
    (tasks / "data").mkdir(parents=True)
    (data_dir / "glue" / "SST-2").mkdir(parents=True)
    (tasks / "reviews.yaml").write_text(CLASSIFICATION.format(file="./data/reviews.tsv", format="tsv"), encoding="utf-8")
    (tasks / "data" / "reviews.tsv").write_text("sentence\tlabel\ngreat\t1\nawful\t0\nfine\t1\n", encoding="utf-8")
    (data_dir / "glue" / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nnice\t1\nbad\t0\n", encoding="utf-8")
    out = tmp_path / "run"
    result = main("run", "--model", str(tiny_classifier), "--tasks", "reviews,glue/sst2", "--tasks-dir", str(tasks),
                  "--data-dir", str(data_dir), "--output", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert record["tasks"]["reviews"]["n_examples"] == 3 and record["tasks"]["glue/sst2"]["n_examples"] == 2
    assert record["tasks"]["reviews"]["data"]["location"] == str(tasks / "data" / "reviews.tsv")
