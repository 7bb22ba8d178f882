"""Test infrastructure: a small OpenAI-compatible server on top of a local tiny causal LM.

It implements ``/v1/completions`` the way vLLM documents it (vllm/entrypoints/openai:
``CompletionRequest``, ``request_output_to_completion_response``,
``_create_completion_logprobs``): prompts as text (tokenized with special tokens, as vLLM
does) or token ids; ``echo`` returns the prompt before the generated text and, with
``logprobs=N``, ``logprobs.token_logprobs`` with ``null`` for the first prompt token,
``top_logprobs`` holding the token itself and the N most likely tokens, ``tokens`` and
``text_offset``; log-probabilities below -9999 are clamped to -9999.0; stop strings are
excluded from the text; ``prompt + max_tokens`` may not exceed ``max_model_len`` (HTTP 400).
``/v1/models`` lists the model with its ``max_model_len``.

Faults for the tests are set through :class:`Faults` (in-thread server) or ``POST /_faults``
(subprocess): queued error statuses, slow answers, malformed JSON, an error body echoing the
request's ``Authorization`` header, and dying (``os._exit``) after N completions.

Run as ``python -m tests.serving_app MODEL_DIR PORT [--die-after N]``; binds 127.0.0.1 only.
No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.
"""

import argparse
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

LOCALHOST = "127.0.0.1"
VLLM_CLAMP = -9999.0


@dataclass
class Faults:
    statuses: list[int] = field(default_factory=list)  # answered (in order) before serving normally
    retry_after: str | None = None  # Retry-After header sent with those statuses
    delay: float = 0.0  # seconds before every completions answer
    malformed: int = 0  # completions answers that are not JSON
    echo_authorization: bool = False  # answer 400 with the request's Authorization header in the body
    die_after: int | None = None  # os._exit after this many completions (subprocess mode)
    served: int = 0  # completions answered normally
    received: int = 0  # completions requests received (all outcomes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


class TinyEngine:
    """Greedy generation and prompt log-probabilities of a local causal LM (float32, CPU)."""

    def __init__(self, model_dir: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.max_model_len = int(self.model.config.max_position_embeddings)
        self.lock = threading.Lock()

    def encode(self, prompt: str | list[int]) -> list[int]:
        return list(prompt) if isinstance(prompt, list) else list(self.tokenizer(prompt)["input_ids"])

    def greedy(self, ids: list[int], max_tokens: int) -> list[int]:
        if max_tokens == 0:
            return []
        with self.lock, self.torch.inference_mode():
            out = self.model.generate(
                input_ids=self.torch.tensor([ids]), attention_mask=self.torch.ones(1, len(ids), dtype=self.torch.long),
                max_new_tokens=max_tokens, do_sample=False, num_beams=1, pad_token_id=self.tokenizer.eos_token_id,
            )
        return out[0, len(ids):].tolist()

    def logprobs(self, ids: list[int]) -> Any:
        """log-softmax over the vocabulary at every position of ``ids``: [len, vocab]."""
        with self.lock, self.torch.inference_mode():
            logits = self.model(input_ids=self.torch.tensor([ids])).logits[0].float()
        return self.torch.log_softmax(logits, dim=-1)


def _completion_logprobs(engine: TinyEngine, ids: list[int], n_top: int) -> dict[str, Any]:
    table = engine.logprobs(ids)
    tokens = [engine.tokenizer.decode([token]) for token in ids]
    token_logprobs: list[float | None] = [None]
    top_logprobs: list[dict[str, float] | None] = [None]
    for position in range(1, len(ids)):
        row = table[position - 1]
        value = max(float(row[ids[position]]), VLLM_CLAMP)
        best = row.topk(n_top)
        top = {tokens[position]: value}
        for logprob, token in zip(best.values.tolist(), best.indices.tolist()):
            top.setdefault(engine.tokenizer.decode([token]), max(float(logprob), VLLM_CLAMP))
        token_logprobs.append(value)
        top_logprobs.append(top)
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}


