"""Built-in GLUE, SQuAD and language-modelling tasks: real data, official sizes, sane labels.

Provenance of the expected counts: the official dev-set sizes (GLUE paper / GLUE data,
SQuAD CHANGELOG and SQuAD 2.0 paper, WikiText and PTB releases) as checked in
../shared/data/MANIFEST.md. Tasks without local data must fail offline with an error that
names the hub dataset and the local files looked for; their local GLUE-layout branch is
checked on tiny files written with the official GLUE column headers.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

from evalharness.spec.catalog import TaskCatalog
from evalharness.data import load_examples
from evalharness.errors import DataError
from evalharness.records.record import load_record, read_samples
from evalharness.spec import load_task

CATALOG = TaskCatalog()

# name -> (examples, label counts or None)
LOCAL = {
    "glue/cola": (1043, {"acceptable": 719, "unacceptable": 324}),
    "glue/mrpc": (408, {"equivalent": 279, "not_equivalent": 129}),
    "glue/stsb": (1500, None),
    "glue/qnli": (5463, {"entailment": 2702, "not_entailment": 2761}),
    "glue/sst2": (872, {"positive": 444, "negative": 428}),
    "squad/v1": (10570, None),
    "squad/v2": (11873, None),
    "lm/wikitext2": (62, None),
    "lm/ptb": (3761, None),
}
HUB_ONLY = {
    "glue/qqp": ("nyu-mll/glue (qqp) split=validation", "glue/QQP/dev.tsv"),
    "glue/mnli_matched": ("nyu-mll/glue (mnli) split=validation_matched", "glue/MNLI/dev_matched.tsv"),
    "glue/mnli_mismatched": ("nyu-mll/glue (mnli) split=validation_mismatched", "glue/MNLI/dev_mismatched.tsv"),
    "glue/rte": ("nyu-mll/glue (rte) split=validation", "glue/RTE/dev.tsv"),
    "glue/wnli": ("nyu-mll/glue (wnli) split=validation", "glue/WNLI/dev.tsv"),
}


# Covered with their official counts by the generation-data and score tests.
COVERED_ELSEWHERE = {
    "demo/sentiment",  # tests/test_demo.py
    "translation/wmt21_de_en", "translation/wmt21_en_de",  # tests/test_generation_data.py
    "translation/wmt23_de_en", "translation/wmt23_en_de",
    "summarization/cnn_dailymail",  # tests/test_generation_data.py
    "summarization/xsum",  # tests/test_score_command.py (fails clearly offline)
    "bias/crows_pairs", "bias/bbq", "bias/winobias",  # tests/test_bias_*.py (official counts)
    "bias/counterfactual_sst2", "bias/counterfactual_qnli", "bias/counterfactual_squad_v1",  # tests/test_counterfactual.py
}


def test_every_builtin_task_is_covered_here():
    covered = set(LOCAL) | set(HUB_ONLY) | COVERED_ELSEWHERE
    assert set(CATALOG.names()) == covered


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(LOCAL))
def test_local_tasks_load_with_official_counts(shared_data, name):
    expected, labels = LOCAL[name]
    task = CATALOG.load(name)
    data = load_examples(task, shared_data)
    assert data.source == "local" and len(data.examples) == expected == data.n_available
    assert len({e.id for e in data.examples}) == expected
    if labels is not None:
        assert Counter(e["label"] for e in data.examples) == labels
        assert set(labels) == set(task.spec.labels)
    limited = load_examples(task, shared_data, limit=7)
    assert [e.id for e in limited.examples] == [e.id for e in data.examples[:7]]
    assert limited.n_available == expected and limited.fingerprint != data.fingerprint


@pytest.mark.shared_data
def test_stsb_is_regression_with_scores_in_range(shared_data):
    task = CATALOG.load("glue/stsb")
    data = load_examples(task, shared_data)
    assert task.spec.kind == "regression" and task.spec.labels is None
    scores = [e["label"] for e in data.examples]
    assert all(0.0 <= s <= 5.0 for s in scores) and len(set(scores)) > 50
    assert data.examples[0]["text"] == "A man with a hard hat is dancing."
    assert data.examples[0]["text_pair"] == "A man wearing a hard hat is dancing."
    assert [m.name for m in task.spec.metrics] == ["pearson", "spearman"]


@pytest.mark.shared_data
def test_mrpc_bom_is_stripped_and_pairs_are_mapped(shared_data):
    first = load_examples(CATALOG.load("glue/mrpc"), shared_data).examples[0]
    assert first["label"] == "equivalent"
    assert first["text"].startswith("He said the foodservice pie business")
    assert first["text_pair"].startswith('"The foodservice pie business does not fit')


@pytest.mark.shared_data
def test_squad_examples_carry_answer_lists(shared_data):
    v1 = load_examples(CATALOG.load("squad/v1"), shared_data).examples
    assert v1[0].id == "56be4db0acb8001400a502ec" and v1[0]["answers"] == ["Denver Broncos"] * 3
    assert v1[0]["title"] == "Super_Bowl_50" and "Super Bowl 50" in v1[0]["context"]
    assert sum(len(e["answers"]) for e in v1) == 34726  # CHANGELOG: "as: 34726"
    v2 = load_examples(CATALOG.load("squad/v2"), shared_data).examples
    answerable = [e for e in v2 if e["answers"]]
    assert len(answerable) == 5928 and len(v2) - len(answerable) == 5945
    assert all(answer in e["context"] for e in answerable for answer in e["answers"])


@pytest.mark.parametrize("name", sorted(HUB_ONLY))
def test_hub_only_tasks_fail_offline_naming_hub_and_local_files(tmp_path, name):
    hub, local = HUB_ONLY[name]
    with pytest.raises(DataError) as info:
        load_examples(CATALOG.load(name), tmp_path)
    message = str(info.value)
    assert message.startswith(f"{name}: evaluation data not found")
    assert f"local files not found under {tmp_path}: {local}" in message
    assert f"could not load hub dataset {hub}" in message


@pytest.mark.parametrize("name", ["glue/cola", "squad/v2", "lm/wikitext2", "lm/ptb"])
def test_local_tasks_without_data_name_their_hub_fallback(tmp_path, name):
    task = CATALOG.load(name)
    with pytest.raises(DataError, match=f"could not load hub dataset {task.spec.data.hub.path}"):
        load_examples(task, tmp_path)


# Tiny files in the official GLUE layout (download_glue_data.py), header lines verbatim.
GLUE_LAYOUT = {
    "glue/qqp": ("glue/QQP/dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
                 ["201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0",
                  "263843\t69383\t380476\tI want to pursue PhD in Computer Science?\tI handle social media for a non-profit.\t1"],
                 ["not_duplicate", "duplicate"]),
    "glue/mnli_matched": ("glue/MNLI/dev_matched.tsv",
                          "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
                          "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label",
                          ["0\t63735\t63735n\tslate\t(x)\t(y)\t(X)\t(Y)\tThe new rights are nice enough\tEveryone really likes the newest benefits\tneutral\tentailment\tneutral\tneutral\tneutral\tneutral",
                           "1\t91383\t91383c\tgovernment\t(x)\t(y)\t(X)\t(Y)\tThis site includes a list\tThe Government Executive articles\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction"],
                          ["neutral", "contradiction"]),
    "glue/rte": ("glue/RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel",
                 ["0\tDana Reeve died of lung cancer.\tChristopher Reeve had an accident.\tnot_entailment",
                  "1\tYet, we now are discovering that antibiotics are losing their effectiveness.\tBacteria is winning the war against antibiotics.\tentailment"],
                 ["not_entailment", "entailment"]),
    "glue/wnli": ("glue/WNLI/dev.tsv", "index\tsentence1\tsentence2\tlabel",
                  ["0\tThe drain is clogged with hair. It has to be cleaned.\tThe hair has to be cleaned.\t0",
                   "1\tJane knocked on Susan's door but she did not answer.\tSusan did not answer.\t1"],
                  ["not_entailment", "entailment"]),
}
GLUE_LAYOUT["glue/mnli_mismatched"] = ("glue/MNLI/dev_mismatched.tsv", *GLUE_LAYOUT["glue/mnli_matched"][1:])


@pytest.mark.parametrize("name", sorted(GLUE_LAYOUT))
def test_hub_tasks_read_local_files_in_glue_layout(tmp_path, name):
    path, header, rows, labels = GLUE_LAYOUT[name]
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    data = load_examples(CATALOG.load(name), tmp_path)
    assert data.source == "local"
    assert [e["label"] for e in data.examples] == labels
    assert all(e["text"] and e["text_pair"] for e in data.examples)
    assert data.examples[0]["text"] == rows[0].split("\t")[{"glue/qqp": 3, "glue/rte": 1, "glue/wnli": 1}.get(name, 8)]


def test_squad_hub_columns_read_nested_answers(tmp_path):
    """The hub layout (rajpurkar/squad_v2: answers = {text: [...], answer_start: [...]}) through
    the same column map as squad/v2's hub source, from a local JSONL file of such rows."""
    hub = CATALOG.load("squad/v2").spec.data.hub
    rows = [
        {"id": "q1", "title": "T", "context": "Paris is in France.", "question": "Where is Paris?",
         "answers": {"text": ["France", "in France"], "answer_start": [12, 9]}},
        {"id": "q2", "title": "T", "context": "Paris is in France.", "question": "Who built it?",
         "answers": {"text": [], "answer_start": []}},
    ]
    (tmp_path / "squad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "version: 1\nkind: extractive_qa\ndata:\n  local:\n    files: [squad.jsonl]\n    format: jsonl\n"
        f"    columns: {json.dumps(hub.columns)}\nmetrics: [squad_exact]\n",
        encoding="utf-8",
    )
    examples = load_examples(load_task(spec, "t"), tmp_path).examples
    assert [e.id for e in examples] == ["q1", "q2"]
    assert examples[0]["answers"] == ["France", "in France"] and examples[1]["answers"] == []


