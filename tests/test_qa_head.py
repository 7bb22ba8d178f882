"""The extractive-QA adapter on a tiny real BERT QA head and real SQuAD paragraphs.

Parity reference: transformers' ``question-answering`` pipeline. transformers 5.3 removed the
pipeline class (the installed 5.x has none), but kept its decoding function
``select_starts_ends`` (now in ``pipelines/document_question_answering.py``).
``pipeline_answer`` below is the pipeline's preprocess -> forward -> postprocess of
v5.2.0 (``pipelines/question_answering.py``) written out around that function: one window
per forward pass, the fast tokenizer's own ``Encoding.word_to_chars`` for word alignment,
``top_k * 2 + 10`` candidates per window, equal texts summed, the null answer appended last.
``benchmarks/parity_heads.py`` compares against the real pipeline class of transformers 5.2.0.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from evalharness.errors import UsageError
from evalharness.models import load_model
from evalharness.records.record import load_record, read_samples
from evalharness.types import RequestKind, SpanRequest
from tests.conftest import REPO, squad_examples

LONG_CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
    "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
    "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West "
    "Francia. Through generations of assimilation and mixing with the native Frankish and "
    "Roman-Gaulish populations, their descendants would gradually merge with the Carolingian-based "
    "cultures of West Francia. The distinct cultural and ethnic identity of the Normans emerged "
    "initially in the first half of the 10th century, and it continued to evolve over the succeeding centuries."
)


def pipeline_answer(model, tokenizer, question, context, *, max_seq_len, doc_stride, max_answer_len, handle_impossible_answer):
    """transformers 5.2.0's QuestionAnsweringPipeline for one question, top_k=1 (see module doc)."""
    import torch
    from transformers.pipelines.document_question_answering import select_starts_ends

    encoded = tokenizer(
        text=question,
        text_pair=context,
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_token_type_ids=True,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    answers, min_null_score = [], 1000000
    for span in range(len(encoded["input_ids"])):
        p_mask = [int(sequence != 1) for sequence in encoded.sequence_ids(span)]
        for index, token in enumerate(encoded["input_ids"][span]):
            if token == tokenizer.cls_token_id:
                p_mask[index] = 0
        inputs = {name: torch.tensor([encoded[name][span]]) for name in tokenizer.model_input_names}
        with torch.no_grad():
            output = model(**inputs)
        starts, ends, scores, min_null_score = select_starts_ends(
            output.start_logits.numpy(),
            output.end_logits.numpy(),
            np.array([p_mask]),
            np.array([encoded["attention_mask"][span]]),
            min_null_score,
            1 * 2 + 10,
            handle_impossible_answer,
            max_answer_len,
        )
        encoding = encoded[span]
        for start, end, score in zip(starts, ends, scores):
            try:
                first = encoding.word_to_chars(encoding.token_to_word(start), sequence_index=1)[0]
                last = encoding.word_to_chars(encoding.token_to_word(end), sequence_index=1)[1]
            except Exception:
                first, last = encoding.offsets[start][0], encoding.offsets[end][1]
            text = context[first:last]
            same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
            if same:
                same["score"] += score.item()
            else:
                answers.append({"score": score.item(), "start": first, "answer": text})
    if handle_impossible_answer:
        answers.append({"score": min_null_score, "start": 0, "answer": ""})
    return sorted(answers, key=lambda a: a["score"], reverse=True)[0]


@pytest.fixture(scope="module")
def qa(tiny_qa_model):
    return load_model(str(tiny_qa_model))


def test_kind_detection_and_windowing_defaults(qa):
    assert qa.kind == "extractive_qa" and qa.answers == frozenset({RequestKind.EXTRACT_SPAN})
    assert qa.info.architecture == "BertForQuestionAnswering"
    assert qa.windowing() == (128, 64)  # min(model limit 128, 384), min(128 // 2, 128)
    assert qa.windowing(96, 32) == (96, 32)
    with pytest.raises(UsageError, match="doc_stride=124 does not fit"):
        qa.windowing(None, 124)


def test_long_context_is_windowed_and_answers_are_context_slices(qa):
    questions = ["who swore fealty to king charles ?", "when did the normans emerge ?", "what region is in france ?"]
    assert len(qa.tokenizer(LONG_CONTEXT)["input_ids"]) > 128  # needs several windows
    for response in qa.answer(questions, [LONG_CONTEXT] * 3, max_length=64, doc_stride=16):
        assert response.text and response.start is not None and not response.truncated
        assert LONG_CONTEXT[response.start : response.start + len(response.text)] == response.text


def test_windows_cover_the_whole_context(qa):
    """Every context token lands in some window, whatever the stride: answers can come from anywhere."""
    encoded = qa._encode(["who ?"], [LONG_CONTEXT], 40, 8)
    covered = set()
    for _, answerable, offsets, _, _ in encoded.meta:
        covered.update(offsets[i] for i in np.flatnonzero(answerable))
    all_offsets = qa.tokenizer(LONG_CONTEXT, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert covered == set(map(tuple, all_offsets)) and len(encoded.meta) > 3


def test_long_question_is_cut_and_flagged(qa):
    question = "who " + "really " * 80 + "swore fealty ?"
    (response,) = qa.answer([SpanRequest(question, LONG_CONTEXT)], max_question_length=16)
    assert response.truncated and LONG_CONTEXT[response.start :].startswith(response.text)


def test_batch_size_does_not_change_answers(qa, shared_data):
    rows = squad_examples(shared_data, "v2", paragraphs=1, start=1)
    pairs = [(row["question"], row["context"]) for row in rows]
    one = qa.answer(pairs, batch_size=1, allow_no_answer=True)
    many = qa.answer(pairs, batch_size=16, allow_no_answer=True)
    assert [r.text for r in one] == [r.text for r in many]
    for a, b in zip(one, many):
        assert a.score == pytest.approx(b.score, rel=1e-4) and a.no_answer_probability == pytest.approx(b.no_answer_probability, abs=1e-5)


@pytest.mark.parametrize(
    "version, start, impossible, max_length, doc_stride, max_answer_length",
    [("v2", 0, True, None, None, 15), ("v1", 2, False, 80, 24, 10)],
)
def test_answers_equal_the_question_answering_pipeline(qa, shared_data, version, start, impossible, max_length, doc_stride, max_answer_length):
    rows = squad_examples(shared_data, version, paragraphs=1, start=start)[:12]
    settings = dict(max_length=max_length, doc_stride=doc_stride, max_answer_length=max_answer_length)
    ours = qa.answer(
        [(row["question"], row["context"]) for row in rows], batch_size=8, n_best=12, allow_no_answer=impossible, **settings
    )
    length, stride = qa.windowing(max_length, doc_stride)
    references = [
        pipeline_answer(
            qa.model, qa.tokenizer, row["question"], row["context"],
            max_seq_len=length, doc_stride=stride, max_answer_len=max_answer_length, handle_impossible_answer=impossible,
        )
        for row in rows
    ]
    assert len(qa.tokenizer(rows[0]["context"])["input_ids"]) > length  # several windows per question
    assert [r.text for r in ours] == [ref["answer"] for ref in references]
    assert [r.start for r in ours if r.text] == [ref["start"] for ref in references if ref["answer"]]
    assert [r.score for r in ours] == pytest.approx([ref["score"] for ref in references], rel=1e-4)
    if impossible:  # the tiny head abstains on some questions and answers others
        assert 0 < sum(r.text == "" for r in ours) < len(ours)


def write_squad_task(tmp_path, rows, *, formulations: str = "") -> None:
    with (tmp_path / "squad_dev.jsonl").open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row) + "\n")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "squad_mini.yaml").write_text(
        "version: 1\nkind: extractive_qa\n"
        "data: {local: {files: [squad_dev.jsonl], format: jsonl}}\n"
        "metrics: [squad_exact]\n" + formulations,
        encoding="utf-8",
    )


