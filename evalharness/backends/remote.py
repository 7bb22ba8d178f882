"""What every engine that runs the model outside this process shares (a server, vLLM).

:class:`RemoteCausalLM` is a :class:`~evalharness.models.causal.CausalLMAdapter` without
weights: the tokenization, the context/continuation split, BOS/EOS conditioning, left
truncation and rolling windows are the in-process adapter's own code, and only the scoring
of token rows and the decoding of prompts are sent elsewhere. That is what makes the
numbers of ``hf`` and a serving engine comparable request by request.

Log-likelihoods come from *prompt* log-probabilities (OpenAI's ``echo`` + ``logprobs``,
vLLM's ``prompt_logprobs``): a row (model input, targets its last positions predict) is
sent as the prompt ``input + [last target]``, whose last ``len(targets)`` prompt tokens are
the targets. Engines also generate at least one token after a prompt, so a row needs two
positions more than its input: scoring inputs are limited to the context length minus 2
(``max_length``), one token less than ``hf`` uses at the full context. Inputs that fit are
scored identically; longer ones are truncated (and flagged) one token earlier.

Without a tokenizer only generation is possible (text in, text out); the kinds a backend
cannot answer carry the reason in :attr:`refusals`, which formulations report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from evalharness.config import cli_flag
from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject, expect_float
from evalharness.models.base import ModelAdapter, ModelInfo, options_with
from evalharness.models.causal import CausalLMAdapter
from evalharness.types import (
    GenerateResponse,
    GenerationOptions,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    Request,
    RequestKind,
    RollingLoglikelihoodResponse,
    RollingOptions,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["GeneratedText", "RemoteCausalLM", "ScoredPrompt", "check_greedy_options", "context_length_of", "preview"]

SCORED_KINDS = frozenset({RequestKind.LOGLIKELIHOOD, RequestKind.LOGLIKELIHOOD_ROLLING})
EXTRA_POSITIONS = 2  # the echoed last target, and the token every engine generates after the prompt

# Position i (from 1) of a prompt: (log P(prompt[i] | prompt[:i]), whether prompt[i] is the arg-max).
ScoredPrompt = list[tuple[float, bool]]


class GeneratedText(NamedTuple):
    """One generation as an engine returns it. ``ended_early``: it ended at an end of sequence
    before ``min_new_tokens``, which ``hf`` would have forbidden."""

    text: str
    n_tokens: int
    ended_early: bool = False


def preview(text: object, limit: int = 60) -> str:
    """A prompt as error messages show it: short, on one line."""
    flat = " ".join(str(text).split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def positive_length(value: object, where: str) -> int:
    """A length a served model's files state (positions, ``max_model_len``): a positive integer
    (``2048.0`` is one), else a :class:`ModelError` naming where (a fraction, a negative or
    non-finite number, text or a boolean would give a wrong context length)."""
    number = expect_float(value, where, error=ModelError)
    if not math.isfinite(number) or number <= 0 or not number.is_integer():
        raise ModelError(f"{where}: expected a positive whole number of tokens, got {value!r}")
    return int(number)


def _positions(config: Mapping[str, object] | None) -> int | None:
    """config.json's position embeddings (``max_position_embeddings``, else ``n_positions``)."""
    for field in ("max_position_embeddings", "n_positions"):
        value = (config or {}).get(field)
        if value is not None and value != 0:  # 0: not stated (some configs write it so)
            return positive_length(value, f"config.json: {field}")
    return None


def context_length_of(tokenizer: PreTrainedTokenizerBase | None, config: Mapping[str, object] | None) -> int | None:
    """The model's context from its tokenizer and config.json, as ``ModelAdapter.max_length``
    reads it; None when neither says."""
    limit = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    positions = _positions(config)
    if limit is None or limit > 1_000_000:  # the "no limit" sentinel of tokenizers
        return positions
    return int(min(limit, positions)) if positions else int(limit)


# The decoding settings served greedy decoding reproduces (length_penalty only weighs beams).
SERVED_DECODING = frozenset({"stop", "max_new_tokens", "min_new_tokens", "length_penalty"})