def test_squad_json_reader_on_the_official_layout(tmp_path):
    """Official dev-v2.0.json layout: answer_start present, plausible_answers never read."""
    document = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{"context": "Normandy is in France.", "qas": [
        {"id": "a", "question": "Where?", "answers": [{"text": "France", "answer_start": 15}], "is_impossible": False},
        {"id": "b", "question": "When?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "France", "answer_start": 15}]},
    ]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(document), encoding="utf-8")
    spec = tmp_path / "t.yaml"
    spec.write_text("version: 1\nkind: extractive_qa\ndata: {local: {files: [dev.json], format: squad_json}}\nmetrics: [squad_f1]\n")
    examples = load_examples(load_task(spec, "t"), tmp_path).examples
    assert [(e.id, e["answers"], e["title"]) for e in examples] == [("a", ["France"], "Normans"), ("b", [], "Normans")]
    document["data"][0]["paragraphs"][0]["qas"][1]["is_impossible"] = False
    (tmp_path / "dev.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError, match=r"qas\[1\]: is_impossible=False but 0 answers"):
        load_examples(load_task(spec, "t"), tmp_path)


@pytest.mark.slow  # a real `evalharness run` in a subprocess
@pytest.mark.shared_data
def test_mrpc_run_with_limit_scores_f1_and_accuracy(cli, tmp_path, shared_data, tiny_classifier):
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_classifier), "--tasks", "glue/mrpc", "--data-dir", str(shared_data),
                 "--output", str(out), "--limit", "60", "--label-map", "negative=not_equivalent,positive=equivalent")
    assert result.returncode == 0, result.stderr
    task = load_record(out).tasks["glue/mrpc"]
    assert task.n_examples == 60 and task.data.n_available == 408
    rows = read_samples(out, "glue/mrpc")
    gold, pred = [r["gold"] for r in rows], [r["prediction"] for r in rows]
    assert task.metrics["accuracy"].value == pytest.approx(100 * accuracy_score(gold, pred))
    f1 = task.metrics["f1"]
    if f1.value is not None:
        assert f1.value == pytest.approx(100 * f1_score(gold, pred, pos_label="equivalent"))
    assert "positive_label:equivalent" in f1.signature and f1.settings["positive_label"] == "equivalent"


@pytest.mark.slow  # a real `evalharness run` in a subprocess
@pytest.mark.shared_data
def test_stsb_run_with_limit_scores_correlations(cli, tmp_path, shared_data, tiny_regressor):
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_regressor), "--tasks", "glue/stsb", "--data-dir", str(shared_data),
                 "--output", str(out), "--limit", "50")
    assert result.returncode == 0, result.stderr
    task = load_record(out).tasks["glue/stsb"]
    rows = read_samples(out, "glue/stsb")
    gold, pred = [r["gold"] for r in rows], [r["prediction"] for r in rows]
    assert task.n_examples == 50 == len(rows)
    assert task.metrics["pearson"].value == pytest.approx(100 * stats.pearsonr(pred, gold).statistic, abs=1e-6)
    assert task.metrics["spearman"].value == pytest.approx(100 * stats.spearmanr(pred, gold).statistic, abs=1e-6)
    assert "accuracy" not in task.metrics


def test_tasks_validate_accepts_every_builtin_task(cli):
    result = cli("tasks", "validate", "tasks/")
    assert result.returncode == 0, result.stderr
    for name in [*LOCAL, *HUB_ONLY]:
        assert f"ok      tasks/{name}.yaml" in result.stdout
