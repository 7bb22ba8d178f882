"""Faults of a served model: the server killed mid-run (resume from the cache), 429 and 500
answers (back-off), slow answers (timeout), malformed JSON, an exhausted request budget and
a server that is not there. Every failure exits 2 naming the request; nothing answered is
lost. Servers run on 127.0.0.1 only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalharness.execution.cache import PredictionCache
from evalharness.records.record import load_record, read_samples
from tests.conftest import REPO
from tests.inprocess import main  # noqa: F401 - fixture
from tests.serving_app import (  # noqa: F401
    LOCALHOST,
    NAMED,
    ThreadServer,
    _logprob_server,
    _named_server,
    free_port,
    logprob_server,
    named_server,
    serving_engine,
    serving_tasks,
    wait_ready,
)

pytest.importorskip("openai")


def run_args(tasks, out: Path, server_url: str, model: Path, *extra: str) -> list[str]:
    tasks_dir, data_dir = tasks
    return [
        "run", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--output", str(out), "--tasks", "serving/gen",
        "--model", str(model), "--backend", "openai", "--base-url", server_url, *extra,
    ]


def cached(out: Path) -> int:
    with PredictionCache(out / "cache" / "predictions.sqlite") as cache:
        return len(cache)


def test_server_killed_mid_run_resumes_from_the_cache(main, tmp_path, tiny_causal_lm, serving_tasks, serving_engine):
    port = free_port()
    url = f"http://{LOCALHOST}:{port}/v1"
    # A real process, killed (os._exit) after answering the start-up probe and 3 generations.
    command = [sys.executable, "-m", "tests.serving_app", str(tiny_causal_lm), str(port), "--die-after", "4"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://{LOCALHOST}:{port}/health", timeout=60, process=process)
        args = run_args(serving_tasks, tmp_path / "api", url, tiny_causal_lm, "--batch-size", "1", "--max-concurrency", "1", "--max-retries", "1")
        first = main(*args)
        assert process.wait(timeout=30) == 17
    finally:
        process.kill()
    assert first.returncode == 2
    assert "connection failed" in first.stderr and "rerun the same command to resume" in first.stderr and "the prompt 'Source:" in first.stderr
    assert cached(tmp_path / "api") == 3 and not (tmp_path / "api" / "results.json").exists()
    with ThreadServer(serving_engine, str(tiny_causal_lm), port=port) as restarted:  # the server is back
        second = main(*args)
        assert second.returncode == 0, second.stderr
        assert restarted.faults.served == 1 + 6 - 3  # the probe, and what the killed server never answered
    execution = load_record(tmp_path / "api").tasks["serving/gen"].execution
    assert execution["cache"] == {"hits": 3, "misses": 3}
    tasks_dir, data_dir = serving_tasks
    hf = ["run", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--tasks", "serving/gen", "--model", str(tiny_causal_lm)]
    assert main(*hf, "--output", str(tmp_path / "hf")).returncode == 0
    assert [r["prediction"] for r in read_samples(tmp_path / "api", "serving/gen")] == [r["prediction"] for r in read_samples(tmp_path / "hf", "serving/gen")]


def test_429_and_500_answers_are_retried_with_backoff(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    logprob_server.faults.statuses = [429, 500, 503]
    started = time.monotonic()
    result = main(*run_args(serving_tasks, tmp_path / "api", logprob_server.url, tiny_causal_lm, "--max-concurrency", "1", "--max-retries", "3"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.5 * 0.75 * (1 + 2 + 4)  # exponential back-off, jitter at most -25%
    assert logprob_server.faults.received == logprob_server.faults.served + 3
    assert load_record(tmp_path / "api").tasks["serving/gen"].n_examples == 6


def test_retry_after_header_sets_the_wait(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    logprob_server.faults.statuses, logprob_server.faults.retry_after = [429] * 3, "0"
    started = time.monotonic()
    result = main(*run_args(serving_tasks, tmp_path / "api", logprob_server.url, tiny_causal_lm, "--max-concurrency", "1", "--max-retries", "3"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 0.5 * 0.75 * (1 + 2 + 4)


def test_retries_exhausted_are_refused_naming_the_request(main, tmp_path, serving_tasks, named_server):
    named_server.faults.statuses = [503] * 50
    result = main(*run_args(serving_tasks, tmp_path / "api", named_server.url, NAMED, "--max-concurrency", "1", "--max-retries", "1"))
    assert result.returncode == 2
    assert "HTTP 503 after 2 attempt(s)" in result.stderr and "the prompt 'Source:" in result.stderr
    assert not (tmp_path / "api" / "results.json").exists()


def test_slow_server_times_out_and_is_refused(main, tmp_path, serving_tasks, named_server):
    named_server.faults.delay = 1.5
    result = main(*run_args(serving_tasks, tmp_path / "api", named_server.url, NAMED, "--max-concurrency", "1", "--max-retries", "0", "--timeout", "0.3"))
    named_server.faults.delay = 0.0
    assert result.returncode == 2 and "no answer within --timeout 0.3 s" in result.stderr and "the prompt 'Source:" in result.stderr
    assert not (tmp_path / "api" / "results.json").exists()


def test_malformed_json_is_refused_naming_the_request(main, tmp_path, serving_tasks, named_server):
    named_server.faults.malformed = 1
    result = main(*run_args(serving_tasks, tmp_path / "api", named_server.url, NAMED, "--max-concurrency", "1", "--batch-size", "1"))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr and "the prompt 'Source:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "api" / "results.json").exists() and cached(tmp_path / "api") == 0  # nothing from it was kept


def test_answer_without_the_promised_fields_is_refused(main, tmp_path, serving_tasks, named_server, monkeypatch):
    import tests.serving_app as app

    monkeypatch.setattr(app, "complete", lambda engine, body: {"choices": [{"index": 0}], "usage": {"completion_tokens": "many"}})
    result = main(*run_args(serving_tasks, tmp_path / "api", named_server.url, NAMED, "--max-concurrency", "1"))
    assert result.returncode == 2 and "the prompt 'Source:" in result.stderr and "usage.completion_tokens" in result.stderr


def test_request_budget_is_enforced_and_the_run_resumes(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    args = run_args(serving_tasks, tmp_path / "api", logprob_server.url, tiny_causal_lm, "--batch-size", "1", "--max-concurrency", "1")
    capped = main(*args, "--max-requests", "4")  # /v1/models and the probe of echo + logprobs are two of them
    assert capped.returncode == 2 and "--max-requests 4" in capped.stderr
    assert cached(tmp_path / "api") == 2
    assert main(*args).returncode == 0
    assert load_record(tmp_path / "api").tasks["serving/gen"].execution["cache"] == {"hits": 2, "misses": 4}


def test_server_not_running_is_refused_at_start_up(main, tmp_path, tiny_causal_lm, serving_tasks):
    url = f"http://{LOCALHOST}:{free_port()}/v1"
    result = main(*run_args(serving_tasks, tmp_path / "api", url, tiny_causal_lm, "--max-retries", "0"))
    assert result.returncode == 2 and "connection failed" in result.stderr and "/v1/models" in result.stderr
