"""The ``openai`` backend: a model served behind the OpenAI HTTP API (vLLM, SGLang, TGI,
``transformers serve``, llama.cpp's server, hosted APIs).

- Generation: ``/v1/completions`` (the prompt as is) or ``/v1/chat/completions``
  (``--api chat``: the prompt as one user message, formatted by the server's chat template),
  temperature 0, the task's stop strings (also cut here, as ``hf`` cuts them).
- Log-likelihood and rolling log-likelihood: ``/v1/completions`` with a token-id prompt,
  ``echo=true``, ``logprobs=1``, ``max_tokens=1``, read in vLLM's documented format
  (``choices[0].logprobs.token_logprobs``: one entry per prompt token, the first ``null``;
  ``top_logprobs`` for whether each token is the arg-max; ``-9999.0`` is vLLM's clamp of
  ``-inf``). They need the served model's tokenizer, and a probe at start-up checks that the
  server honours the contract; otherwise those request kinds are refused with the reason.

Start-up also checks that the server answers and serves ``--model`` (``/v1/models``), and
takes the context length from it when the server reports one (vLLM's ``max_model_len``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from evalharness.backends.config import BackendConfig, public_url, read_api_key
from evalharness.backends.http import (
    ChatBody,
    CompletionBody,
    MalformedAnswer,
    ServerRefused,
    Transport,
)
from evalharness.backends.remote import (
    GeneratedText,
    RemoteCausalLM,
    ScoredPrompt,
    context_length_of,
    positive_length,
    preview,
)
from evalharness.errors import ModelError, UsageError, did_you_mean
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.base import Conventions, ModelInfo
from evalharness.types import GenerationOptions, RequestKind

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["OpenAIBackend", "load_openai"]

VLLM_CLAMP = -9999.0  # vLLM writes log-probabilities of -inf as this value
MAX_SENT_STOPS = 4  # OpenAI's limit; with more, stop strings are only cut here


class _Logprobs(BaseModel):
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None = None
    tokens: list[str] | None = None


class _Choice(BaseModel):
    text: str | None = None
    message: dict[str, JsonValue] | None = None
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Usage(BaseModel):
    completion_tokens: int


class _Answer(BaseModel):
    choices: list[_Choice]
    usage: _Usage | None = None


def _answer(transport: Transport, data: JsonValue, what: str) -> _Answer:
    try:
        answer = _Answer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:3])
        raise transport._error(MalformedAnswer, f"{what}: the answer is not an OpenAI completion ({problems})") from None
    if not answer.choices:
        raise transport._error(MalformedAnswer, f"{what}: the answer has no choices")
    return answer


class OpenAIBackend(RemoteCausalLM):
    """A causal LM served over the OpenAI API (see the module docstring)."""

    backend = "openai"

    def __init__(self, transport: Transport, tokenizer: PreTrainedTokenizerBase | None, info: ModelInfo, *, context_length: int | None, refusals: dict[RequestKind, str]) -> None:
        self.transport = transport
        super().__init__(tokenizer, info, context_length=context_length, refusals=refusals)

    # -- log-likelihoods --------------------------------------------------------------------
    def score_prompts(self, prompts: Sequence[list[int]]) -> list[ScoredPrompt]:
        return self.transport.map(lambda index, prompt: self._score_one(prompt), prompts)

    def _score_one(self, prompt: list[int]) -> ScoredPrompt:
        what = f"the prompt {preview(self.tokenizer.decode(prompt))} ({len(prompt)} tokens)"
        body: CompletionBody = {"prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
        answer = _answer(self.transport, self.transport.completions(body, what), what)
        return _prompt_logprobs(self.transport, answer, len(prompt), what)

    # -- generation -------------------------------------------------------------------------
    def complete(self, prompts: Sequence[str | list[int]], options: GenerationOptions, shown: Sequence[str]) -> list[GeneratedText]:
        return self.transport.map(lambda index, prompt: self._complete_one(prompt, options, shown[index]), prompts)

    def _complete_one(self, prompt: str | list[int], options: GenerationOptions, shown: str) -> GeneratedText:
        what = f"the prompt {preview(shown)}"
        # With min_new_tokens the server must not stop at a stop string by itself: an end of
        # sequence is then told apart from a stop string by the text (see RemoteCausalLM.generate).
        stop = list(options.stop) if options.stop and options.min_new_tokens == 0 and len(options.stop) <= MAX_SENT_STOPS else None
        if self.transport.config.api == "chat":
            if not isinstance(prompt, str):
                raise ModelError(
                    f"{self.info.name}: {what} is longer than the served model's context allows with "
                    f"max_new_tokens={options.max_new_tokens}, and chat completions cannot take the truncated token ids"
                )
            chat: ChatBody = {"max_tokens": options.max_new_tokens, "temperature": 0, "messages": [{"role": "user", "content": prompt}]}
            if stop is not None:
                chat["stop"] = stop
            data = self.transport.chat(chat, what)
        else:
            body: CompletionBody = {"max_tokens": options.max_new_tokens, "temperature": 0, "prompt": prompt}
            if stop is not None:
                body["stop"] = stop
            data = self.transport.completions(body, what)
        answer = _answer(self.transport, data, what)
        choice = answer.choices[0]
        text = choice.text if self.transport.config.api == "completions" else (choice.message or {}).get("content")
        if not isinstance(text, str):
            raise self.transport._error(MalformedAnswer, f"{what}: the answer holds no generated text")
        if answer.usage is None:
            raise self.transport._error(MalformedAnswer, f"{what}: the answer has no usage.completion_tokens")
        n_tokens = answer.usage.completion_tokens
        early = options.min_new_tokens > 0 and choice.finish_reason != "length" and n_tokens <= options.min_new_tokens
        return GeneratedText(text, n_tokens, early)


def _prompt_logprobs(transport: Transport, answer: _Answer, n_prompt: int, what: str) -> ScoredPrompt:
    """Positions 1.. of the echoed prompt: (log-probability, arg-max?) per token."""
    logprobs = answer.choices[0].logprobs
    if logprobs is None or len(logprobs.token_logprobs) < n_prompt:
        got = "none" if logprobs is None else f"{len(logprobs.token_logprobs)}"
        raise transport._error(
            MalformedAnswer, f"{what}: {got} echoed prompt log-probabilities for {n_prompt} prompt tokens (echo + logprobs)"
        )
    tops = logprobs.top_logprobs or []
    if len(tops) < n_prompt:
        raise transport._error(MalformedAnswer, f"{what}: no top_logprobs for the prompt tokens (needed for is_greedy)")
    scored: ScoredPrompt = []
    for position in range(1, n_prompt):
        value, top = logprobs.token_logprobs[position], tops[position]
        if value is None or not top or math.isnan(value) or any(math.isnan(v) for v in top.values()):
            raise transport._error(MalformedAnswer, f"{what}: prompt token {position} has no usable log-probability ({value}, top {top})")
        value = -math.inf if value <= VLLM_CLAMP else value
        scored.append((value, value >= max(top.values())))
    return scored


# -- start-up ------------------------------------------------------------------------------


def _served_models(transport: Transport) -> list[JSONObject] | None:
    """``/v1/models`` entries, or None when the server has no such endpoint."""
    try:
        data = transport.models("the model list (/v1/models)")
    except ServerRefused:
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else None


def _tokenizer_files_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and ("token" in p.name or p.suffix in {".model", ".txt", ".tiktoken"} or p.name == "vocab.json")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def _load_tokenizer(model: str, tokenizer: str | None) -> tuple[PreTrainedTokenizerBase | None, JSONObject | None, dict[str, str] | None]:
    """(tokenizer, its config.json, record note) from ``--tokenizer``, else from ``--model``
    when that is a local directory (servers are often started on a path)."""
    source = tokenizer or (model if Path(model).expanduser().is_dir() else None)
    if source is None:
        return None, None, None
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UsageError(f"--tokenizer {source}: not a directory (give the served model's tokenizer directory)")
    from transformers import AutoTokenizer

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    try:
        loaded = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the user's to fix
        raise ModelError(f"{path}: cannot load the tokenizer ({type(exc).__name__}: {exc})") from None
    config = None
    if (path / "config.json").is_file():
        from evalharness.models.base import read_config

        config = read_config(path)
    note = {"path": str(path), "fingerprint": _tokenizer_files_fingerprint(path), "from": "--tokenizer" if tokenizer else "--model (a local directory)"}
    return loaded, config, note


def _probe_prompt(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """A few tokens after BOS (EOS without one): at least two, so one is scored."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    ids = ([prefix] if prefix is not None else []) + list(tokenizer("the answer is", add_special_tokens=False)["input_ids"])
    return ids if len(ids) >= 2 else ids * 2