def build_app(engine: TinyEngine, name: str, faults: Faults) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI()

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> Any:
        return {"object": "list", "data": [{"id": name, "object": "model", "max_model_len": engine.max_model_len}]}

    @app.post("/_faults")
    async def set_faults(request: Request) -> Any:
        for key, value in (await request.json()).items():
            setattr(faults, key, value)
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        """No chat template: the user message is the prompt (enough to test the client)."""
        body = await request.json()
        prompt = "".join(message["content"] for message in body["messages"] if message["role"] == "user")
        answer = complete(engine, {**body, "prompt": prompt, "logprobs": None, "echo": False})
        if isinstance(answer, JSONResponse):
            return answer
        choice = answer["choices"][0]
        message = {"role": "assistant", "content": choice["text"]}
        faults.received += 1
        return {**answer, "object": "chat.completion", "model": name, "choices": [{"index": 0, "message": message, "finish_reason": choice["finish_reason"]}]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        faults.received += 1
        body = await request.json()
        if faults.delay:  # a slow server: blocks the worker, answers late (the client has gone)
            time.sleep(faults.delay)  # noqa: ASYNC251 - blocking on purpose
            return complete(engine, body)
        if faults.statuses:
            status = faults.statuses.pop(0)
            headers = {"Retry-After": faults.retry_after} if faults.retry_after is not None else {}
            return JSONResponse({"error": {"message": "injected", "code": status}}, status_code=status, headers=headers)
        if faults.malformed:
            faults.malformed -= 1
            return PlainTextResponse('{"choices": [{"text": "unterminated', media_type="application/json")
        if faults.echo_authorization:
            return JSONResponse({"error": {"message": f"bad header {request.headers.get('authorization')}"}}, status_code=400)
        if body.get("model") != name:
            return JSONResponse({"error": {"message": f"The model `{body.get('model')}` does not exist."}}, status_code=404)
        answer = complete(engine, body)
        if isinstance(answer, JSONResponse):
            return answer
        answer["model"] = name
        faults.served += 1
        if faults.die_after is not None and faults.served > faults.die_after:
            os._exit(17)  # killed mid-run: no answer to this request
        return answer

    return app


def complete(engine: TinyEngine, body: dict[str, Any]) -> Any:
    from fastapi.responses import JSONResponse

    ids = engine.encode(body.get("prompt", ""))
    max_tokens = int(body.get("max_tokens", 16))
    if len(ids) + max_tokens > engine.max_model_len:
        message = (
            f"This model's maximum context length is {engine.max_model_len} tokens. However, you requested "
            f"{len(ids) + max_tokens} tokens ({len(ids)} in the messages, {max_tokens} in the completion)."
        )
        return JSONResponse({"object": "error", "message": message, "type": "BadRequestError", "code": 400}, status_code=400)
    generated = engine.greedy(ids, max_tokens)
    eos = engine.tokenizer.eos_token_id
    finish = "length"
    if eos in generated:
        generated, finish = generated[: generated.index(eos) + 1], "stop"
    text = engine.tokenizer.decode([t for t in generated if t != eos], skip_special_tokens=True)
    for stop in body.get("stop") or []:
        if stop in text:
            text, finish = text[: text.index(stop)], "stop"
    logprobs = None
    if body.get("logprobs") is not None:
        scored = ids + generated if body.get("echo") else generated
        logprobs = _completion_logprobs(engine, scored, int(body["logprobs"])) if scored else None
    prompt_text = engine.tokenizer.decode(ids) if body.get("echo") else ""
    usage = {"prompt_tokens": len(ids), "completion_tokens": len(generated), "total_tokens": len(ids) + len(generated)}
    choice = {"index": 0, "text": prompt_text + text, "logprobs": logprobs, "finish_reason": finish, "stop_reason": None}
    return {"id": "cmpl-test", "object": "text_completion", "created": 0, "choices": [choice], "usage": usage}


class ThreadServer:
    """The app served by uvicorn in a thread of the test process (127.0.0.1, a free port)."""

    def __init__(self, engine: TinyEngine, name: str, faults: Faults | None = None, port: int | None = None) -> None:
        import uvicorn

        self.faults = faults or Faults()
        self.port = port or free_port()
        config = uvicorn.Config(build_app(engine, name, self.faults), host=LOCALHOST, port=self.port, log_level="error", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/v1"

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_ready(url: str, *, timeout: float, process: Any = None) -> None:
    """Poll ``url`` until it answers 200 (a server's readiness endpoint)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("--die-after", type=int)
    args = parser.parse_args()
    faults = Faults(die_after=args.die_after)
    uvicorn.run(build_app(TinyEngine(args.model), args.model, faults), host=LOCALHOST, port=args.port, log_level="error")


if __name__ == "__main__":
    main()


# -- pytest fixtures shared by the backend and parity tests (imported by those files) -------

import json
from pathlib import Path

import pytest

GENERATION_TASK = """\
version: 1
kind: generation
data: {local: {files: [gen.jsonl], format: jsonl}}
prompt: {template: "Source: {{ source }}\\nTarget:", stop: ["ar"]}
generation: {max_new_tokens: 8}
metrics: [bleu, chrf]
"""
CHOICE_TASK = """\
version: 1
kind: classification
data: {local: {files: [reviews.jsonl], format: jsonl}}
labels: [negative, positive]
prompt: {template: "Review: {{ text }}\\nSentiment:", choices: [" negative", " positive"]}
metrics: [accuracy]
"""
ROLLING_TASK = """\
version: 1
kind: language_modeling
data: {local: {files: [texts.txt], format: txt}}
formulations: {rolling_loglikelihood: {window: sliding, max_length: 24}}
metrics: [word_perplexity]
"""
SOURCES = [
    "the movie was great", "a wonderful , moving and funny story", "what a boring script",
    "the acting is awful", "two sentences that mean the same thing", "it 's a charming journey",
]


@pytest.fixture(scope="session")
def serving_tasks(tmp_path_factory) -> tuple[Path, Path]:
    """(tasks dir, data dir) with serving/gen, serving/choice and serving/lm."""
    root = tmp_path_factory.mktemp("serving_tasks")
    tasks, data = root / "tasks" / "serving", root / "data"
    tasks.mkdir(parents=True)
    data.mkdir()
    for name, text in {"gen": GENERATION_TASK, "choice": CHOICE_TASK, "lm": ROLLING_TASK}.items():
        (tasks / f"{name}.yaml").write_text(text, encoding="utf-8")
    (data / "gen.jsonl").write_text("".join(json.dumps({"id": str(i), "source": s, "references": [s]}) + "\n" for i, s in enumerate(SOURCES)))
    reviews = [{"id": str(i), "text": s, "label": ["negative", "positive"][i % 2]} for i, s in enumerate(SOURCES)]
    (data / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    (data / "texts.txt").write_text("".join((s + " . ") * 4 + "\n" for s in SOURCES))
    return root / "tasks", data


@pytest.fixture(scope="session")
def serving_engine(tiny_causal_lm) -> TinyEngine:
    return TinyEngine(str(tiny_causal_lm))


@pytest.fixture(scope="session")
def _logprob_server(serving_engine, tiny_causal_lm):
    with ThreadServer(serving_engine, str(tiny_causal_lm)) as server:
        yield server


@pytest.fixture
def logprob_server(_logprob_server) -> ThreadServer:
    """The vLLM-like server on the tiny GPT-2 (served under its directory), faults cleared."""
    _logprob_server.faults.__init__()
    yield _logprob_server
    _logprob_server.faults.__init__()


NAMED = "org/tiny-gpt2"


@pytest.fixture(scope="session")
def _named_server(serving_engine):
    with ThreadServer(serving_engine, NAMED) as server:
        yield server


@pytest.fixture
def named_server(_named_server) -> ThreadServer:
    """The same model served under a name that is no local directory (a hub id, as vLLM
    names it): without --tokenizer there is no start-up probe, only generation."""
    _named_server.faults.__init__()
    yield _named_server
    _named_server.faults.__init__()
