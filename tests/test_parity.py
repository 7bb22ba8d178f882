"""``evalharness parity``: the same model on two backends, compared request by request; a
backend serving different weights under the same name must show up as flips and
log-probability differences; runs on different examples are refused."""

from __future__ import annotations

import json

import pytest

from evalharness.comparison.compare import IncomparableRunsError
from evalharness.comparison.parity import backend_parity
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.records.record import load_record
from tests.inprocess import main  # noqa: F401 - fixture
from tests.serving_app import (  # noqa: F401
    ThreadServer,
    TinyEngine,
    _logprob_server,
    logprob_server,
    serving_engine,
    serving_tasks,
)

pytest.importorskip("openai")


def parity_args(tasks, out, model, server, *extra: str) -> list[str]:
    tasks_dir, data_dir = tasks
    return [
        "parity", "--model", str(model), "--backends", "hf,openai", "--base-url", server.url, "--tasks", "serving/gen,serving/choice,serving/lm",
        "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--limit", "5", "--output", str(out), *extra,
    ]


def test_parity_of_hf_and_a_faithful_server_reports_zero_flips(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    result = main(*parity_args(serving_tasks, tmp_path / "parity", tiny_causal_lm, logprob_server))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "parity" / "parity.json").read_text())
    assert report["summary"]["flips"] == 0 and report["summary"]["significant_metric_differences"] == 0
    assert report["summary"]["max_abs_logprob_diff"] < 1e-4
    assert {task["task"]: task["logprobs_compared"] > 0 for task in report["tasks"]} == {"serving/gen": False, "serving/choice": True, "serving/lm": True}
    assert (report["reference"]["backend"], report["checked"]["backend"]) == ("hf", "openai")
    recorded = load_record(tmp_path / "parity" / "openai").tasks["serving/choice"].execution["parity"]
    assert recorded["flips"] == 0 and recorded["reference"]["backend"] == "hf"
    assert all(metric["difference"] == pytest.approx(0, abs=1e-6) for task in report["tasks"] for metric in task["metrics"] if task["task"] != "serving/lm")


@pytest.fixture
def other_weights_server(tmp_path_factory, tiny_causal_lm):
    """Different weights (another seed) served under the tiny GPT-2's name: a backend that disagrees."""
    from transformers import AutoTokenizer

    from evalharness.testing.tiny import build_causal_lm

    other = build_causal_lm(tmp_path_factory.mktemp("other"), AutoTokenizer.from_pretrained(tiny_causal_lm), seed=11)
    with ThreadServer(TinyEngine(str(other)), str(tiny_causal_lm)) as server:
        yield server


def test_parity_detects_a_backend_serving_other_weights(main, tmp_path, tiny_causal_lm, serving_tasks, other_weights_server):
    result = main(*parity_args(serving_tasks, tmp_path / "parity", tiny_causal_lm, other_weights_server, "--json"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["max_abs_logprob_diff"] > 0.1
    generation = next(task for task in report["tasks"] if task["task"] == "serving/gen")
    assert generation["flips"] > 0 and generation["flipped_ids"]


def test_parity_of_runs_on_different_examples_is_refused(tmp_path, tiny_causal_lm, serving_tasks):
    tasks_dir, data_dir = serving_tasks
    for name, limit in (("a", 3), ("b", 4)):
        run_evaluation(RunConfig(model=str(tiny_causal_lm), tasks=["serving/choice"], tasks_dirs=[tasks_dir], data_dir=data_dir, limit=limit, output=tmp_path / name))
    with pytest.raises(IncomparableRunsError):
        backend_parity(tmp_path / "a", tmp_path / "b")


def test_parity_needs_two_different_backends(main, tmp_path, tiny_causal_lm):
    with pytest.raises(SystemExit) as exit_info:
        main("parity", "--model", str(tiny_causal_lm), "--backends", "hf,hf", "--tasks", "x")
    assert exit_info.value.code == 2


def test_a_samples_row_whose_details_are_not_an_object_is_refused_naming_the_example(tmp_path):
    """Log-probabilities are read from each row's details; details of another JSON type (it
    was an AttributeError traceback), or a run's settings.backend that is not an object, are
    refused naming the run, example and field."""
    from evalharness.errors import RecordError
    from tests.record_factory import default_samples, metric, task, write_run

    entry = task({"accuracy": metric(50.0, n=4)}, n=4)
    rows = default_samples(entry)
    run_a = write_run(tmp_path / "a", model="m", tasks={"t": entry}, samples={"t": rows})
    damaged = [{**row, "details": ["-0.5"]} if row["id"] == "2" else row for row in rows]
    run_b = write_run(tmp_path / "b", model="m", tasks={"t": entry}, samples={"t": damaged})
    with pytest.raises(RecordError, match=r"b: task 't', example '2': details: expected an object, got an array"):
        backend_parity(run_a, run_b)
    record = json.loads((run_a / "results.json").read_text())
    record["settings"]["backend"] = "vllm"
    (run_a / "results.json").write_text(json.dumps(record))
    with pytest.raises(RecordError, match=r"a/results.json: settings.backend: expected an object, got a string"):
        backend_parity(run_a, run_a)


def test_log_probabilities_given_as_text_or_booleans_are_refused_not_dropped(tmp_path):
    # a details array that is text, or values that are not numbers, were silently left out:
    # the example then compared fewer (or no) log-probabilities without a word
    from evalharness.errors import RecordError
    from tests.record_factory import default_samples, metric, task, write_run

    entry = task({"accuracy": metric(50.0, n=4)}, n=4)
    rows = default_samples(entry)
    run_a = write_run(tmp_path / "a", model="m", tasks={"t": entry}, samples={"t": rows})
    for found, message in (("-1.5", r"details\.loglikelihoods: expected an array, got a string"),
                           ([True, -0.5], r"a log-probability is not a finite number"),
                           (["-0.5"], r"a log-probability is not a finite number")):
        damaged = [{**row, "details": {"loglikelihoods": found}} if row["id"] == "2" else row for row in rows]
        run_b = write_run(tmp_path / f"b{len(str(found))}", model="m", tasks={"t": entry}, samples={"t": damaged})
        with pytest.raises(RecordError, match=rf"task 't', example '2': {message}"):
            backend_parity(run_a, run_b)