def test_run_end_to_end_on_squad_paragraphs(cli, tmp_path, shared_data, tiny_qa_model):
    rows = squad_examples(shared_data, "v2", paragraphs=2)
    write_squad_task(tmp_path, rows, formulations="formulations: {span_head: {allow_no_answer: true, doc_stride: 48}}\n")
    out = tmp_path / "run"
    result = cli("run", "--model", str(tiny_qa_model), "--tasks", "squad_mini", "--tasks-dir", str(tmp_path / "tasks"),
                 "--data-dir", str(tmp_path), "--output", str(out), "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    record = load_record(out)
    task = record.tasks["squad_mini"]
    assert record.model.kind == "extractive_qa" and task.formulation == "span_head" and task.n_examples == len(rows)
    assert task.settings["doc_stride"] == 48 and task.settings["max_length"] == 128 and task.settings["allow_no_answer"]
    samples = read_samples(out, "squad_mini")
    direct = load_model(str(tiny_qa_model)).answer(
        [(r["question"], r["context"]) for r in rows], doc_stride=48, allow_no_answer=True
    )
    assert [s["prediction"]["text"] for s in samples] == [d.text for d in direct]
    for sample, row in zip(samples, rows):
        assert sample["prediction"]["text"] in row["context"] and 0 <= sample["prediction"]["no_answer_probability"] <= 1
        assert sample["gold"] == row["answers"]


def test_unanswerable_gold_needs_allow_no_answer(cli, tmp_path, shared_data, tiny_qa_model):
    write_squad_task(tmp_path, squad_examples(shared_data, "v2", paragraphs=1))
    result = cli("run", "--model", str(tiny_qa_model), "--tasks", "squad_mini", "--tasks-dir", str(tmp_path / "tasks"),
                 "--data-dir", str(tmp_path), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and "allow_no_answer is not set" in result.stderr and "Traceback" not in result.stderr


def test_qa_head_cannot_run_a_classification_task(cli, tmp_path, shared_data, tiny_qa_model):
    result = cli("run", "--model", str(tiny_qa_model), "--tasks", "glue/sst2", "--data-dir", str(shared_data),
                 "--output", str(tmp_path), "--limit", "5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "extractive_qa checkpoint cannot run this classification task" in result.stderr
    assert "cannot answer 'classify' requests" in result.stderr


def test_span_head_settings_are_validated_with_file_and_field(tmp_path):
    from evalharness.spec.catalog import validate_paths

    write_squad_task(tmp_path, [], formulations="formulations: {span_head: {doc_strid: 5, scoring: softmax}}\n")
    ((path, error),) = validate_paths([tmp_path / "tasks" / "squad_mini.yaml"])
    assert f"{path}:5: formulations.span_head.doc_strid: unknown key" in error
    assert f"{path}:5: formulations.span_head.scoring: Input should be 'probability' or 'logit'" in error


@pytest.mark.skipif(not os.environ.get("EVALHARNESS_QA_REFERENCE_PYTHON"), reason="needs a Python with transformers<5.3")
def test_answers_equal_the_real_pipeline_class(qa, tiny_qa_model, shared_data, tmp_path):
    """The pipeline class itself (benchmarks/qa_pipeline_reference.py under transformers 5.2.0)."""
    import subprocess

    rows = squad_examples(shared_data, "v2", paragraphs=2)
    request = {"model": str(tiny_qa_model), "settings": {"handle_impossible_answer": True}, "rows": rows}
    (tmp_path / "request.json").write_text(json.dumps(request))
    script = REPO / "benchmarks" / "qa_pipeline_reference.py"
    subprocess.run([os.environ["EVALHARNESS_QA_REFERENCE_PYTHON"], str(script), str(tmp_path / "request.json"), str(tmp_path / "out.json")],
                   check=True, env={**os.environ, "PYTHONPATH": ""}, timeout=600)
    reference = json.loads((tmp_path / "out.json").read_text())["answers"]
    ours = qa.answer([(r["question"], r["context"]) for r in rows], n_best=12, allow_no_answer=True)
    assert [r.text for r in ours] == [a["answer"] for a in reference]
    assert [r.score for r in ours] == pytest.approx([a["score"] for a in reference], rel=1e-4)
