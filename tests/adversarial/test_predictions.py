"""Issue 14, class 6: predictions outside their domain.

``evalharness score`` refuses values that no model can produce (a positive log-likelihood, an
answer index outside the options, a probability outside [0, 1], NaN or infinity) with exit code
2 naming the file and the example, and writes no run record. Plain-text prediction files are
split into lines as sacrebleu splits them (only "\\n" ends a line; a lone "\\r" does not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness.spec.predictions import CONTRACTS
from evalharness.spec.kinds import TASK_KINDS
from tests.inprocess import main  # noqa: F401 - pytest fixture

TASKS = {
    "lm": """
version: 1
kind: language_modeling
data: {local: {files: [lm.jsonl], format: jsonl}}
metrics: [token_perplexity]
""",
    "pairs": """
version: 1
kind: stereotype_pairs
data: {local: {files: [pairs.jsonl], format: jsonl}}
metrics: [stereotype_score]
""",
    "mc": """
version: 1
kind: multiple_choice
data: {local: {files: [mc.jsonl], format: jsonl}}
metrics: [{name: choice_accuracy}]
""",
    "qa": """
version: 1
kind: extractive_qa
data: {local: {files: [qa.jsonl], format: jsonl}}
metrics: [{name: squad_exact}, {name: squad_best_f1}]
""",
    "reg": """
version: 1
kind: regression
data: {local: {files: [reg.jsonl], format: jsonl}}
metrics: [pearson]
""",
    "gen": """
