"""The seq2seq adapter and the seq2seq_generate formulation on tiny T5, BART and Marian models."""

from __future__ import annotations

import json

import pytest

from evalharness.errors import UnsupportedTaskError, UsageError
from evalharness.models import load_model
from evalharness.records.record import load_record, read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.types import RequestKind

SOURCES = [
    "the movie was great but the plot was dull .",
    "a wonderful , moving and funny story about love and loss .",
    "what a boring film",
    "it 's a charming and often affecting journey .",
    "this film is not good , and the acting is awful .",
]
T5_PREFIX = "translate English to German: "


def plain_generate(adapter, prompt, **settings):
    """The reference: one unpadded input through transformers' generate, decoded by hand."""
    import torch

    encoded = adapter.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        output = adapter.model.generate(**encoded, do_sample=False, **settings)[0, 1:].tolist()
    eos = adapter.model.generation_config.eos_token_id
    if eos in output:
        output = output[: output.index(eos)]
    return adapter.tokenizer.decode(output, skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def models(tiny_t5, tiny_bart, tiny_marian):
    return {"t5": load_model(str(tiny_t5)), "bart": load_model(str(tiny_bart)), "marian": load_model(str(tiny_marian))}


def test_kinds_and_model_types(models):
    for model_type, adapter in models.items():
        assert adapter.kind == "seq2seq" and adapter.answers == frozenset({RequestKind.GENERATE})
        assert adapter.model_type == model_type
    assert models["marian"].info.architecture == "MarianMTModel"
    assert "not tokenizers-backed" in models["marian"].info.notes["tokenizer"]  # SentencePiece, slow


@pytest.mark.parametrize("model_type", ["t5", "bart", "marian"])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_batched_generation_equals_unbatched_and_plain_transformers(models, model_type, num_beams):
    adapter = models[model_type]
    settings = {"max_new_tokens": 8, "num_beams": num_beams}
    one = adapter.generate(SOURCES, batch_size=1, **settings)
    many = adapter.generate(SOURCES, batch_size=16, **settings)
    assert [r.text for r in one] == [r.text for r in many] and [r.n_tokens for r in one] == [r.n_tokens for r in many]
    assert [r.text for r in one] == [plain_generate(adapter, s, **settings) for s in SOURCES]
    assert len({r.text for r in one}) > 1  # the outputs depend on the input
    assert all(0 < r.n_tokens <= 8 and not r.truncated for r in one)


def test_generation_settings_replace_the_checkpoint_defaults_and_are_reported(models):
    adapter = models["bart"]
    settings = adapter.generation_settings(max_new_tokens=5, num_beams=2, length_penalty=0.8, no_repeat_ngram_size=3)
    assert settings["max_new_tokens"] == 5 and settings["num_beams"] == 2 and settings["do_sample"] is False
    assert settings["length_penalty"] == 0.8 and settings["no_repeat_ngram_size"] == 3
    assert settings["forced_eos_token_id"] == adapter.tokenizer.eos_token_id  # kept from the checkpoint
    short = adapter.generate(SOURCES[:2], max_new_tokens=2)
    assert all(r.n_tokens <= 2 for r in short)
    with pytest.raises(UsageError, match="num_beams: Input should be greater than or equal to 1"):
        adapter.generate(SOURCES, num_beams=0)


def test_long_input_is_truncated_and_flagged_and_stop_strings_cut(models):
    adapter = models["t5"]
    responses = adapter.generate(["the movie " * 200, SOURCES[0]], max_new_tokens=4)
    assert [r.truncated for r in responses] == [True, False]
    full = adapter.generate([SOURCES[1]], max_new_tokens=8)[0].text
    marker = full[len(full) // 2 :][:2]
    cut = adapter.generate([SOURCES[1]], max_new_tokens=8, stop=[marker])[0].text
    assert cut == full[: full.index(marker)].rstrip()


def write_generation_task(tmp_path, *, formulations: str = "", generation: str = "generation: {max_new_tokens: 6}\n"):
    with (tmp_path / "pairs.jsonl").open("w", encoding="utf-8") as stream:
        for index, source in enumerate(SOURCES):
            stream.write(json.dumps({"id": f"s{index}", "source": source, "references": [source.upper()]}) + "\n")
    (tmp_path / "tasks").mkdir(exist_ok=True)
    (tmp_path / "tasks" / "mt_mini.yaml").write_text(
        "version: 1\nkind: generation\n"
        "data: {local: {files: [pairs.jsonl], format: jsonl}}\n"
        "metrics: [chrf]\n" + generation + formulations,
        encoding="utf-8",
    )


PREFIXES = f"formulations: {{seq2seq_generate: {{prefixes: {{t5: '{T5_PREFIX}'}}}}}}\n"


@pytest.mark.parametrize("model_type", ["t5", "bart"])
def test_run_end_to_end_and_prefix_only_for_matching_model_type(cli, tmp_path, models, tiny_t5, tiny_bart, model_type):
    checkpoint = {"t5": tiny_t5, "bart": tiny_bart}[model_type]
    write_generation_task(tmp_path, formulations=PREFIXES)
    out = tmp_path / "run"
    result = cli("run", "--model", str(checkpoint), "--tasks", "mt_mini", "--tasks-dir", str(tmp_path / "tasks"),
                 "--data-dir", str(tmp_path), "--output", str(out), "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    task = load_record(out).tasks["mt_mini"]
    prefix = T5_PREFIX if model_type == "t5" else ""
    assert task.formulation == "seq2seq_generate" and task.settings["model_type"] == model_type
    assert task.settings["prefix"] == prefix and task.settings["generation"]["max_new_tokens"] == 6
    samples = read_samples(out, "mt_mini")
    assert [s["input"] for s in samples] == [prefix + source for source in SOURCES]
    direct = models[model_type].generate([prefix + s for s in SOURCES], max_new_tokens=6)
    assert [s["prediction"] for s in samples] == [d.text for d in direct]


def test_generation_settings_are_overridable_per_run(tmp_path, tiny_t5):
    write_generation_task(tmp_path)
    config = RunConfig(model=str(tiny_t5), tasks=["mt_mini"], tasks_dirs=[tmp_path / "tasks"], data_dir=tmp_path,
                       output=tmp_path / "run", generation={"max_new_tokens": 3, "num_beams": 2})
    record = run_evaluation(config).record
    generation = record.tasks["mt_mini"].settings["generation"]
    assert generation["max_new_tokens"] == 3 and generation["num_beams"] == 2
    assert record.settings["generation"] == {"max_new_tokens": 3, "num_beams": 2}
    with pytest.raises(UsageError, match="max_new_token: unknown setting"):
        RunConfig(model=str(tiny_t5), tasks=["mt_mini"], tasks_dirs=[tmp_path / "tasks"], data_dir=tmp_path,
                  output=tmp_path / "bad", generation={"max_new_token": 3})


def test_t5_answers_extractive_qa_with_a_template(tmp_path, tiny_t5, models):
    rows = [
        {"id": "q1", "question": "who won ?", "context": "the denver broncos won the game .", "answers": ["denver broncos"]},
        {"id": "q2", "question": "when ?", "context": "it was played on february 7 , 2016 .", "answers": []},
    ]
    with (tmp_path / "qa.jsonl").open("w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "qa_mini.yaml").write_text(
        "version: 1\nkind: extractive_qa\ndata: {local: {files: [qa.jsonl], format: jsonl}}\nmetrics: [squad_exact]\n"
        "generation: {max_new_tokens: 8}\n"
        "formulations: {seq2seq_generate: {template: 'question: {{ question }} context: {{ context }}'}}\n",
        encoding="utf-8",
    )
    config = RunConfig(model=str(tiny_t5), tasks=["qa_mini"], tasks_dirs=[tmp_path / "tasks"], data_dir=tmp_path, output=tmp_path / "run")
    record = run_evaluation(config).record
    assert record.tasks["qa_mini"].formulation == "seq2seq_generate"
    samples = read_samples(tmp_path / "run", "qa_mini")
    prompts = [f"question: {r['question']} context: {r['context']}" for r in rows]
    assert [s["input"] for s in samples] == prompts
    direct = models["t5"].generate(prompts, max_new_tokens=8)
    assert [s["prediction"] for s in samples] == [{"text": d.text, "no_answer_probability": None} for d in direct]


def test_seq2seq_cannot_run_classification_and_qa_needs_a_template(cli, tmp_path, shared_data, tiny_t5):
    result = cli("run", "--model", str(tiny_t5), "--tasks", "glue/sst2", "--data-dir", str(shared_data), "--output", str(tmp_path / "a"))
    assert result.returncode == 2 and "seq2seq checkpoint cannot run this classification task" in result.stderr
    (tmp_path / "tasks").mkdir()
    (tmp_path / "qa.jsonl").write_text(json.dumps({"question": "q", "context": "c", "answers": ["c"]}) + "\n")
    (tmp_path / "tasks" / "qa_plain.yaml").write_text(
        "version: 1\nkind: extractive_qa\ndata: {local: {files: [qa.jsonl], format: jsonl}}\nmetrics: [squad_exact]\n"
    )
    config = RunConfig(model=str(tiny_t5), tasks=["qa_plain"], tasks_dirs=[tmp_path / "tasks"], data_dir=tmp_path, output=tmp_path / "b")
    with pytest.raises(UnsupportedTaskError, match="needs formulations.seq2seq_generate.template"):
        run_evaluation(config)
