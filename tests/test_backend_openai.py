"""The openai backend against real servers on 127.0.0.1: ``transformers serve`` (generation;
no echo/logprobs, which the start-up probe must detect) and the vLLM-format test server of
``tests/serving_app.py`` (log-likelihoods). Outputs must equal the in-process ``hf`` backend's.
Nothing leaves localhost."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalharness.backends import BackendConfig
from evalharness.backends.config import public_url
from evalharness.backends.openai import load_openai
from evalharness.backends.remote import GeneratedText, RemoteCausalLM
from evalharness.errors import ModelError, UsageError
from evalharness.models import load_model
from evalharness.models.base import ModelInfo
from evalharness.records.record import load_record, read_samples
from tests.inprocess import main  # noqa: F401 - fixture
from tests.serving_app import (  # noqa: F401
    LOCALHOST,
    NAMED,
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
SECRET = "sk-test-7d1f0a9c2b4e6f8a"


def run_args(tasks, out: Path, *extra: str) -> list[str]:
    tasks_dir, data_dir = tasks
    return ["run", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--output", str(out), *extra]


def served(server, model: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--backend", "openai", "--base-url", server.url, "--max-retries", "1", *extra]


def predictions(out: Path, task: str) -> list:
    return [row["prediction"] for row in read_samples(out, task)]


# -- transformers serve ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformers_server(tiny_causal_lm):
    """``transformers serve`` pinned to the tiny GPT-2, on a free localhost port."""
    pytest.importorskip("fastapi")
    port = free_port()
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()"]
    command += ["serve", str(tiny_causal_lm), "--host", LOCALHOST, "--port", str(port), "--device", "cpu", "--log-level", "error"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://{LOCALHOST}:{port}/health", timeout=120, process=process)
        yield type("Server", (), {"url": f"http://{LOCALHOST}:{port}/v1"})
    finally:
        process.kill()
        process.wait(timeout=30)


def test_generation_through_transformers_serve_equals_in_process_greedy(main, tmp_path, tiny_causal_lm, serving_tasks, transformers_server):
    hf = main(*run_args(serving_tasks, tmp_path / "hf", "--tasks", "serving/gen", "--model", str(tiny_causal_lm)))
    api = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(transformers_server, tiny_causal_lm)))
    assert hf.returncode == 0 and api.returncode == 0, api.stderr
    assert predictions(tmp_path / "api", "serving/gen") == predictions(tmp_path / "hf", "serving/gen")
    a, b = load_record(tmp_path / "hf"), load_record(tmp_path / "api")
    assert {k: m.value for k, m in a.tasks["serving/gen"].metrics.items()} == {k: m.value for k, m in b.tasks["serving/gen"].metrics.items()}
    assert b.model.notes["backend"] == "openai" and b.settings["backend"]["base_url"] == transformers_server.url


def test_loglikelihood_task_on_a_server_without_echo_logprobs_is_refused(main, tmp_path, tiny_causal_lm, serving_tasks, transformers_server):
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/choice", *served(transformers_server, tiny_causal_lm)))
    assert result.returncode == 2
    assert "serving/choice" in result.stderr and "echo and logprobs" in result.stderr
    assert not (tmp_path / "api" / "results.json").exists()


# -- the vLLM-format server: log-likelihoods ---------------------------------------------------


def test_loglikelihoods_over_http_equal_in_process(logprob_server, tiny_causal_lm):
    served_lm = load_openai(BackendConfig(name="openai", base_url=logprob_server.url), str(tiny_causal_lm))
    local = load_model(str(tiny_causal_lm))
    pairs = [("the movie was", " great"), ("", "the plot"), ("Answer: ", "yes"), ("it 's a charming and", " often affecting journey .")]
    for remote, inprocess in zip(served_lm.loglikelihood(pairs), local.loglikelihood(pairs)):
        assert remote.logprob == pytest.approx(inprocess.logprob, abs=1e-4)
        assert (remote.is_greedy, remote.n_tokens, remote.truncated) == (inprocess.is_greedy, inprocess.n_tokens, inprocess.truncated)
    texts = ["the movie was great but the plot was dull . " * 6, "short", ""]
    for remote, inprocess in zip(
        served_lm.loglikelihood_rolling(texts, window="sliding", max_length=24), local.loglikelihood_rolling(texts, window="sliding", max_length=24)
    ):
        assert remote.logprob == pytest.approx(inprocess.logprob, abs=1e-4) and remote.n_tokens == inprocess.n_tokens


def test_choice_and_perplexity_tasks_over_http_score_like_in_process(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    tasks = ["--tasks", "serving/choice,serving/lm"]
    assert main(*run_args(serving_tasks, tmp_path / "hf", *tasks, "--model", str(tiny_causal_lm))).returncode == 0
    api = main(*run_args(serving_tasks, tmp_path / "api", *tasks, *served(logprob_server, tiny_causal_lm)))
    assert api.returncode == 0, api.stderr
    assert predictions(tmp_path / "api", "serving/choice") == predictions(tmp_path / "hf", "serving/choice")
    for a, b in zip(read_samples(tmp_path / "hf", "serving/lm"), read_samples(tmp_path / "api", "serving/lm")):
        assert b["prediction"]["logprob"] == pytest.approx(a["prediction"]["logprob"], abs=1e-4)
    value = lambda out: load_record(out).tasks["serving/lm"].metrics["word_perplexity"].value
    assert value(tmp_path / "api") == pytest.approx(value(tmp_path / "hf"), rel=1e-5)


def test_rerun_of_a_served_run_sends_no_request(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    args = run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen,serving/choice", *served(logprob_server, tiny_causal_lm))
    assert main(*args).returncode == 0
    sent = logprob_server.faults.received
    assert main(*args).returncode == 0
    # every answer came from the prediction cache; only the start-up probe of echo + logprobs was sent
    assert logprob_server.faults.received == sent + 1
    assert load_record(tmp_path / "api").tasks["serving/gen"].execution["cache"]["misses"] == 0


def test_api_key_never_written_under_the_run_directory(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server, monkeypatch):
    monkeypatch.setenv("EVALHARNESS_TEST_KEY", SECRET)
    out = tmp_path / "api"
    result = main(*run_args(serving_tasks, out, "--tasks", "serving/gen,serving/choice", *served(logprob_server, tiny_causal_lm), "--api-key-env", "EVALHARNESS_TEST_KEY"))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.suffix == ".sqlite" for path in files) and all(SECRET.encode() not in path.read_bytes() for path in files)
    assert load_record(out).settings["backend"]["api_key_env"] == "EVALHARNESS_TEST_KEY"


def test_api_key_echoed_by_the_server_is_redacted_from_the_error(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server, monkeypatch):
    monkeypatch.setenv("EVALHARNESS_TEST_KEY", SECRET)
    logprob_server.faults.echo_authorization = True
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(logprob_server, tiny_causal_lm), "--api-key-env", "EVALHARNESS_TEST_KEY"))
    assert result.returncode == 2 and "HTTP 400" in result.stderr and "Bearer ***" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_unset_api_key_variable_is_refused(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(logprob_server, tiny_causal_lm), "--api-key-env", "EVALHARNESS_UNSET_VARIABLE"))
    assert result.returncode == 2 and "EVALHARNESS_UNSET_VARIABLE" in result.stderr


def test_model_the_server_does_not_serve_is_refused(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(logprob_server, "not-the-model")))
    assert result.returncode == 2 and "not-the-model" in result.stderr and str(tiny_causal_lm) in result.stderr


def test_loglikelihood_without_the_served_tokenizer_is_refused_with_the_reason(main, tmp_path, serving_tasks, named_server):
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/choice", *served(named_server, NAMED)))
    assert result.returncode == 2 and "serving/choice" in result.stderr and "--tokenizer DIR" in result.stderr


def test_generation_only_run_needs_no_tokenizer(main, tmp_path, tiny_causal_lm, serving_tasks, named_server):
    assert main(*run_args(serving_tasks, tmp_path / "hf", "--tasks", "serving/gen", "--model", str(tiny_causal_lm))).returncode == 0
    api = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(named_server, NAMED)))
    assert api.returncode == 0, api.stderr
    assert predictions(tmp_path / "api", "serving/gen") == predictions(tmp_path / "hf", "serving/gen")
    assert load_record(tmp_path / "api").model.notes["tokenizer"] is None


def test_served_tokenizer_given_explicitly_enables_loglikelihoods(tmp_path, tiny_causal_lm, named_server):
    served_lm = load_openai(BackendConfig(name="openai", base_url=named_server.url), NAMED, tokenizer=str(tiny_causal_lm))
    local = load_model(str(tiny_causal_lm))
    pair = [("the movie was", " great")]
    assert served_lm.loglikelihood(pair)[0].logprob == pytest.approx(local.loglikelihood(pair)[0].logprob, abs=1e-4)


def test_tokenizer_that_is_not_the_served_models_is_refused_for_loglikelihoods(main, tmp_path, tiny_llama, serving_tasks, named_server):
    args = served(named_server, NAMED, "--tokenizer", str(tiny_llama))
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/choice", *args))
    assert result.returncode == 2 and "the server's tokenizer is not the one given" in result.stderr


def test_beam_search_over_the_openai_backend_is_refused(main, tmp_path, tiny_causal_lm, serving_tasks, logprob_server):
    result = main(*run_args(serving_tasks, tmp_path / "api", "--tasks", "serving/gen", *served(logprob_server, tiny_causal_lm), "--num-beams", "3"))
    assert result.returncode == 2 and "num_beams=3" in result.stderr and "--num-beams 1" in result.stderr


def test_openai_flags_with_the_hf_backend_are_refused(main, tmp_path, tiny_causal_lm, serving_tasks):
    result = main(*run_args(serving_tasks, tmp_path / "hf", "--tasks", "serving/gen", "--model", str(tiny_causal_lm), "--base-url", "http://127.0.0.1:9/v1"))
    assert result.returncode == 2 and "--base-url" in result.stderr


def test_chat_endpoint_generates_like_completions(tmp_path, tiny_causal_lm, logprob_server):
    chat = load_openai(BackendConfig(name="openai", base_url=logprob_server.url, api="chat"), str(tiny_causal_lm))
    prompts = ["the movie was", "what a boring"]
    assert [r.text for r in chat.generate(prompts, max_new_tokens=5)] == [r.text for r in load_model(str(tiny_causal_lm)).generate(prompts, max_new_tokens=5)]
    assert "chat completions cannot echo" in chat.refusals[next(iter(chat.refusals))]


def test_prompt_longer_than_the_context_is_truncated_like_hf(tiny_causal_lm, logprob_server):
    served_lm = load_openai(BackendConfig(name="openai", base_url=logprob_server.url), str(tiny_causal_lm))
    prompt = "the movie was great but the plot was dull . " * 20
    remote, = served_lm.generate([prompt], max_new_tokens=4)
    local, = load_model(str(tiny_causal_lm)).generate([prompt], max_new_tokens=4)
    assert remote.truncated and local.truncated and remote.text == local.text


def test_credentials_in_the_base_url_never_reach_the_record():
    config = BackendConfig(name="openai", base_url="https://user:hunter2@Example.org:8443/v1/?api-key=hunter3#x")
    assert public_url(config.base_url) == "https://example.org:8443/v1"
    assert "hunter" not in str(config.recorded())


class _Scripted(RemoteCausalLM):
    backend = "scripted"

    def __init__(self, outputs):
        self.outputs = outputs
        super().__init__(None, ModelInfo("m", "m", "causal_lm", "f", "a", "remote", "x", 0), context_length=64, refusals={})

    def complete(self, prompts, options, shown):
        return self.outputs


def test_end_of_sequence_before_min_new_tokens_is_refused():
    with pytest.raises(ModelError, match="min_new_tokens=5"):
        _Scripted([GeneratedText(" short", 2, True)]).generate(["p"], max_new_tokens=8, min_new_tokens=5)
    # ended at a stop string: hf stops there too, whatever min_new_tokens says
    assert _Scripted([GeneratedText(" short.\n more", 3, True)]).generate(["p"], max_new_tokens=8, min_new_tokens=5, stop=["\n"])[0].text == " short."


def test_vllm_clamped_minus_infinity_is_read_as_minus_infinity_and_nan_is_refused():
    from evalharness.backends.openai import _Answer, _prompt_logprobs

    transport = type("T", (), {"_error": staticmethod(lambda cls, message: cls(message))})()
    answer = _Answer.model_validate({"choices": [{"text": "", "logprobs": {"token_logprobs": [None, -9999.0, -1.0], "top_logprobs": [None, {"a": -0.1}, {"b": -1.0}]}}]})
    assert _prompt_logprobs(transport, answer, 3, "p") == [(-math.inf, False), (-1.0, True)]
    bad = _Answer.model_validate({"choices": [{"text": "", "logprobs": {"token_logprobs": [None, float("nan")], "top_logprobs": [None, {"a": -0.1}]}}]})
    with pytest.raises(ModelError, match="no usable log-probability"):
        _prompt_logprobs(transport, bad, 2, "p")


def test_a_decoding_setting_served_decoding_cannot_reproduce_is_refused_even_a_new_one():
    """Served backends list what they reproduce, not what they refuse: a field added to
    ``Decoding`` later is refused when set, never silently dropped."""
    from evalharness.backends.remote import check_greedy_options
    from evalharness.types import GenerationOptions

    class WithPenalty(GenerationOptions):
        repetition_penalty: float = 1.0

    check_greedy_options(WithPenalty(max_new_tokens=3, min_new_tokens=1, stop=("\n",)), "openai")
    with pytest.raises(UsageError, match=r"cannot reproduce repetition_penalty=1.3; pass --repetition-penalty 1.0"):
        check_greedy_options(WithPenalty(repetition_penalty=1.3), "openai")


def test_a_tokenizer_config_whose_max_position_embeddings_is_text_is_refused_naming_the_field():
    """config.json's context is a number; text there is refused by name, not passed to int()."""
    from evalharness.backends.remote import context_length_of

    assert context_length_of(None, {"max_position_embeddings": 0, "n_positions": 1024}) == 1024
    assert context_length_of(None, {"max_position_embeddings": 2048.0}) == 2048
    with pytest.raises(ModelError, match=r"config.json: max_position_embeddings: expected a number, got a string"):
        context_length_of(None, {"max_position_embeddings": "2048"})


@pytest.mark.parametrize("positions", [2048.9, -5, True, float("inf")])
def test_a_context_length_that_is_fractional_negative_boolean_or_infinite_is_refused(positions):
    # 2048.9 was cut to 2048 and -5 became the context length; generation then failed far from the cause
    from evalharness.backends.remote import context_length_of

    assert context_length_of(None, {"max_position_embeddings": 2048.0}) == 2048
    with pytest.raises(ModelError, match=r"config.json: max_position_embeddings: expected a"):
        context_length_of(None, {"max_position_embeddings": positions})