def _probe_logprobs(transport: Transport, tokenizer: PreTrainedTokenizerBase) -> str | None:
    """None when the server echoes prompt log-probabilities as vLLM does and its tokens are
    this tokenizer's, else why log-likelihoods cannot be trusted (recorded: no server text)."""
    prompt = _probe_prompt(tokenizer)
    what = "the start-up probe of echo + logprobs"
    body: CompletionBody = {"prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    try:
        answer = _answer(transport, transport.completions(body, what), what)
        _prompt_logprobs(transport, answer, len(prompt), what)
    except ServerRefused as exc:
        return f"the server refused a completions request with echo and logprobs on a token-id prompt (HTTP {exc.status})"
    except MalformedAnswer:
        return "the server does not return prompt log-probabilities (completions with echo and logprobs), which log-likelihoods need"
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None  # _prompt_logprobs refused an answer without them
    tokens = logprobs.tokens or []
    for position, (token, echoed) in enumerate(zip(prompt, tokens)):
        expected = tokenizer.decode([token])
        if echoed != expected:
            return (
                f"the server's tokenizer is not the one given (token id {token} at position {position} is {echoed!r} "
                f"there and {expected!r} here); pass the served model's tokenizer with --tokenizer DIR"
            )
    return None


def load_openai(config: BackendConfig, model: str, *, tokenizer: str | None = None) -> OpenAIBackend:
    """Connect to the server, check it serves ``model``, probe what it can answer."""
    if not config.base_url or not config.base_url.lower().startswith(("http://", "https://")):
        raise UsageError(f"--backend openai needs --base-url http(s)://HOST:PORT/v1, got {config.base_url!r}")
    transport = Transport(config, read_api_key(config.api_key_env), model=model)
    served = _served_models(transport)
    if served is not None:
        names = [str(entry.get("id")) for entry in served]
        if model not in names:
            raise ModelError(
                f"the server at {transport.url} serves {names}; --model {model!r} is not one of them{did_you_mean(model, names)}"
            )
    reported = next((entry.get("max_model_len") for entry in served or [] if entry.get("id") == model), None)
    loaded, model_config, tokenizer_note = _load_tokenizer(model, tokenizer)
    context_length = positive_length(reported, f"{transport.url}/v1/models: max_model_len") if reported is not None else context_length_of(loaded, model_config)
    refusals: dict[RequestKind, str] = {}
    if config.api == "chat":
        reason = "chat completions cannot echo prompt log-probabilities; use --api completions"
        refusals = {RequestKind.LOGLIKELIHOOD: reason, RequestKind.LOGLIKELIHOOD_ROLLING: reason}
    elif loaded is not None:
        refused = _probe_logprobs(transport, loaded)
        refusals = {RequestKind.LOGLIKELIHOOD: refused, RequestKind.LOGLIKELIHOOD_ROLLING: refused} if refused else {}
    url = public_url(config.base_url)
    recorded_tokenizer: JSONObject | None = {**tokenizer_note} if tokenizer_note else None  # a dict[str, str] is not a JSONObject (invariant)
    info = ModelInfo(
        name=model,
        path=url,
        kind="causal_lm",
        fingerprint="served:" + hashlib.sha256(f"{url}\0{model}".encode()).hexdigest()[:16],
        architecture=f"served over the OpenAI API ({config.api})",
        device="remote",
        dtype="as served",
        num_parameters=None,  # the server does not say
        notes={"backend": "openai", "base_url": url, "served_model": model, "api": config.api, "tokenizer": recorded_tokenizer},
        conventions=Conventions(backend="openai", api=config.api, tokenizer=tokenizer_note["fingerprint"] if tokenizer_note else None),
    )
    return OpenAIBackend(transport, loaded, info, context_length=context_length, refusals=refusals)
