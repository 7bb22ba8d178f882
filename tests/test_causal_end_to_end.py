"""``evalharness run`` with tiny causal LMs: GLUE SST-2 by choices, and temporary language
modelling, generation and QA tasks scored with the built-in perplexity, BLEU and SQuAD
metrics."""

from __future__ import annotations

import json
import math

import numpy as np

import pytest
from sklearn.metrics import accuracy_score

from evalharness.models import load_model
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation
from tests.conftest import CORPUS


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.shared_data
def test_sst2_by_choice_loglikelihood(cli, tmp_path, shared_data, tiny_causal_lm):
    out = tmp_path / "run"
    result = cli(
        "run", "--model", str(tiny_causal_lm), "--model-kind", "causal_lm", "--tasks", "glue/sst2",
        "--data-dir", str(shared_data), "--output", str(out), "--batch-size", "64",
    )
    assert result.returncode == 0, result.stderr
    record = load_record(out)
    task = record.tasks["glue/sst2"]
    assert task.formulation == "choice_loglikelihood" and task.n_examples == 872
    raw = {"format": "raw", "requested": "auto", "reason": "the tokenizer has no chat template", "key": "raw"}
    # 128 positions: 450 of the 1,744 requests lose their context's start (also in the task's notes)
    lint = {"prompts": 872, "requests": 1744, "truncated": 450, "bos_doubled": 0, "bos_missing": 0}
    assert "450 of 1744 requests were truncated to fit the model" in task.notes
    assert task.settings == {"normalization": "none", "few_shot": None, "prompt_format": raw, "prompt_lint": lint}
    assert record.model.kind == "causal_lm" and "prefix_token" in record.model.notes
    samples = read_samples(out, "glue/sst2")
    golds = [row["gold"] for row in samples]
    predictions = [row["prediction"] for row in samples]
    assert task.metrics["accuracy"].value == pytest.approx(100 * accuracy_score(golds, predictions), abs=1e-9)
    adapter = load_model(str(tiny_causal_lm))
    for row in samples[:5]:  # the recorded choice scores are the adapter's log-likelihoods
        responses = adapter.loglikelihood([(row["input"], " negative"), (row["input"], " positive")])
        assert row["details"]["loglikelihoods"] == pytest.approx([r.logprob for r in responses], abs=1e-4)
        assert row["prediction"] == ["negative", "positive"][int(np.argmax(row["details"]["loglikelihoods"]))]
    json.loads((out / "results.json").read_text())


def test_choices_few_shot_flag_from_the_cli(cli, tmp_path, tiny_causal_lm):
    """A classification task with choices, run from the command line with few-shot prompts.

    (Generation flags are not passed: choices are scored, nothing is generated, so
    --max-new-tokens/--num-beams would be refused; see tests/adversarial/test_settings.py.)"""
    from tests.test_prompted_formulations import CLASSIFICATION, write_reviews

    data_dir = write_reviews(tmp_path / "data")
    write(tmp_path / "tasks" / "mine" / "reviews.yaml", CLASSIFICATION % {"extra": ""})
    out = tmp_path / "run"
    result = cli(
        "run", "--model", str(tiny_causal_lm), "--tasks", "mine/reviews", "--tasks-dir", str(tmp_path / "tasks"),
        "--data-dir", str(data_dir), "--output", str(out), "--num-fewshot", "2",
    )
    assert result.returncode == 0, result.stderr
    record = load_record(out)
    assert record.settings["num_fewshot"] == 2 and record.settings["generation"] == {}
    few_shot = record.tasks["mine/reviews"].settings["few_shot"]
    assert few_shot["n"] == 2 and few_shot["seed"] == 1234 and few_shot["pool_size"] == len(read_samples(out, "mine/reviews"))
    assert all(row["input"].count("Sentiment:") == 3 for row in read_samples(out, "mine/reviews"))


