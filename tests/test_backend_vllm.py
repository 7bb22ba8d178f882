"""The vllm backend without a GPU: a scripted ``vllm`` module injected through ``sys.modules``
answers ``LLM.generate`` from the tiny GPT-2 in process, with vLLM's output shapes
(``prompt_logprobs``: ``None`` then ``{token_id: Logprob}`` per prompt token;
``outputs[0].text`` / ``token_ids``). That tests the adapter's logic (token-id prompts,
scoring, greedy flags, EOS counting, record notes); the GPU comparison is
``benchmarks/gpu_backends.py``."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from evalharness.backends import BackendConfig, BackendRequest, load_backend
from evalharness.evaluation.runner import RunConfig, run_evaluation
from evalharness.models import load_model
from tests.inprocess import main  # noqa: F401 - fixture
from tests.serving_app import serving_tasks  # noqa: F401


@dataclass
class Logprob:
    logprob: float
    rank: int
    decoded_token: str | None = None


class ScriptedLLM:
    """``vllm.LLM`` answered by transformers on CPU (greedy; prompt log-probabilities with
    the prompt token and the top-1 token, as ``prompt_logprobs=1`` returns them)."""

    calls: ClassVar[list[dict]] = []

    def __init__(self, model: str, tokenizer: str, dtype: str, seed: int, gpu_memory_utilization: float) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ScriptedLLM.calls.append({"model": model, "dtype": dtype, "seed": seed})
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        config = types.SimpleNamespace(max_model_len=self.model.config.max_position_embeddings)
        self.llm_engine = types.SimpleNamespace(model_config=config)

    def generate(self, prompts, params, use_tqdm=True):
        return [self._one(prompt["prompt_token_ids"], params) for prompt in prompts]

    def _one(self, ids, params):
        torch = self.torch
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0]
            table = torch.log_softmax(logits.float(), dim=-1)
            prompt_logprobs = [None]
            for position in range(1, len(ids)):
                row = table[position - 1]
                best = int(row.argmax())
                entry = {ids[position]: Logprob(float(row[ids[position]]), int((row > row[ids[position]]).sum()) + 1)}
                entry.setdefault(best, Logprob(float(row[best]), 1))
                prompt_logprobs.append(entry)
            generated = self.model.generate(
                input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=False,
                max_new_tokens=params.max_tokens, min_new_tokens=params.min_tokens or None, pad_token_id=self.tokenizer.eos_token_id,
            )[0, len(ids):].tolist()
        if self.tokenizer.eos_token_id in generated:
            generated = generated[: generated.index(self.tokenizer.eos_token_id) + 1]
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        for stop in params.stop or []:
            text = text.split(stop)[0]
        completion = types.SimpleNamespace(text=text, token_ids=generated)
        return types.SimpleNamespace(prompt_logprobs=prompt_logprobs if params.prompt_logprobs else None, outputs=[completion])


class SamplingParams:
    def __init__(self, max_tokens=16, temperature=1.0, prompt_logprobs=None, min_tokens=0, stop=None, skip_special_tokens=True):
        self.max_tokens, self.temperature, self.prompt_logprobs = max_tokens, temperature, prompt_logprobs
        self.min_tokens, self.stop, self.skip_special_tokens = min_tokens, stop, skip_special_tokens


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams, module.__version__ = ScriptedLLM, SamplingParams, "0.0.0-scripted"
    monkeypatch.setitem(sys.modules, "vllm", module)
    ScriptedLLM.calls = []
    return module


def vllm_backend(model: Path):
    return load_backend(BackendConfig(name="vllm"), BackendRequest(str(model), in_process=lambda: None))


def test_vllm_not_installed_is_refused_with_the_install_hint(main, tmp_path, tiny_causal_lm, serving_tasks, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # importing it raises ImportError
    tasks_dir, data_dir = serving_tasks
    result = main("run", "--model", str(tiny_causal_lm), "--backend", "vllm", "--tasks", "serving/gen", "--tasks-dir", str(tasks_dir), "--data-dir", str(data_dir), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and "vllm package" in result.stderr and "evalharness[vllm]" in result.stderr


def test_vllm_scores_and_generates_like_hf(fake_vllm, tiny_causal_lm):
    served, local = vllm_backend(tiny_causal_lm), load_model(str(tiny_causal_lm))
    pairs = [("the movie was", " great"), ("", "the plot"), ("Answer: ", "yes")]
    for a, b in zip(served.loglikelihood(pairs), local.loglikelihood(pairs)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and (a.is_greedy, a.n_tokens) == (b.is_greedy, b.n_tokens)
    texts = ["the movie was great but the plot was dull . " * 5, "short"]
    for a, b in zip(served.loglikelihood_rolling(texts, max_length=20, window="sliding"), local.loglikelihood_rolling(texts, max_length=20, window="sliding")):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and a.n_tokens == b.n_tokens
    prompts = ["the movie was", "what a boring", "the movie was great but the plot was dull . " * 12]
    assert served.generate(prompts, max_new_tokens=6, min_new_tokens=2) == local.generate(prompts, max_new_tokens=6, min_new_tokens=2)


def test_vllm_run_record_notes_the_engine_and_version(fake_vllm, tmp_path, tiny_causal_lm, serving_tasks):
    tasks_dir, data_dir = serving_tasks
    config = RunConfig(model=str(tiny_causal_lm), tasks=["serving/choice"], tasks_dirs=[tasks_dir], data_dir=data_dir, output=tmp_path / "run", backend=BackendConfig(name="vllm"))
    record = run_evaluation(config).record
    assert record.model.notes["engine"] == "vllm 0.0.0-scripted" and record.model.notes["backend"] == "vllm"
    assert record.settings["backend"] == {"name": "vllm"} and ScriptedLLM.calls[0]["dtype"] == "bfloat16"


def test_vllm_refuses_checkpoints_that_are_not_causal_lms(fake_vllm, tiny_classifier):
    from evalharness.errors import UsageError

    with pytest.raises(UsageError, match="sequence_classifier"):
        vllm_backend(tiny_classifier)


def test_vllm_refuses_beam_search(fake_vllm, tiny_causal_lm):
    from evalharness.errors import UsageError

    with pytest.raises(UsageError, match="num_beams=2"):
        vllm_backend(tiny_causal_lm).generate(["the movie"], max_new_tokens=4, num_beams=2)
