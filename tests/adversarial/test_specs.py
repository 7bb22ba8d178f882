"""Issue 14, class 2: task specs whose meaning is not what validation checked.

``evalharness tasks validate`` runs every static check that ``evalharness run`` runs (one
function, ``spec.checks.check_task``), and both refuse, with exit code 2 and a message naming
the file (and line and field, or the example), specs whose meaning is ambiguous: label maps
whose keys collide once read as text, names that would share a samples file or shadow a group,
settings the task's kind would silently ignore. YAML is bounded (size, documents, depth, values
and characters after alias expansion) and holds plain data only; templates render in a sandbox
that cannot mutate what it is given and is bounded in output, steps and time; data readers
decide a file's columns from every row, never from the first one.

Most tests run the CLI in-process (``main``); a spec error must stop ``run`` before any model is
touched, so those runs name a checkpoint that does not exist and must not write results.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from evalharness.config import MAX_YAML_BYTES, MAX_YAML_DEPTH, load_yaml, parse_yaml
from evalharness.errors import DataError, SpecError
from evalharness.prompting.sandbox import MAX_PROMPT_CHARS
from evalharness.prompting.templates import render
from evalharness.spec import load_task
from evalharness.types import Example
from tests.inprocess import main  # noqa: F401 - pytest fixture

GOOD = """\
version: 1
kind: classification
data:
  local:
    files: [d.tsv]
    format: tsv
    columns: {text: sentence, label: label}
  label_values: {0: negative, 1: positive}
labels: [negative, positive]
metrics: [accuracy]
"""
TSV = "sentence\tlabel\nit 's a charming and often affecting journey .\t1\nunflinchingly bleak and desperate\t0\n"

PROMPTED = """\
version: 1
kind: classification
data:
  local: {files: [d.tsv], format: tsv, columns: {text: sentence, label: label}}
  label_values: {0: negative, 1: positive}
labels: [negative, positive]
prompt:
  template: "TEMPLATE"
  choices: [" negative", " positive"]
