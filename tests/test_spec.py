"""Task specs: schema validation, precise error messages, safe YAML and the content hash."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalharness.spec.catalog import check_task
from evalharness.errors import SpecError
from evalharness.spec import load_task

VALID = """\
version: 1
kind: classification
data:
  local: {files: [x.tsv], format: tsv, columns: {text: sentence}}
labels: [negative, positive]
metrics: [accuracy]
"""


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_checked(path: Path):
    task = load_task(path, path.stem)
    check_task(task)
    return task


def test_valid_spec_loads_with_version_and_hash(tmp_path):
    task = load_checked(write(tmp_path, VALID))
    assert task.version == 1
    assert task.spec.metrics[0].name == "accuracy"
    assert task.spec_hash.startswith("sha256:")


def test_hash_ignores_layout_but_not_content(tmp_path):
    reformatted = VALID.replace("metrics: [accuracy]", "metrics:\n  - name: accuracy")
    a = load_task(write(tmp_path, VALID, "a.yaml"), "a")
    b = load_task(write(tmp_path, reformatted, "b.yaml"), "b")
    c = load_task(write(tmp_path, VALID.replace("version: 1", "version: 2"), "c.yaml"), "c")
    assert a.spec_hash == b.spec_hash != c.spec_hash


def test_unknown_key_names_file_and_field(tmp_path):
    path = write(tmp_path, VALID + "colums: {}\n")
    with pytest.raises(SpecError) as info:
        load_checked(path)
    assert str(path) in str(info.value) and "colums: unknown key" in str(info.value)


def test_nested_unknown_key_has_field_path(tmp_path):
    path = write(tmp_path, VALID.replace("format: tsv", "format: tsv, delimiter: ','"))
    with pytest.raises(SpecError, match=r"data\.local\.delimiter: unknown key"):
        load_checked(path)


def test_wrong_type_says_what_was_expected(tmp_path):
    path = write(tmp_path, VALID.replace("version: 1", "version: one"))
    with pytest.raises(SpecError, match=r"version: Input should be a valid integer.*'one'"):
        load_checked(path)


def test_unknown_metric_suggests_the_closest(tmp_path):
    path = write(tmp_path, VALID.replace("metrics: [accuracy]", "metrics: [acc]"))
    with pytest.raises(SpecError) as info:
        load_checked(path)
    assert f"{path}:6: metrics[0].name: unknown metric 'acc'; did you mean 'accuracy'?" in str(info.value)


def test_unknown_kind_lists_known_kinds(tmp_path):
    path = write(tmp_path, VALID.replace("kind: classification", "kind: clasification"))
    with pytest.raises(SpecError, match=r"kind: unknown task kind 'clasification'; did you mean 'classification'"):
        load_checked(path)


def test_unknown_metric_setting_is_rejected(tmp_path):
    path = write(tmp_path, VALID.replace("metrics: [accuracy]", "metrics: [{name: accuracy, settings: {average: macro}}]"))
    with pytest.raises(SpecError, match=r"metrics\[0\]\.settings\.average: unknown key"):
        load_checked(path)


def test_yaml_syntax_error_reports_line(tmp_path):
    path = write(tmp_path, VALID + "labels: [a, b\n")
    with pytest.raises(SpecError, match=r"task\.yaml:\d+:\d+: YAML syntax error"):
        load_checked(path)


def test_duplicate_yaml_key_is_an_error_not_last_wins(tmp_path):
    path = write(tmp_path, VALID + "version: 2\n")
    with pytest.raises(SpecError, match="duplicate key 'version'"):
        load_checked(path)


def test_yaml_cannot_construct_python_objects(tmp_path):
    path = write(tmp_path, VALID + "description: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SpecError, match="YAML"):
        load_checked(path)


def test_template_field_that_the_task_kind_lacks(tmp_path):
    path = write(tmp_path, VALID + 'prompt:\n  template: "{{ sentence }} ->"\n')
    with pytest.raises(SpecError, match=r"prompt\.template: template uses \['sentence'\]"):
        load_checked(path)


def test_choices_must_match_labels(tmp_path):
    path = write(tmp_path, VALID + 'prompt:\n  template: "{{ text }}"\n  choices: [" bad"]\n')
    with pytest.raises(SpecError, match="prompt.choices has 1 entries but there are 2 labels"):
        load_checked(path)


def test_classification_needs_labels(tmp_path):
    path = write(tmp_path, VALID.replace("labels: [negative, positive]\n", ""))
    with pytest.raises(SpecError, match="needs 'labels'"):
        load_checked(path)


def test_unknown_reader_format(tmp_path):
    path = write(tmp_path, VALID.replace("format: tsv", "format: tvs"))
    with pytest.raises(SpecError, match=r"data\.local\.format: unknown format 'tvs'; did you mean 'tsv'"):
        load_checked(path)


def test_local_files_cannot_escape_the_data_dir(tmp_path):
    path = write(tmp_path, VALID.replace("files: [x.tsv]", "files: [glue/../../etc/passwd]"))
    with pytest.raises(SpecError, match="leaves the data directory; name a file under --data-dir, beside the task file"):
        load_checked(path)


def test_formulation_settings_are_validated(tmp_path):
    path = write(tmp_path, VALID + "formulations:\n  classifier_hed: {}\n")
    with pytest.raises(SpecError, match=r"formulations\.classifier_hed: unknown formulation; did you mean 'classifier_head'"):
        load_checked(path)
    path = write(tmp_path, VALID + "formulations:\n  classifier_head: {stride: 3}\n")
    with pytest.raises(SpecError, match=r"formulations\.classifier_head\.stride: unknown key"):
        load_checked(path)


def test_metric_listed_twice_needs_distinct_keys(tmp_path):
    path = write(tmp_path, VALID.replace("metrics: [accuracy]", "metrics: [accuracy, accuracy]"))
    with pytest.raises(SpecError, match=r"\['accuracy'\] listed twice; give each a distinct 'key'"):
        load_checked(path)
    ok = write(tmp_path, VALID.replace("metrics: [accuracy]", "metrics: [accuracy, {name: accuracy, key: accuracy_again}]"), "ok.yaml")
    assert [m.result_key for m in load_checked(ok).spec.metrics] == ["accuracy", "accuracy_again"]


def test_generation_min_cannot_exceed_max(tmp_path):
    path = write(tmp_path, VALID + "generation: {max_new_tokens: 8, min_new_tokens: 56}\n")
    with pytest.raises(SpecError, match=r"generation: min_new_tokens \(56\) is larger than max_new_tokens \(8\)"):
        load_checked(path)


def test_metric_settings_with_integer_mapping_keys_load_as_yaml_reads_them(tmp_path):
    # YAML reads `0: negative` with an integer key; metric settings pass it on unchanged
    # (hf_evaluate's compute_kwargs), they are not JSON objects with text keys only
    path = write(tmp_path, VALID.replace("metrics: [accuracy]", """\
metrics:
  - name: hf_evaluate
    settings: {path: ./m.py, compute_kwargs: {id2label: {0: negative, 1: positive}}}
"""))
    task = load_task(path, path.stem)
    assert task.spec.metrics[0].settings["compute_kwargs"] == {"id2label": {0: "negative", 1: "positive"}}