def test_causal_lm_on_a_task_it_cannot_answer(cli, tmp_path, tiny_causal_lm):
    from tests.test_prompted_formulations import CLASSIFICATION, write_reviews

    data_dir = write_reviews(tmp_path / "data")
    no_choices = (CLASSIFICATION % {"extra": ""}).replace('  choices: [" negative", " positive"]\n', "")
    write(tmp_path / "tasks" / "mine" / "reviews.yaml", no_choices)
    result = cli(
        "run", "--model", str(tiny_causal_lm), "--tasks", "mine/reviews", "--tasks-dir", str(tmp_path / "tasks"),
        "--data-dir", str(data_dir), "--output", str(tmp_path / "run"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mine/reviews: a causal_lm checkpoint cannot run this classification task" in result.stderr
    assert "choice_loglikelihood: the task has no prompt.choices" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()


LM_TASK = """\
version: 1
kind: language_modeling
data: {local: {files: [lm/docs.jsonl], format: jsonl}}
metrics: [token_perplexity]
formulations:
  rolling_loglikelihood: {window: sliding, max_length: 16, stride: 8}
"""


def test_language_modelling_task_end_to_end(tmp_path, tiny_causal_lm):
    documents = [" ".join(CORPUS[:3]), CORPUS[5], " ".join(CORPUS[2:7])]
    write(tmp_path / "data" / "lm" / "docs.jsonl", "".join(json.dumps({"text": d}) + "\n" for d in documents))
    write(tmp_path / "tasks" / "tmp" / "lm.yaml", LM_TASK)
    config = RunConfig(
        model=str(tiny_causal_lm), tasks=["tmp/lm"], output=tmp_path / "run", data_dir=tmp_path / "data",
        tasks_dirs=[tmp_path / "tasks"], batch_size=2,
    )
    record = run_evaluation(config).record
    assert load_record(tmp_path / "run") == record
    task = record.tasks["tmp/lm"]
    assert task.formulation == "rolling_loglikelihood"
    assert task.settings["window"] == "sliding" and task.settings["max_length"] == 16 and task.settings["stride"] == 8
    expected = load_model(str(tiny_causal_lm)).loglikelihood_rolling(documents, window="sliding", max_length=16, stride=8)
    samples = read_samples(tmp_path / "run", "tmp/lm")
    for row, response in zip(samples, expected):
        assert row["prediction"]["n_tokens"] == response.n_tokens
        assert row["prediction"]["logprob"] == pytest.approx(response.logprob, abs=1e-4)
    total = sum(r.logprob for r in expected) / sum(r.n_tokens for r in expected)
    assert task.metrics["token_perplexity"].value == pytest.approx(math.exp(-total), rel=1e-5)


GENERATION_TASK = """\
version: 1
kind: generation
data: {local: {files: [gen/data.jsonl], format: jsonl}}
prompt:
  template: "Source: {{ source }}\\nTarget:"
  stop: ["\\n", "."]
generation: {max_new_tokens: 6}
metrics: [bleu]
"""

QA_TASK = """\
version: 1
kind: extractive_qa
data: {local: {files: [qa/data.jsonl], format: jsonl}}
prompt:
  template: "{{ context }}\\nQuestion: {{ question }}\\nAnswer:"
  stop: ["\\n"]
metrics: [squad_exact]
"""


def test_generation_and_qa_tasks_end_to_end(tmp_path, tiny_llama):
    sources = ["the movie was", "a wonderful , moving", "is the question answered"]
    write(tmp_path / "data" / "gen" / "data.jsonl", "".join(json.dumps({"source": s, "references": [s]}) + "\n" for s in sources))
    qa = [{"id": f"q{i}", "context": CORPUS[i], "question": "what is it ?", "answers": ["it"]} for i in range(3)]
    write(tmp_path / "data" / "qa" / "data.jsonl", "".join(json.dumps(row) + "\n" for row in qa))
    write(tmp_path / "tasks" / "tmp" / "gen.yaml", GENERATION_TASK)
    write(tmp_path / "tasks" / "tmp" / "qa.yaml", QA_TASK)
    config = RunConfig(
        model=str(tiny_llama), tasks=["tmp"], output=tmp_path / "run", data_dir=tmp_path / "data",
        tasks_dirs=[tmp_path / "tasks"], generation={"max_new_tokens": 4},
    )
    record = run_evaluation(config).record
    adapter = load_model(str(tiny_llama))

    generation = record.tasks["tmp/gen"]
    assert generation.formulation == "prompt_generate"
    assert generation.settings["generation"]["max_new_tokens"] == 4 and generation.settings["stop"] == ["\n", "."]
    prompts = [f"Source: {s}\nTarget:" for s in sources]
    expected = adapter.generate(prompts, stop=["\n", "."], max_new_tokens=4)
    rows = read_samples(tmp_path / "run", "tmp/gen")
    assert [row["prediction"] for row in rows] == [r.text.strip() for r in expected]
    assert [row["input"] for row in rows] == prompts and all(row["details"]["n_tokens"] <= 4 for row in rows)

    answers = read_samples(tmp_path / "run", "tmp/qa")
    assert record.tasks["tmp/qa"].formulation == "prompt_generate"
    expected = adapter.generate([f"{r['context']}\nQuestion: what is it ?\nAnswer:" for r in qa], stop=["\n"], max_new_tokens=4)
    assert [row["prediction"] for row in answers] == [{"text": r.text.strip(), "no_answer_probability": None} for r in expected]
    assert record.tasks["tmp/qa"].metrics["squad_exact"].n == 3
    assert record.tasks["tmp/gen"].metrics["bleu"].n == 3