def check_greedy_options(options: GenerationOptions, backend: str) -> None:
    """Serving APIs decode greedily with temperature 0 and nothing else: refuse any other
    decoding setting away from its default (a field added to ``Decoding`` included) that would
    make ``hf`` decode differently, rather than silently drop it."""
    fields = type(options).model_fields
    wrong = {
        name: value for name, value in options.model_dump().items() if name not in SERVED_DECODING and value != fields[name].default
    }
    if wrong:
        settings = ", ".join(f"{name}={value}" for name, value in wrong.items())
        defaults = ", ".join(f"{cli_flag(type(options), name) or f'generation.{name}:'} {fields[name].default}" for name in wrong)
        raise UsageError(
            f"the {backend} backend decodes greedily and cannot reproduce {settings}; pass {defaults} "
            "for this run and any run you compare it with"
        )


class RemoteCausalLM(CausalLMAdapter):
    """A causal LM whose forward passes happen elsewhere; subclasses implement
    :meth:`score_prompts` and :meth:`complete`."""

    backend: str = "remote"

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, info: ModelInfo, *, context_length: int | None, refusals: Mapping[RequestKind, str]) -> None:
        # No weights here (the inherited code that runs them is overridden), and without a
        # tokenizer only generation is answered: every use of it checks for None first.
        self.model = None  # type: ignore[assignment]  # the local adapters' weights; none here
        self.tokenizer = tokenizer  # type: ignore[assignment]  # optional here, see above
        self.context_length = context_length
        self._max_length = None
        self.refusals = dict(refusals)
        if tokenizer is None:
            self.refusals.update({kind: self.refusals.get(kind, self._no_tokenizer(kind)) for kind in SCORED_KINDS})
        elif context_length is None or context_length <= EXTRA_POSITIONS:
            reason = f"the served model's context length is unknown or too short ({context_length})"
            self.refusals.update({kind: self.refusals.get(kind, reason) for kind in SCORED_KINDS})
        self.answers = frozenset({RequestKind.GENERATE, *SCORED_KINDS}) - set(self.refusals)
        self.adds_bos = self._tokenizer_adds(tokenizer.bos_token_id, first=True) if tokenizer is not None else False
        notes: JSONObject = {"context_length": context_length}
        if tokenizer is not None and not self.refusals.keys() >= SCORED_KINDS:
            notes.update(self._notes())
            notes.pop("padding")  # nothing is padded here: every prompt is a request of its own
            notes["max_length"] = f"{self.max_length} (the context minus {EXTRA_POSITIONS}: the echoed target and one generated token)"
        notes["unsupported"] = {kind.value: reason for kind, reason in sorted(self.refusals.items())}
        conventions = replace(info.conventions, context_length=context_length)
        if tokenizer is not None:
            conventions = replace(self._conventions(conventions), padding_side=None)  # nothing is padded
        self.info = replace(info, notes={**info.notes, **notes}, conventions=conventions)

    def _no_tokenizer(self, kind: RequestKind) -> str:
        return f"'{kind.value}' requests over the {self.backend} backend need the served model's tokenizer (--tokenizer DIR)"

    # -- what subclasses implement -----------------------------------------------------
    def score_prompts(self, prompts: Sequence[list[int]]) -> list[ScoredPrompt]:
        """Prompt log-probabilities of each token-id prompt, positions 1 to the end."""
        raise NotImplementedError

    def complete(self, prompts: Sequence[str | list[int]], options: GenerationOptions, shown: Sequence[str]) -> list[GeneratedText]:
        """Greedy continuations of text or token-id prompts; ``shown`` names them in errors."""
        raise NotImplementedError

    # -- the adapter surface -----------------------------------------------------------
    @property
    def max_length(self) -> int:
        if self.context_length is None:
            raise ModelError(f"{self.info.name}: the served model's context length is unknown")
        return self.context_length - EXTRA_POSITIONS

    def token_lengths(self, requests: Sequence[Request]) -> list[int]:
        """Token counts with a tokenizer; without one, character counts (only the order of
        requests depends on them, never a number)."""
        if self.tokenizer is not None:
            return ModelAdapter.token_lengths(self, requests)
        return [sum(len(part) for part in (r if isinstance(r, tuple) else (r,)) if isinstance(part, str)) for r in requests]

    def check_generation(self, max_new_tokens: int) -> None:
        if max_new_tokens < 1 or (self.context_length is not None and self.context_length - max_new_tokens < 1):
            raise UsageError(
                f"max_new_tokens={max_new_tokens} must be at least 1 and leave room for the prompt "
                f"in the served model's {self.context_length} positions"
            )

    def _refuse(self, kind: RequestKind) -> None:
        if kind in self.refusals:
            raise ModelError(f"{self.info.name}: {self.refusals[kind]}")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest | tuple[str, str]], *, batch_size: int = 32) -> list[LoglikelihoodResponse]:
        self._refuse(RequestKind.LOGLIKELIHOOD)
        return super().loglikelihood(requests, batch_size=batch_size)

    def loglikelihood_rolling(
        self, texts: Sequence[str], *, batch_size: int = 32, options: RollingOptions | None = None, **settings: object
    ) -> list[RollingLoglikelihoodResponse]:
        self._refuse(RequestKind.LOGLIKELIHOOD_ROLLING)
        return super().loglikelihood_rolling(texts, batch_size=batch_size, options=options, **settings)

    def _score_rows(self, rows: Sequence[tuple[list[int], list[int]]], batch_size: int) -> list[tuple[float, bool]]:
        """The in-process adapter's rows, scored from prompt log-probabilities."""
        prompts = [[*tokens, targets[-1]] for tokens, targets in rows]
        scored = self.score_prompts(prompts)
        results = []
        for (tokens, targets), prompt, positions in zip(rows, prompts, scored):
            if len(positions) != len(prompt) - 1:
                raise ModelError(
                    f"{self.info.name}: {len(positions)} prompt log-probabilities came back for a prompt of "
                    f"{len(prompt)} tokens ({preview(self.tokenizer.decode(prompt))})"
                )
            tail = positions[-len(targets) :]
            results.append((math.fsum(logprob for logprob, _ in tail), all(greedy for _, greedy in tail)))
        return results

    def generate(
        self, prompts: Sequence[str], *, batch_size: int = 32, options: GenerationOptions | None = None, **settings: object
    ) -> list[GenerateResponse]:
        """Greedy continuations, cut at the first stop string as ``hf`` cuts them.

        With a tokenizer and a known context, a prompt longer than ``context - max_new_tokens``
        loses tokens on the left exactly as in ``hf`` and is sent as token ids (flagged
        ``truncated``); otherwise the text itself is sent and the engine tokenizes it.
        """
        from evalharness.models.stopping import cut_at_stop

        chosen = options_with(GenerationOptions, options, settings)
        check_greedy_options(chosen, self.backend)
        self.check_generation(chosen.max_new_tokens)
        if any(not stop for stop in chosen.stop):
            raise UsageError(f"stop sequences must be non-empty strings, got {list(chosen.stop)}")
        texts = [str(prompt) for prompt in prompts]
        payloads, truncated = zip(*(self._generation_prompt(text, chosen.max_new_tokens) for text in texts)) if texts else ((), ())
        outputs = self.complete(list(payloads), chosen, texts)
        responses = []
        for text, output, cut in zip(texts, outputs, truncated):
            generated, n_tokens, ended_early = output
            if ended_early and not any(stop in generated for stop in chosen.stop):
                raise ModelError(
                    f"{self.info.name}: the generation for the prompt {preview(text)} ended after {n_tokens} tokens, "
                    f"before generation.min_new_tokens={chosen.min_new_tokens}, and the {self.backend} backend cannot "
                    "forbid an early end of sequence; set min_new_tokens: 0 in the task for this run and the run you compare it with"
                )
            responses.append(GenerateResponse(cut_at_stop(generated, chosen.stop), n_tokens, cut))
        return responses

    def _generation_prompt(self, text: str, max_new_tokens: int) -> tuple[str | list[int], bool]:
        if self.tokenizer is None or self.context_length is None:
            if not text:
                raise ModelError(f"{self.info.name}: an empty prompt needs the served model's tokenizer (--tokenizer DIR) to start from BOS")
            return text, False
        ids = self._encode([text])[0] or [self.prefix_token_id]
        budget = self.context_length - max_new_tokens
        if len(ids) > budget:
            return ids[-budget:], True
        # A text that starts with BOS (a chat template's) goes as ids: a server adding its own would double it.
        bos = self.tokenizer.bos_token
        starts_with_bos = self.adds_bos and bool(bos) and text.startswith(bos)
        return (text, False) if text and not starts_with_bos else (ids, False)