metrics: [accuracy]
"""


def _workspace(tmp_path: Path, spec: str, *, name: str = "mine/task", files: dict | None = None) -> SimpleNamespace:
    tasks, data = tmp_path / "tasks", tmp_path / "data"
    path = tasks / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec, encoding="utf-8")
    data.mkdir(exist_ok=True)
    for file, text in (files if files is not None else {"d.tsv": TSV}).items():
        (data / file).write_text(text, encoding="utf-8")
    return SimpleNamespace(tasks=tasks, data=data, path=path, name=name, out=tmp_path / "out")


def _refused(result: SimpleNamespace, *fragments: str) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


def _validate(main, ws: SimpleNamespace, *fragments: str) -> str:
    return _refused(main("tasks", "validate", str(ws.tasks)), str(ws.path), *fragments)


def _run(main, ws: SimpleNamespace, *fragments: str, model: str | None = None) -> str:
    args = ["run", "--model", model or str(ws.tasks.parent / "no-model"), "--tasks", ws.name,
            "--tasks-dir", str(ws.tasks), "--data-dir", str(ws.data), "--output", str(ws.out)]
    text = _refused(main(*args), *fragments)
    assert not (ws.out / "results.json").exists()
    return text


def _both(main, ws: SimpleNamespace, *fragments: str) -> None:
    """``tasks validate`` and ``run`` refuse alike (one check, two paths)."""
    _validate(main, ws, *fragments)
    _run(main, ws, str(ws.path), *fragments)


# -- YAML: bounded, plain data, one meaning ---------------------------------------------------


def _parse_refused(text: str, *fragments: str, seconds: float = 2.0) -> str:
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "t.yaml")
    assert time.perf_counter() - started < seconds
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    return str(info.value)


def test_billion_laughs_task_file_is_refused_fast(main, tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    ws = _workspace(tmp_path, GOOD + "\n".join(lines) + "\n")
    started = time.perf_counter()
    _validate(main, ws, "expands to more than")
    assert time.perf_counter() - started < 2


NESTED = {
    "flow_list": lambda: "[" * 100_000 + "]" * 100_000,
    "flow_mapping": lambda: "{a: " * 100_000 + "1" + "}" * 100_000,
    "block_mapping": lambda: "".join(" " * i + "a:\n" for i in range(2_000)) + " " * 2_000 + "1\n",
    "block_list": lambda: "".join(" " * i + "- \n" for i in range(2_000)),
    "unclosed": lambda: "[" * 100_000,
}


@pytest.mark.parametrize("style", sorted(NESTED))
def test_deeply_nested_yaml_is_refused_without_recursion_error(style):
    _parse_refused(NESTED[style](), f"nested more than {MAX_YAML_DEPTH} levels deep")


def test_long_flow_list_is_refused_before_it_is_built():
    _parse_refused("a: [" + "1," * 1_500_000 + "]\n", "more than 50,000 values")


def test_task_file_over_the_size_limit_is_refused_unread(main, tmp_path):
    ws = _workspace(tmp_path, GOOD + "description: " + "x" * MAX_YAML_BYTES + "\n")
    _validate(main, ws, "larger than 4 MiB")


def test_alias_repeating_a_large_scalar_is_refused():
    text = "a: &a " + "x" * 1_000_000 + "\nb: [" + ",".join(["*a"] * 3000) + "]\n"
    _parse_refused(text, "expands to more than 4 MiB of text")


def test_thousands_of_unknown_keys_give_a_bounded_message(main, tmp_path):
    ws = _workspace(tmp_path, GOOD + "".join(f"k{i}: {i}\n" for i in range(20_000)))
    text = _validate(main, ws, ":11: k0: unknown key", "and 19,980 more problems")
    assert len(text) < 10_000


def test_self_referencing_alias_is_refused():
    _parse_refused("a: &a [*a]\n", "nested more than")


def test_alias_chain_deeper_than_the_limit_is_refused():
    levels = ["a0: &a0 " + "[" * 60 + "1" + "]" * 60]
    levels += [f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 for i in range(1, 5)]
    _parse_refused("\n".join(levels) + "\n", "through aliases")


def test_second_yaml_document_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD + "---\n" + GOOD.replace("version: 1", "version: 2"))
    _validate(main, ws, ":11: a second YAML document")


def test_merge_key_is_refused(main, tmp_path):
    spec = GOOD.replace("metrics: [accuracy]", "base: &base {name: accuracy}\nmetrics:\n  - <<: *base\n    key: acc2\n")
    ws = _workspace(tmp_path, spec)
    _validate(main, ws, "merge keys ('<<') are not supported")


def test_list_used_as_a_mapping_key_is_refused():
    _parse_refused("? &k [a, b]\n: 1\n", "t.yaml:1:", "a mapping key must be a plain value")


@pytest.mark.parametrize("value", ["!!binary AAAA", "!!set {a, b}", "!!timestamp 2024-01-01", "!!omap [{a: 1}]",
                                   "!!python/name:os.system ''"])
def test_non_plain_yaml_tags_are_refused(value):
    _parse_refused(f"a: {value}\n", "is not allowed in a configuration file")


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!bool maybe"])
def test_bad_explicit_scalar_tag_is_an_error_not_a_traceback(value):
    _parse_refused(f"a: {value}\n", "t.yaml:1:")


def test_yaml_11_booleans_octals_sexagesimals_and_dates_stay_text():
    data, _ = parse_yaml("a: yes\nb: no\nc: on\nd: 010\ne: 1:30\nf: 2024-01-01\ng: true\nh: 0o10\n", "t.yaml")
    assert data == {"a": "yes", "b": "no", "c": "on", "d": 10, "e": "1:30", "f": "2024-01-01", "g": True, "h": 8}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_configuration_file_that_is_a_fifo_is_refused_not_read_forever(tmp_path):
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        load_yaml(fifo)


# -- labels and label maps ---------------------------------------------------------------


@pytest.mark.parametrize("keys", ["{1: positive, '1': negative}", "{'1': positive, '1.0': negative}",
                                  "{true: positive, 'True': negative}", "{'01': positive, 1: negative}",
                                  "{'yes': positive, 'YES': negative}"])
def test_label_values_keys_colliding_after_coercion_are_refused(main, tmp_path, keys):
    ws = _workspace(tmp_path, GOOD.replace("{0: negative, 1: positive}", keys))
    _both(main, ws, ":8: data.label_values", "stand for the same raw label value")


def test_label_values_keys_equal_as_yaml_values_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("{0: negative, 1: positive}", "{1: positive, 1.0: negative}"))
    _both(main, ws, ":8:", "duplicate key")


def test_label_values_mapping_to_a_name_that_is_not_a_label_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("1: positive}", "1: postive}"))
    _both(main, ws, ":8: data.label_values.1: 'postive' is not one of the task's labels", "did you mean 'positive'")


def test_label_values_key_naming_another_label_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("{0: negative, 1: positive}", "{0: negative, positive: negative}"))
    _both(main, ws, "data.label_values.positive", "is the label name 'positive' but is mapped to 'negative'")


def test_label_values_on_a_kind_without_labels_is_refused(main, tmp_path):
    spec = GOOD.replace("kind: classification", "kind: regression").replace("labels: [negative, positive]\n", "")
    ws = _workspace(tmp_path, spec.replace("metrics: [accuracy]", "metrics: [pearson]"))
    _both(main, ws, "data.label_values: a 'regression' task has no label field")


@pytest.mark.parametrize("labels", ["[positive, Positive]", "[not_entailment, not-entailment]", "[a, ' ']"])
def test_labels_a_model_label_cannot_tell_apart_are_refused(main, tmp_path, labels):
    ws = _workspace(tmp_path, GOOD.replace("labels: [negative, positive]", f"labels: {labels}").replace(
        "  label_values: {0: negative, 1: positive}\n", ""))
    _both(main, ws, ":8: labels")


def test_few_shot_pool_is_read_with_its_own_label_values(tmp_path):
    spec = PROMPTED.replace('"TEMPLATE"', '"{{ text }}"') + ""
    spec = spec.replace('  choices: [" negative", " positive"]\n',
                        '  choices: [" negative", " positive"]\n  target: " {{ label }}"\n'
                        "  few_shot:\n    n: 1\n    data:\n      local: {files: [train.tsv], format: tsv, "
                        "columns: {text: sentence, label: label}}\n"
                        "      label_values: {neg: negative, pos: positive}\n")
    ws = _workspace(tmp_path, spec, files={"d.tsv": TSV, "train.tsv": "sentence\tlabel\ngood\tpos\nbad\tneg\n"})
    from evalharness.data.loader import load_examples

    task = load_task(ws.path, ws.name)
    pool = load_examples(task, ws.data, source=task.spec.prompt.few_shot.data, where="prompt.few_shot.data")
    assert [example["label"] for example in pool.examples] == ["positive", "negative"]


# -- names: one meaning for every file a run writes ---------------------------------------


def test_user_task_named_like_a_builtin_group_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="glue")
    _both(main, ws, "'glue' is both a task and a group of tasks")


def test_user_group_shadowing_a_builtin_task_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="demo/sentiment/extra")
    _both(main, ws, "'demo/sentiment' is both a task (", "sentiment.yaml) and a group of tasks")


def test_user_task_added_to_a_builtin_group_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="glue/mine")
    _both(main, ws, "'glue' is a built-in group; a --tasks-dir cannot add 'glue/mine' to it")


def test_task_names_differing_only_in_case_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="mine/Task")
    (ws.tasks / "mine" / "task.yaml").write_text(GOOD, encoding="utf-8")
    _validate(main, ws, "differ only in case")
    _refused(main("tasks", "list", "--tasks-dir", str(ws.tasks)), "differ only in case")


def test_group_names_differing_only_in_case_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="Mine/a")
    (ws.tasks / "mine").mkdir()
    (ws.tasks / "mine" / "b.yaml").write_text(GOOD, encoding="utf-8")
    _refused(main("tasks", "list", "--tasks-dir", str(ws.tasks)), "'mine' and 'Mine' differ only in case")


@pytest.mark.parametrize("name", ["mine/task.v1", "mine/a b", "mine/con", "mine/-x", "mine/tâche"])
def test_task_name_that_is_not_a_portable_path_segment_is_refused(main, tmp_path, name):
    ws = _workspace(tmp_path, GOOD, name=name)
    _validate(main, ws, f"task name '{name}'")


def test_task_and_group_of_the_same_name_in_one_folder_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="mine")
    (ws.tasks / "mine").mkdir()
    (ws.tasks / "mine" / "a.yaml").write_text(GOOD, encoding="utf-8")
    _both(main, ws, "'mine' is both a task and a group of tasks (mine/a)")


def test_yml_file_that_its_group_would_silently_skip_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="mine/a")
    (ws.tasks / "mine" / "b.yml").write_text(GOOD, encoding="utf-8")
    _refused(main("tasks", "validate", str(ws.tasks)), "b.yml: task files end in '.yaml'")
    _refused(main("run", "--model", "x", "--tasks", "mine", "--tasks-dir", str(ws.tasks)), "b.yml")


def test_hidden_files_are_not_tasks(main, tmp_path):
    ws = _workspace(tmp_path, GOOD, name="mine/a")
    (ws.tasks / "mine" / ".#a.yaml").write_text("not: [yaml", encoding="utf-8")
    result = main("tasks", "list", "--tasks-dir", str(ws.tasks))
    assert result.returncode == 0 and "mine/a" in result.stdout.splitlines()


# -- validate checks everything run checks ------------------------------------------------


def test_reader_option_typo_is_caught_by_validate(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("    format: tsv\n", "    format: tsv\n    options: {heder: false}\n"))
    _both(main, ws, ":7: data.local.options.heder: unknown key", "did you mean 'header'")


def test_unknown_reader_encoding_is_caught_by_validate(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("    format: tsv\n", "    format: tsv\n    options: {encoding: utf-9}\n"))
    _both(main, ws, "data.local.options.encoding: unknown encoding 'utf-9'")


def test_header_false_without_column_names_is_caught_by_validate(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("    format: tsv\n", "    format: tsv\n    options: {header: false}\n"))
    _both(main, ws, "data.local.options", "'header: false' needs 'column_names'")


def test_reader_needing_more_files_is_caught_by_validate(main, tmp_path):
    spec = "version: 1\nkind: generation\ndata: {local: {files: [src.txt], format: parallel_text}}\nmetrics: [chrf]\n"
    ws = _workspace(tmp_path, spec, files={"src.txt": "a\n"})
    _both(main, ws, "data.local.files: format 'parallel_text' needs at least 2 files")


def test_column_map_for_a_field_the_kind_lacks_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("label: label}", "label: label, text_piar: s2}"))
    _both(main, ws, "data.local.columns.text_piar: 'text_piar' is not a field", "did you mean 'text_pair'")


def test_same_data_file_listed_twice_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD.replace("files: [d.tsv]", "files: [d.tsv, ./d.tsv]"))
    _both(main, ws, "data.local.files", "are the same file")


def test_formulation_settings_for_another_kind_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD + "formulations:\n  span_head: {doc_stride: 64}\n")
    _both(main, ws, ":12: formulations.span_head: 'span_head' never answers a 'classification' task")


def test_generation_settings_on_a_task_that_never_generates_are_refused(main, tmp_path):
    ws = _workspace(tmp_path, GOOD + "generation: {max_new_tokens: 5}\n")
    _both(main, ws, ":11: generation: a 'classification' task never generates text")


def test_few_shot_without_a_target_is_caught_by_validate(main, tmp_path):
    spec = PROMPTED.replace('"TEMPLATE"', '"{{ text }}"').replace(
        '  choices: [" negative", " positive"]\n', '  choices: [" negative", " positive"]\n  few_shot: {n: 2}\n')
    ws = _workspace(tmp_path, spec)
    _both(main, ws, ":10: prompt.few_shot.n: 2 demonstrations need prompt.target")


def test_prompt_choices_on_a_kind_without_labels_are_refused(main, tmp_path):
    spec = ("version: 1\nkind: multiple_choice\ndata: {local: {files: [mc.jsonl], format: jsonl}}\n"
            "prompt: {template: '{{ question }}', choices: [' a', ' b']}\nmetrics: [choice_accuracy]\n")
    ws = _workspace(tmp_path, spec, files={"mc.jsonl": ""})
    _both(main, ws, "prompt.choices: one continuation per label")


def test_missing_counterfactual_groups_file_is_caught_by_validate(main, tmp_path):
    spec = GOOD + "counterfactual: {fields: [text], groups_file: swaps.tsv}\n"
    spec = spec.replace("metrics: [accuracy]", "metrics: [flip_rate]")
    ws = _workspace(tmp_path, spec)
    _both(main, ws, "counterfactual.groups_file", "not found")


def test_unknown_counterfactual_base_task_is_refused(main, tmp_path):
    spec = GOOD.replace("metrics: [accuracy]", "metrics: [flip_rate]")
    spec += "counterfactual: {base_task: glue/sst3, fields: [text], groups: {gender: [[he, she]]}}\n"
    ws = _workspace(tmp_path, spec)
    _both(main, ws, "counterfactual.base_task: unknown task 'glue/sst3'", "did you mean 'glue/sst2'")


def test_formulation_template_is_checked_like_the_prompt_template(main, tmp_path):
    spec = ("version: 1\nkind: extractive_qa\ndata: {local: {files: [qa.jsonl], format: jsonl}}\n"
            "metrics: [squad_exact]\nformulations:\n  seq2seq_generate: {template: 'question: {{ questoin }}'}\n")
    ws = _workspace(tmp_path, spec, files={"qa.jsonl": ""})
    _both(main, ws, ":6: formulations.seq2seq_generate.template: template uses ['questoin']", "did you mean 'question'")


def test_template_syntax_error_names_file_line_and_field(main, tmp_path):
    ws = _workspace(tmp_path, PROMPTED.replace('"TEMPLATE"', '"{{ text "'))
    _both(main, ws, ":8: prompt.template:")


def test_template_name_that_rendering_never_provides_is_refused(main, tmp_path):
    ws = _workspace(tmp_path, PROMPTED.replace('"TEMPLATE"', '"{{ text }} {{ label_name }}"'))
    _both(main, ws, "prompt.template: template uses ['label_name']")


def test_random_filter_is_refused_so_renders_are_reproducible(main, tmp_path):
    ws = _workspace(tmp_path, PROMPTED.replace('"TEMPLATE"', '"{{ text }} {{ labels|random }}"'))
    _both(main, ws, "prompt.template", "No filter named 'random'")


# -- templates render in a bounded, immutable sandbox -------------------------------------


@pytest.fixture
def prompted(tmp_path):
    """A prompted classification task whose template the test sets; renders in-process."""

    def make(template: str):
        path = tmp_path / "t.yaml"
        path.write_text(PROMPTED.replace('"TEMPLATE"', json.dumps(template)), encoding="utf-8")
        return load_task(path, "t")

    return make


EXAMPLE = Example("ex-7", {"text": "a fine film", "label": "positive"})


@pytest.mark.parametrize("template", ["{% set _ = labels.append('x') %}{{ labels|length }}", "{{ labels.pop() }}",
                                      "{{ labels.sort() }}"])
def test_template_cannot_mutate_the_labels(prompted, template):
    task = prompted(template)
    for _ in range(2):
        with pytest.raises(SpecError, match=r"t\.yaml:8: prompt\.template: cannot render for example ex-7: .*unsafe"):
            render(template, EXAMPLE, task)
    assert task.spec.labels == ["negative", "positive"]


def test_template_cannot_mutate_example_fields(prompted):
    example = Example("mc-1", {"choices": ["a", "b"], "reference": {"label": 0}})
    task = prompted("{{ text }}")
    for template in ["{% set _ = reference.update({'label': 1}) %}", "{{ choices.pop() }}", "{{ reference.clear() }}"]:
        with pytest.raises(SpecError, match="example mc-1: .*unsafe"):
            render(template, example, task)
    assert example.fields == {"choices": ["a", "b"], "reference": {"label": 0}}


def test_two_renders_of_an_example_give_the_same_prompt(prompted):
    template = ("{% set ns = namespace(n=0) %}{% for l in labels %}{% set ns.n = ns.n + 1 %}{{ l }}{% endfor %}"
                "{{ ns.n }} {{ text }}")
    task = prompted(template)
    assert render(template, EXAMPLE, task) == render(template, EXAMPLE, task) == "negativepositive2 a fine film"


@pytest.mark.parametrize("template", ["{% set _ = labels.append('x') %}{{ text }}", "{{ labels.pop() }}{{ text }}",
                                      "{{ (labels|attr('sort'))() }}{{ text }}", "{{ text.__class__ }}"])
def test_template_that_mutates_or_reaches_internals_is_caught_by_validate(main, tmp_path, template):
    ws = _workspace(tmp_path, PROMPTED.replace('"TEMPLATE"', json.dumps(template)))
    _both(main, ws, ":8: prompt.template: template uses", "which rendering refuses")


def test_template_mutating_labels_at_render_time_stops_the_run_naming_file_field_and_example(
    main, tmp_path, tiny_causal_lm
):
    # Reached through a subscript, the method is only known when the template runs.
    ws = _workspace(tmp_path, PROMPTED.replace('"TEMPLATE"', '"{{ labels[\'pop\']() }}{{ text }}"'))
    text = _run(main, ws, f"{ws.path}:8: prompt.template: cannot render for example 0", model=str(tiny_causal_lm))
    assert "unsafe" in text


@pytest.mark.parametrize("template", ["{{ 'x' * 10**9 }}", "{{ text * 100000000 }}", "{{ '%999999999s' % text }}",
                                      "{{ '{:>999999999}'.format(text) }}", "{{ '%*s' % (999999999, text) }}",
                                      "{{ text|center(999999999) }}", "{{ (text * 50000)|replace('a', text * 50000) }}",
                                      "{{ (text * 50000)|join(text * 50000) }}", "{{ 9 ** 999999 }}"])
def test_template_output_bomb_is_refused_before_it_is_built(prompted, template):
    started = time.perf_counter()
    with pytest.raises(SpecError, match="cannot render for example ex-7"):
        render(template, EXAMPLE, prompted(template))
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% set x %}{% for i in range(100000) %}{{ text * 50000 }}{% endfor %}{% endset %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
])
def test_template_time_bomb_is_refused_fast(prompted, template):
    started = time.perf_counter()
    with pytest.raises(SpecError, match="cannot render for example ex-7"):
        render(template, EXAMPLE, prompted(template))
    assert time.perf_counter() - started < 4


def test_prompt_over_the_documented_limit_is_refused(prompted):
    template = "{% for i in range(30) %}{{ text * 40000 }}{% endfor %}"  # 30 x 440,000 characters
    with pytest.raises(SpecError, match=f"more than the {MAX_PROMPT_CHARS:,}"):
        render(template, EXAMPLE, prompted(template))


# -- data: columns decided from every row --------------------------------------------------


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _load(tmp_path: Path, spec: str, files: dict[str, str]):
    from evalharness.data.loader import load_examples

    ws = _workspace(tmp_path, spec, files=files)
    return load_examples(load_task(ws.path, ws.name), ws.data)


JSONL_SPEC = GOOD.replace("files: [d.tsv]", "files: [d.jsonl]").replace("format: tsv", "format: jsonl")


def test_optional_field_present_only_in_later_rows_is_kept_for_them(tmp_path):
    rows = [{"id": "a", "sentence": "one", "label": 1, "text_pair": None},
            {"id": "b", "sentence": "two", "label": 0, "text_pair": "second"}]
    spec = JSONL_SPEC.replace("columns: {text: sentence, label: label}", "columns: {text: sentence, label: label}")
    data = _load(tmp_path, spec, {"d.jsonl": _jsonl(rows)})
    assert [example.fields.get("text_pair") for example in data.examples] == [None, "second"]


def test_row_without_a_column_that_other_rows_have_is_refused(main, tmp_path):
    rows = [{"id": "a", "sentence": "one", "label": 1},
            {"id": "b", "sentence": "two", "label": 0, "text_pair": "second"}]
    ws = _workspace(tmp_path, JSONL_SPEC, files={"d.jsonl": _jsonl(rows)})
    _run(main, ws, "row 1 of", "(example a) has no column 'text_pair', which other rows have")


def test_id_column_present_only_in_later_rows_is_refused(tmp_path):
    rows = [{"sentence": "one", "label": 1}, {"id": "b", "sentence": "two", "label": 0}]
    with pytest.raises(DataError, match="row 1 of .* has no column 'id', which other rows have"):
        _load(tmp_path, JSONL_SPEC, {"d.jsonl": _jsonl(rows)})


def test_dotted_column_found_only_in_later_rows_is_mapped_for_every_row(tmp_path):
    spec = ("version: 1\nkind: extractive_qa\ndata: {local: {files: [qa.jsonl], format: jsonl, "
            "columns: {answers: answers.text}}}\nmetrics: [squad_exact]\n")
    rows = [{"id": "q1", "question": "who?", "context": "nobody", "answers": {"text": []}},
            {"id": "q2", "question": "who?", "context": "ann", "answers": {"text": ["ann"]}}]
    data = _load(tmp_path, spec, {"qa.jsonl": _jsonl(rows)})
    assert [example["answers"] for example in data.examples] == [[], ["ann"]]
    rows[0]["answers"] = ["nobody"]  # a list where other rows have a mapping: no 'text' key
    with pytest.raises(DataError, match="row 1 of .* has no column 'answers.text'"):
        _load(tmp_path / "again", spec, {"qa.jsonl": _jsonl(rows)})


def test_answers_given_as_a_mapping_are_not_read_as_its_keys(tmp_path):
    spec = ("version: 1\nkind: extractive_qa\ndata: {local: {files: [qa.jsonl], format: jsonl}}\n"
            "metrics: [squad_exact]\n")
    rows = [{"id": "q1", "question": "who?", "context": "ann", "answers": {"text": ["ann"], "answer_start": [0]}}]
    with pytest.raises(DataError, match="example q1: field 'answers' should be a list of texts, got dict"):
        _load(tmp_path, spec, {"qa.jsonl": _jsonl(rows)})


def test_json_object_with_a_key_twice_is_refused(tmp_path):
    text = '{"id": "a", "sentence": "one", "label": 1, "label": 0}\n'
    with pytest.raises(DataError, match=r"d\.jsonl:1: key 'label' appears twice"):
        _load(tmp_path, JSONL_SPEC, {"d.jsonl": text})


def test_delimited_header_with_a_column_twice_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"d\.tsv:1: header names \['label'\] twice"):
        _load(tmp_path, GOOD, {"d.tsv": "sentence\tlabel\tlabel\nfine\t1\t0\n"})


def test_boolean_regression_target_is_refused(tmp_path):
    spec = ("version: 1\nkind: regression\ndata: {local: {files: [r.jsonl], format: jsonl}}\nmetrics: [pearson]\n")
    with pytest.raises(DataError, match="example 0: field 'label' should be a number, got True"):
        _load(tmp_path, spec, {"r.jsonl": _jsonl([{"text": "a", "label": True}])})


def test_empty_stop_string_that_would_cut_every_generation_is_refused(main, tmp_path):
    spec = ("version: 1\nkind: generation\ndata: {local: {files: [g.jsonl], format: jsonl}}\n"
            "prompt: {template: '{{ source }}', stop: ['\\n', '']}\nmetrics: [chrf]\n")
    ws = _workspace(tmp_path, spec, files={"g.jsonl": ""})
    _both(main, ws, ":4: prompt.stop", "empty stop string")


def test_validating_a_folder_without_task_files_fails(main, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a task", encoding="utf-8")
    _refused(main("tasks", "validate", str(tmp_path / "empty")), "no task files (*.yaml) in this folder")


def test_json_records_key_that_is_absent_is_an_error_not_a_traceback(tmp_path):
    spec = JSONL_SPEC.replace("format: jsonl", "format: json\n    options: {records_key: rows}")
    spec = spec.replace("d.jsonl", "d.json")
    with pytest.raises(DataError, match=r"d\.json: no top-level key 'rows' \(reader option 'records_key'\)"):
        _load(tmp_path, spec, {"d.json": json.dumps({"data": []})})


SQUAD_SPEC = ("version: 1\nkind: extractive_qa\ndata: {local: {files: [s.json], format: squad_json}}\n"
              "metrics: [squad_exact]\n")


def test_squad_file_with_a_malformed_article_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(DataError, match=r"s\.json: data\[0\]: not SQuAD JSON"):
        _load(tmp_path, SQUAD_SPEC, {"s.json": json.dumps({"data": [5]})})


def test_squad_question_without_answers_is_not_read_as_unanswerable(tmp_path):
    document = {"data": [{"title": "t", "paragraphs": [{"context": "ann", "qas": [{"id": "q1", "question": "who?"}]}]}]}
    with pytest.raises(DataError, match=r"qas\[0\]: missing field 'answers'"):
        _load(tmp_path, SQUAD_SPEC, {"s.json": json.dumps(document)})