version: 1
kind: generation
data: {local: {files: [gen.jsonl], format: jsonl}}
metrics: [{name: chrf}]
""",
}
DATA = {
    "lm.jsonl": [{"id": str(i), "text": f"some text number {i} ."} for i in range(3)],
    "pairs.jsonl": [{"id": str(i), "sent_more": f"more {i}", "sent_less": f"less {i}", "bias_type": "age"} for i in range(3)],
    "mc.jsonl": [{"id": str(i), "choices": ["a", "b", "c"], "reference": {"label": i % 3}} for i in range(3)],
    "qa.jsonl": [{"id": f"q{i}", "question": "who?", "context": "the cat sat", "answers": ["the cat"] if i else []} for i in range(3)],
    "reg.jsonl": [{"id": str(i), "text": f"pair {i}", "label": float(i)} for i in range(3)],
    "gen.jsonl": [{"id": str(i), "source": f"source {i}", "references": [f"reference {i}"]} for i in range(3)],
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    tasks, data = tmp_path / "tasks" / "adv", tmp_path / "data"
    tasks.mkdir(parents=True)
    data.mkdir()
    for name, text in TASKS.items():
        (tasks / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, rows in DATA.items():
        (data / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return tmp_path


def _predictions(workspace: Path, values: dict[str, object], *, raw: str | None = None) -> Path:
    path = workspace / "predictions.jsonl"
    text = raw if raw is not None else "".join(json.dumps({"id": key, "prediction": value}) + "\n" for key, value in values.items())
    path.write_text(text, encoding="utf-8")
    return path


def _score(main, workspace: Path, task: str, predictions: Path, *extra: str):
    out = workspace / "run"
    result = main("score", "--task", f"adv/{task}", "--predictions", str(predictions), "--data-dir", str(workspace / "data"),
                  "--tasks-dir", str(workspace / "tasks"), "--run-dir", str(out), *extra)
    return result, out


def _refused(result, out: Path, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert not (out / "results.json").exists()


def test_every_task_kind_has_a_prediction_contract():
    assert set(CONTRACTS) == set(TASK_KINDS)


def test_positive_log_likelihood_is_refused(main, workspace):
    predictions = _predictions(workspace, {"0": {"logprob": -3.0, "n_tokens": 4}, "1": {"logprob": 2.5, "n_tokens": 4},
                                           "2": {"logprob": -1.0, "n_tokens": 2}})
    result, out = _score(main, workspace, "lm", predictions)
    _refused(result, out, "predictions.jsonl", "'1'", "positive log-likelihood")


def test_log_likelihood_over_zero_tokens_is_refused(main, workspace):
    predictions = _predictions(workspace, {"0": {"logprob": -3.0, "n_tokens": 0}, "1": {"logprob": -1.0, "n_tokens": 4},
                                           "2": {"logprob": -1.0, "n_tokens": 2}})
    result, out = _score(main, workspace, "lm", predictions)
    _refused(result, out, "'0'", "0 scored tokens")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_log_likelihood_is_refused(main, workspace, constant):
    raw = "".join(
        f'{{"id": "{i}", "prediction": {{"logprob": {constant if i == 2 else -1.0}, "n_tokens": 3}}}}\n' for i in range(3)
    )
    result, out = _score(main, workspace, "lm", _predictions(workspace, {}, raw=raw))
    _refused(result, out, "'2'", "finite number")


def test_positive_pair_log_likelihood_is_refused(main, workspace):
    predictions = _predictions(workspace, {"0": {"more": -1.0, "less": -2.0}, "1": {"more": -1.0, "less": 0.5},
                                           "2": {"more": -1.0, "less": -2.0}})
    result, out = _score(main, workspace, "pairs", predictions)
    _refused(result, out, "'1'", "less", "positive log-likelihood")


def test_pair_prediction_without_both_sentences_is_refused(main, workspace):
    predictions = _predictions(workspace, {"0": {"more": -1.0}, "1": {"more": -1.0, "less": -2.0}, "2": {"more": -1.0, "less": -2.0}})
    result, out = _score(main, workspace, "pairs", predictions)
    _refused(result, out, "'0'", '"more"')


@pytest.mark.parametrize("index", [3, -1, 1.0, True, "1"])
def test_answer_index_outside_the_options_is_refused(main, workspace, index):
    predictions = _predictions(workspace, {"0": 0, "1": index, "2": 2})
    result, out = _score(main, workspace, "mc", predictions)
    _refused(result, out, "'1'", "choice index 0..2")


def test_answer_index_within_the_options_and_null_are_scored(main, workspace):
    predictions = _predictions(workspace, {"0": 0, "1": None, "2": 1})
    result, out = _score(main, workspace, "mc", predictions)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert record["tasks"]["adv/mc"]["metrics"]["choice_accuracy"]["value"] == pytest.approx(100 / 3)


@pytest.mark.parametrize("probability", [1.5, -0.1])
def test_no_answer_probability_outside_0_1_is_refused(main, workspace, probability):
    predictions = _predictions(workspace, {"q0": {"text": "", "no_answer_probability": 0.9},
                                           "q1": {"text": "the cat", "no_answer_probability": probability},
                                           "q2": {"text": "the cat", "no_answer_probability": 0.1}})
    result, out = _score(main, workspace, "qa", predictions)
    _refused(result, out, "'q1'", "probability in [0, 1]")


def test_no_answer_probability_file_outside_0_1_is_refused(main, workspace):
    answers = workspace / "answers.json"
    answers.write_text(json.dumps({"q0": "", "q1": "the cat", "q2": "the cat"}), encoding="utf-8")
    probs = workspace / "na_probs.json"
    probs.write_text(json.dumps({"q0": 0.9, "q1": 0.2, "q2": 7.0}), encoding="utf-8")
    result, out = _score(main, workspace, "qa", answers, "--no-answer-probs", str(probs))
    _refused(result, out, "na_probs.json", "'q2'", "probability in [0, 1]")


def test_nan_regression_prediction_is_refused(main, workspace):
    raw = '{"id": "0", "prediction": 0.5}\n{"id": "1", "prediction": NaN}\n{"id": "2", "prediction": 1.5}\n'
    result, out = _score(main, workspace, "reg", _predictions(workspace, {}, raw=raw))
    _refused(result, out, "'1'", "finite number")


def test_boolean_as_a_regression_prediction_is_refused(main, workspace):
    predictions = _predictions(workspace, {"0": 0.5, "1": True, "2": 1.5})
    result, out = _score(main, workspace, "reg", predictions)
    _refused(result, out, "'1'", "finite number")


def test_lone_carriage_return_is_not_a_line_break_in_plain_text_predictions(main, workspace):
    """sacrebleu reads files with newline="\\n": "a\\rb" is one hypothesis, not two."""
    path = workspace / "hyp.txt"
    path.write_bytes(b"first\rstill first\nsecond\r\nthird\n")
    result, out = _score(main, workspace, "gen", path, "--format", "lines")
    assert result.returncode == 0, result.stderr
    from evalharness.records.record import read_samples

    assert [row["prediction"] for row in read_samples(out, "adv/gen")] == ["first\rstill first", "second", "third"]


def test_counterfactual_probe_cannot_be_scored_from_a_prediction_file(main, workspace, tmp_path):
    predictions = _predictions(workspace, {"0": "positive"})
    result = main("score", "--task", "bias/counterfactual_sst2", "--predictions", str(predictions),
                  "--data-dir", str(workspace / "data"))
    assert result.returncode == 2 and "counterfactual probe" in result.stderr and "glue/sst2" in result.stderr


def test_bbq_answer_index_outside_the_choices_is_refused(tmp_path):
    from evalharness.errors import DataError
    from evalharness.external.bbq_predictions import bbq_reader

    row = {"category": "Age", "example_id": 1, "ans0": "a", "ans1": "b", "ans2": "c", "prediction": 5}
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"preds.jsonl:1: answer index 5 is outside the 3 choices"):
        bbq_reader("prediction")(path, None)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x1c"])
def test_prediction_holding_a_unicode_line_separator_is_kept_whole_in_the_samples(main, workspace, separator):
    """JSON keeps U+2028/U+2029/U+0085 raw (ensure_ascii=False): reading samples back must split
    on "\\n" only, or the record's own samples would be refused as corrupted (a lost record)."""
    from evalharness.records.record import read_samples

    predictions = _predictions(workspace, {str(i): f"line one{separator}line two {i}" for i in range(3)})
    result, out = _score(main, workspace, "gen", predictions)
    assert result.returncode == 0, result.stderr
    rows = read_samples(out, "adv/gen")
    assert [row["prediction"] for row in rows] == [f"line one{separator}line two {i}" for i in range(3)]


def test_a_metric_that_cannot_score_the_kinds_predictions_is_refused_by_validate(cli, tmp_path):
    """Accuracy on a QA task compared answer dicts with gold lists and scored 0 everywhere;
    the prediction types now make such a task invalid before anything runs."""
    tasks = tmp_path / "tasks" / "bad"
    tasks.mkdir(parents=True)
    (tasks / "qa.yaml").write_text(TASKS["qa"].replace("metrics: [{name: squad_exact}, {name: squad_best_f1}]", "metrics: [accuracy]"))
    result = cli("tasks", "validate", str(tmp_path / "tasks"))
    assert result.returncode == 2
    assert "'accuracy' cannot score a 'extractive_qa' task" in result.stdout + result.stderr
    assert "SpanPrediction" in result.stdout + result.stderr


def test_typed_predictions_of_another_kind_are_refused_by_the_metric():
    import numpy as np

    from evalharness.errors import MetricInputError
    from evalharness.metrics import build_metric
    from evalharness.types import SpanPrediction

    with pytest.raises(MetricInputError, match="prediction 0 is a SpanPrediction; it scores LabelPrediction"):
        build_metric("accuracy").compute([SpanPrediction("a")] * 2, ["a", "b"], rng=np.random.default_rng(0))
