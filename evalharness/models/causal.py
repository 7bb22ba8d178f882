"""Causal (decoder-only) language models (``AutoModelForCausalLM``).

Three batched request kinds, following lm-evaluation-harness's ``HFLM`` (v0.4) so that
per-request numbers are comparable with it:

- ``loglikelihood``: trailing whitespace of the context moves to the continuation; the
  context and ``context + continuation`` are encoded, and the continuation's tokens are
  what the whole has beyond the context. An empty context is conditioned on BOS (EOS when
  the tokenizer has none). Over-long inputs lose tokens on the left, never from the
  continuation. Returns the summed log-probability and whether greedy decoding would
  produce the continuation.
- ``loglikelihood_rolling``: a whole text scored with explicit windows (see ``windows``).
- ``generate``: greedy (or beam) decoding with left padding, KV cache and stop strings
  checked per sequence.

Tokenizer pitfalls are handled explicitly and written to ``ModelInfo.notes``: a missing pad
token (EOS pads), padding side (right for scoring, left for generation), whether the
tokenizer adds a BOS token (kept, as ``HFLM`` keeps the tokenizer's default; an EOS the
tokenizer would append is never added), the token conditioning empty contexts, and the
maximum input length. Truncated inputs are flagged on every response.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject
from evalharness.models.base import Conventions, ModelAdapter, ModelInfo, decoded, generator, options_with
from evalharness.models.batching import encode_once, filled, sorted_batches
from evalharness.models.protocols import RollingWindows
from evalharness.models.rows import Row, RowScorer
from evalharness.models.windows import WINDOW_POLICIES, plan_windows
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
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["CausalLMAdapter"]

Pair = LoglikelihoodRequest | tuple[str, str]


def move_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """``("Answer: ", "yes")`` -> ``("Answer:", " yes")``: BPE vocabularies attach the space
    to the next word, so this is how the continuation's first token looks in running text."""
    stripped = context.rstrip()
    return stripped, context[len(stripped) :] + continuation


class CausalLMAdapter(ModelAdapter):
    """A decoder-only LM answering log-likelihood, rolling log-likelihood and generation."""

    kind = "causal_lm"
    answers = frozenset(
        {RequestKind.LOGLIKELIHOOD, RequestKind.LOGLIKELIHOOD_ROLLING, RequestKind.GENERATE}
    )
    auto_class_name = "AutoModelForCausalLM"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, *, max_length: int | None = None) -> None:
        super().__init__(model, tokenizer, info)
        if max_length is not None and max_length < 2:
            raise UsageError(f"max_length must be at least 2, got {max_length}")
        self._max_length = max_length
        self.adds_bos = self._tokenizer_adds(tokenizer.bos_token_id, first=True)
        self.rows = RowScorer(
            model, pad=tokenizer.pad_token_id, capacity=self.max_length, selected_logits=self._projects_selected_positions
        )
        self.info = replace(
            info, notes={**info.notes, **self._notes(), "layout": self.rows.note}, conventions=self._conventions(info.conventions)
        )

    # -- tokenizer conventions -----------------------------------------------------------
    def _tokenizer_adds(self, token_id: int | None, *, first: bool) -> bool:
        """Whether the tokenizer's default encoding adds ``token_id`` at the start/end."""
        if token_id is None:
            return False
        default = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        edge = slice(0, 1) if first else slice(-1, None)
        return default[edge] == [token_id] and plain[edge] != [token_id]

    def _conventions(self, base: Conventions) -> Conventions:
        """``base`` with what this adapter's tokenizer handling fixes."""
        tokenizer = self.tokenizer
        prefix = tokenizer.bos_token if tokenizer.bos_token_id is not None else tokenizer.eos_token
        return replace(
            base,
            adds_bos=self.adds_bos,
            appends_eos=self._tokenizer_adds(tokenizer.eos_token_id, first=False),
            prefix_token=prefix,
            max_length=self.max_length,
        )

    def _notes(self) -> JSONObject:
        tokenizer = self.tokenizer
        notes: JSONObject = {
            "padding": "right for log-likelihoods, left for generation (decoder-only)",
            "max_length": self.max_length,
        }
        if self.adds_bos:
            notes["bos"] = f"the tokenizer adds BOS {tokenizer.bos_token!r}; kept at the start of contexts and prompts"
        else:
            notes["bos"] = "the tokenizer adds no BOS; inputs are encoded as they are"
        if self._tokenizer_adds(tokenizer.eos_token_id, first=False):
            notes["eos"] = f"the tokenizer appends EOS {tokenizer.eos_token!r} by default; not added here"
        prefix = tokenizer.bos_token if tokenizer.bos_token_id is not None else tokenizer.eos_token
        role = "BOS" if tokenizer.bos_token_id is not None else "EOS (the tokenizer has no BOS)"
        notes["prefix_token"] = (
            f"{prefix!r}, {role}: conditions empty contexts and the first token of rolling windows"
            if prefix is not None
            else "none: the tokenizer has neither BOS nor EOS, so empty contexts cannot be scored"
        )
        return notes

    @property
    def max_length(self) -> int:
        """Longest model input in tokens (``max_length=`` at load time overrides it)."""
        return self._max_length or super().max_length

    @property
    def prefix_token_id(self) -> int:
        """BOS, or EOS when the tokenizer has no BOS (lm-evaluation-harness's choice)."""
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        token = bos if bos is not None else eos
        if token is None:
            raise ModelError(
                f"{self.info.name}: the tokenizer has neither a BOS nor an EOS token to condition "
                "an empty context or the first token of a text on"
            )
        return int(token)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    def _encode(self, texts: Sequence[str], *, bos: bool = True) -> list[list[int]]:
        """Token ids without special tokens, plus BOS first when the tokenizer adds one
        (texts the engine had tokenized to plan its chunks are not tokenized again)."""
        encoded = encode_once(self._tokenize, texts, owner=id(self))
        if not (bos and self.adds_bos):
            return encoded
        bos_id = self.tokenizer.bos_token_id
        return [list(ids) if ids[:1] == [bos_id] else [bos_id, *ids] for ids in encoded]

    def encode_prompts(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of prompts as this adapter encodes contexts and generation prompts (before
        truncation): what the prompt lint checks."""
        return self._encode([str(text) for text in texts])

    # -- scoring ---------------------------------------------------------------------------
    @functools.cached_property
    def _projects_selected_positions(self) -> bool:
        """Whether the model's forward takes ``logits_to_keep`` (most decoder LMs in
        transformers do): scoring a short continuation then skips the vocabulary projection
        of the context positions."""
        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _score_rows(self, rows: Sequence[Row], batch_size: int) -> list[tuple[float, bool]]:
        """Summed log-probability of each row's targets and whether they are all greedy
        (packed with shared prefixes where the model supports it; see ``models.rows``)."""
        return self.rows.score(rows, batch_size)

    def token_lengths(self, requests: Sequence[Request]) -> list[int]:
        """Tokens the model reads per request (a text's, or a context's and continuation's),
        encoded as answering encodes them, so that the engine's token memo spares answering
        a second tokenization."""
        texts = [request for request in requests if isinstance(request, str)]
        if requests and len(texts) == len(requests):
            return [len(ids) for ids in self._encode(texts, bos=False)]
        tuples = [request for request in requests if isinstance(request, tuple) and len(request) == 2]
        if requests and len(tuples) == len(requests):
            pairs = [move_trailing_whitespace(str(context), str(continuation)) for context, continuation in tuples]
            return [len(context) + len(continuation) for context, continuation in self._pair_tokens(pairs)]
        return super().token_lengths(requests)

    def _pair_tokens(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context ids, continuation ids) per pair, with lm-evaluation-harness's split."""
        contexts = [context for context, _ in pairs]
        context_ids = self._encode(contexts)
        whole_ids = self._encode([context + continuation for context, continuation in pairs])
        empty = [index for index, context in enumerate(contexts) if not context]
        plain_ids = dict(zip(empty, self._encode([pairs[index][1] for index in empty], bos=False)))
        prefix = None
        encoded = []
        for index, (context, ctx, whole) in enumerate(zip(contexts, context_ids, whole_ids)):
            if context:
                encoded.append((ctx, whole[len(ctx) :]))
                continue
            plain = plain_ids[index]
            prefix = self.prefix_token_id if prefix is None else prefix
            if plain[:1] == [prefix]:  # the text itself starts with BOS: it is the context
                encoded.append((plain[:1], plain[1:]))
            else:
                encoded.append(([prefix], plain))
        return encoded

    def loglikelihood(self, requests: Sequence[Pair], *, batch_size: int = 32) -> list[LoglikelihoodResponse]:
        """log P(continuation | context) for ``(context, continuation)`` pairs, in input order.

        ``n_tokens`` is the continuation's token count (for per-token normalisation);
        ``truncated`` says the context lost tokens on the left to fit ``max_length``.
        """
        pairs = [move_trailing_whitespace(str(context), str(continuation)) for context, continuation in requests]
        limit = self.max_length
        rows: list[Row] = []
        truncated: list[bool] = []
        for index, ((context, continuation), original) in enumerate(zip(self._pair_tokens(pairs), requests)):
            if not continuation:
                raise UsageError(
                    f"loglikelihood request {index}: the continuation {original[1]!r} encodes to no "
                    "tokens, so it has no likelihood to compare"
                )
            if len(continuation) > limit:
                raise UsageError(
                    f"loglikelihood request {index}: the continuation has {len(continuation)} tokens, "
                    f"more than the model's maximum input length {limit}"
                )
            tokens = context + continuation
            truncated.append(len(tokens) - 1 > limit)
            rows.append((tokens[-(limit + 1) : -1], continuation))
        scored = self._score_rows(rows, batch_size)
        return [
            LoglikelihoodResponse(logprob, greedy, len(row[1]), cut)
            for (logprob, greedy), row, cut in zip(scored, rows, truncated)
        ]

    def rolling_settings(
        self, window: str = "disjoint", max_length: int | None = None, stride: int | None = None
    ) -> RollingWindows:
        """The resolved windowing (defaults filled in), validated against this model."""
        if window not in WINDOW_POLICIES:
            raise UsageError(f"window must be one of {list(WINDOW_POLICIES)}, got {window!r}")
        length = self.max_length if max_length is None else max_length
        if not 1 <= length <= self.max_length:
            raise UsageError(
                f"rolling max_length {length} must be between 1 and the model's maximum input "
                f"length {self.max_length}"
            )
        if window == "disjoint":
            if stride not in (None, length):
                raise UsageError(f"stride={stride} applies to sliding windows only (window='sliding')")
            stride = length
        elif stride is None:
            stride = max(1, length // 2)
        if not 1 <= stride <= length:
            raise UsageError(f"stride must be between 1 and max_length ({length}), got {stride}")
        return {"window": window, "max_length": length, "stride": stride, "prefix_token_id": self.prefix_token_id}

    def loglikelihood_rolling(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        options: RollingOptions | None = None,
        **settings: object,
    ) -> list[RollingLoglikelihoodResponse]:
        """Summed log-probability of every token of each text, conditioned on BOS/EOS.

        ``window="disjoint"`` replicates lm-evaluation-harness's rolling windows;
        ``"sliding"`` moves by ``stride`` (default ``max_length // 2``). Windows of all
        texts are batched together. The text is encoded without special tokens, so only its
        own tokens are scored (``n_tokens``); an empty text scores 0.0 over 0 tokens.
        ``append_eos`` also scores the EOS token after each text: the end of a sentence is
        then predicted, as corpora that count one ``<eos>`` per sentence (PTB) assume.
        """
        chosen = options_with(RollingOptions, options, settings)
        resolved = self.rolling_settings(chosen.window, chosen.max_length, chosen.stride)
        length, step, prefix = resolved["max_length"], resolved["stride"], resolved["prefix_token_id"]
        token_lists = self._encode([str(text) for text in texts], bos=False)
        if chosen.append_eos:
            eos = self.tokenizer.eos_token_id
            if eos is None:
                raise ModelError(f"{self.info.name}: append_eos needs an EOS token, the tokenizer has none")
            token_lists = [[*tokens, eos] for tokens in token_lists]
        rows: list[Row] = []
        owners: list[int] = []
        for owner, tokens in enumerate(token_lists):
            full = [prefix, *tokens]
            for span in plan_windows(len(tokens), max_length=length, stride=step):
                rows.append((full[span.input_start : span.end], tokens[span.start : span.end]))
                owners.append(owner)
        totals = [0.0] * len(token_lists)
        for owner, (logprob, _) in zip(owners, self._score_rows(rows, batch_size)):
            totals[owner] += logprob
        return [RollingLoglikelihoodResponse(total, len(tokens)) for total, tokens in zip(totals, token_lists)]

    # -- generation ------------------------------------------------------------------------
    def check_generation(self, max_new_tokens: int) -> None:
        """Prompt and generated tokens share the model's positions: leave room for both."""
        if max_new_tokens < 1 or self.max_length - max_new_tokens < 1:
            raise UsageError(
                f"max_new_tokens={max_new_tokens} must be at least 1 and leave room for the prompt "
                f"in the model's {self.max_length} positions"
            )

    def _eos_ids(self) -> list[int]:
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        if configured is None:
            configured = self.tokenizer.eos_token_id
        if configured is None:
            return []
        return [int(t) for t in configured] if isinstance(configured, (list, tuple)) else [int(configured)]

    def _split_stops(self, stops: Sequence[str]) -> tuple[list[str], list[int]]:
        """``(text stops, token stops)``: a stop string that is one token which decoding drops
        (a chat template's ``<|im_end|>``, ``</s>``) never appears in decoded text, so it
        stops generation as a token id, like EOS."""
        texts, ids = [], []
        for stop in stops:
            tokens = self.tokenizer(stop, add_special_tokens=False)["input_ids"]
            if len(tokens) == 1 and decoded(self.tokenizer, tokens) == "":
                ids.append(int(tokens[0]))
            else:
                texts.append(stop)
        return texts, ids

    def _generated(self, tokens: list[int], eos_ids: list[int]) -> list[int]:
        """New tokens up to the first EOS, without the padding that fills finished rows."""
        for position, token in enumerate(tokens):
            if token in eos_ids:
                return tokens[:position]
        pad = self.tokenizer.pad_token_id
        while tokens and tokens[-1] == pad:
            tokens = tokens[:-1]
        return tokens

    def generate(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        options: GenerationOptions | None = None,
        **settings: object,
    ) -> list[GenerateResponse]:
        """Deterministic continuations of ``prompts`` (greedy, or beam search), input order.

        Text is cut at the first stop string (a stop that is a special token ends generation
        like EOS); ``n_tokens`` counts generated tokens (EOS and padding excluded). Prompts longer than ``max_length - max_new_tokens`` lose tokens
        on the left and are flagged ``truncated``.
        """
        import torch
        from transformers import (
            GenerationConfig,
            LogitsProcessorList,
            StoppingCriteriaList,
        )

        from evalharness.models.stopping import (
            RefuseNonFiniteLogits,
            StopSequences,
            cut_at_stop,
        )

        chosen = options_with(GenerationOptions, options, settings)
        stops = [str(s) for s in chosen.stop]
        if any(not s for s in stops):
            raise UsageError(f"stop sequences must be non-empty strings, got {stops}")
        self.check_generation(chosen.max_new_tokens)
        budget = self.max_length - chosen.max_new_tokens
        rows, truncated = [], []
        for ids in self._encode([str(p) for p in prompts]):
            ids = ids or [self.prefix_token_id]  # an empty prompt starts from BOS/EOS
            truncated.append(len(ids) > budget)
            rows.append(ids[-budget:])
        stops, stop_ids = self._split_stops(stops)
        eos_ids = list(dict.fromkeys([*self._eos_ids(), *stop_ids]))
        config = GenerationConfig(
            do_sample=False,
            num_beams=chosen.num_beams,
            max_new_tokens=chosen.max_new_tokens,
            min_new_tokens=chosen.min_new_tokens,
            length_penalty=chosen.length_penalty,
            no_repeat_ngram_size=chosen.no_repeat_ngram_size,
            num_return_sequences=1,
            use_cache=True,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=eos_ids or None,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        results: list[GenerateResponse | None] = [None] * len(rows)
        device = self.model.device
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for batch in sorted_batches([len(r) for r in rows], batch_size):
                width = max(len(rows[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):  # left padding: prompts end where generation starts
                    input_ids[row, width - len(rows[index]) :] = torch.tensor(rows[index], dtype=torch.long)
                    attention[row, width - len(rows[index]) :] = 1
                criteria = StoppingCriteriaList([StopSequences(self.tokenizer, stops, width)]) if stops else None
                output = generator(self.model).generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention.to(device),
                    generation_config=config,
                    stopping_criteria=criteria,
                    logits_processor=LogitsProcessorList(
                        [RefuseNonFiniteLogits(self.info.name, [str(prompts[i]) for i in batch], chosen.num_beams)]
                    ),
                )
                assert isinstance(output, torch.Tensor)  # the token ids: no return_dict_in_generate asked for
                for row, index in enumerate(batch):
                    tokens = self._generated(output[row, width:].tolist(), eos_ids)
                    text = cut_at_stop(decoded(self.tokenizer, tokens), stops)
                    results[index] = GenerateResponse(text, len(tokens), truncated[index])
        return filled(results)
