"""Encoder-decoder models (``AutoModelForSeq2SeqLM``: T5, BART, Marian, Pegasus...): generation.

Decoding is deterministic (greedy or beam search, never sampling). The run's settings
(``max_new_tokens``, ``num_beams``, ``length_penalty``, ``no_repeat_ngram_size``,
``min_new_tokens``) replace the checkpoint's own values for those fields; everything else in
the checkpoint's ``generation_config`` (``forced_bos_token_id``, ``bad_words_ids``,
``early_stopping``...) is kept, and :meth:`Seq2SeqAdapter.generation_settings` reports the
effective configuration for the run record. Inputs are sorted by length into batches and
padded on the right; an input longer than the encoder accepts is cut and flagged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject, JsonValue
from evalharness.models.base import ModelAdapter, decoded, generator, options_with
from evalharness.models.batching import filled, sorted_batches
from evalharness.types import Decoding, GenerateResponse, GenerationOptions, RequestKind

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["Seq2SeqAdapter"]

_RECORD_SKIP = {"transformers_version", "_from_model_config", "output_attentions", "output_hidden_states", "use_cache"}


class Seq2SeqAdapter(ModelAdapter):
    kind = "seq2seq"
    answers = frozenset({RequestKind.GENERATE})
    auto_class_name = "AutoModelForSeq2SeqLM"

    @classmethod
    def prepare_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> JSONObject:
        notes = super().prepare_tokenizer(tokenizer, model)
        if tokenizer.padding_side != "right":
            # Left padding would shift absolute positions (BART, Marian) in the encoder.
            tokenizer.padding_side = "right"
            notes["padding_side"] = "was left; encoder inputs are padded on the right"
        suggested = {
            name: params["prefix"]
            for name, params in (getattr(model.config, "task_specific_params", None) or {}).items()
            if isinstance(params, dict) and params.get("prefix")
        }
        if suggested:
            notes["checkpoint_task_prefixes"] = suggested  # T5 ships them; tasks set their own
        if not getattr(tokenizer, "is_fast", False):
            notes["tokenizer"] = f"{type(tokenizer).__name__} (Python/SentencePiece, not tokenizers-backed)"
        return notes

    @property
    def model_type(self) -> str:
        """``config.model_type`` (``t5``, ``bart``, ``marian``...), which task prefixes key on."""
        return str(self.model.config.model_type)

    def generation_config(self, decoding: Decoding) -> GenerationConfig:
        """The checkpoint's generation config with the run's settings and no sampling."""
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample = False
        config.temperature = config.top_k = config.top_p = None
        config.max_length = None
        config.min_length = None
        config.max_new_tokens = decoding.max_new_tokens
        config.min_new_tokens = decoding.min_new_tokens or None
        config.num_beams = decoding.num_beams
        config.num_return_sequences = 1
        config.length_penalty = decoding.length_penalty
        config.no_repeat_ngram_size = decoding.no_repeat_ngram_size or None
        return config

    def generation_settings(self, decoding: Decoding | None = None, **settings: object) -> JSONObject:
        """What decoding will use (for the run record): the config's non-default fields."""
        config: dict[str, JsonValue] = self.generation_config(options_with(Decoding, decoding, settings)).to_diff_dict()
        return {key: value for key, value in sorted(config.items()) if key not in _RECORD_SKIP}

    def _encode(self, prompts: list[str]) -> tuple[list[dict[str, list[int]]], list[bool]]:
        """Tokenize once without truncation; re-encode only the inputs that are too long."""
        encoded = self.tokenizer(prompts, truncation=False, verbose=False)
        names = [name for name in ("input_ids", "attention_mask") if name in encoded]
        rows = [{name: encoded[name][i] for name in names} for i in range(len(prompts))]
        limit = self.max_length
        truncated = [len(row["input_ids"]) > limit for row in rows]
        for index in (i for i, cut in enumerate(truncated) if cut):
            again = self.tokenizer(prompts[index], truncation=True, max_length=limit)
            rows[index] = {name: again[name] for name in names}
        return rows, truncated

    def _finish(self, tokens: list[int], stop: Sequence[str]) -> tuple[str, int]:
        """Text and token count up to the first end-of-sequence token and stop string."""
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        end = next((i for i, token in enumerate(tokens) if token in eos_ids), len(tokens))
        kept = tokens[:end]
        special = set(self.tokenizer.all_special_ids)
        text = decoded(self.tokenizer, kept)
        cuts = [text.find(marker) for marker in stop if marker and marker in text]
        if cuts:
            text = text[: min(cuts)]
        return text, sum(token not in special for token in kept)

    def generate(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 8,
        options: GenerationOptions | None = None,
        **settings: object,
    ) -> list[GenerateResponse]:
        """Decode a continuation of each encoder input, in input order.

        ``n_tokens`` counts the generated tokens before end-of-sequence, special tokens excluded.
        """
        import torch
        from transformers import LogitsProcessorList

        from evalharness.models.stopping import RefuseNonFiniteLogits

        if any(not isinstance(prompt, str) for prompt in prompts):
            raise UsageError("generate: every input must be a string")
        if not prompts:
            return []
        chosen = options_with(GenerationOptions, options, settings)
        config = self.generation_config(chosen)
        rows, truncated = self._encode(list(prompts))
        results: list[GenerateResponse | None] = [None] * len(rows)
        device = self.model.device
        with torch.inference_mode():
            for batch in sorted_batches([len(row["input_ids"]) for row in rows], batch_size):
                padded = self.tokenizer.pad([rows[i] for i in batch], padding_side="right", return_tensors="pt")
                try:
                    output = generator(self.model).generate(
                        **{key: value.to(device) for key, value in padded.items()},
                        generation_config=config,
                        logits_processor=LogitsProcessorList(
                            [RefuseNonFiniteLogits(self.info.name, [prompts[i] for i in batch], chosen.num_beams)]
                        ),
                    )
                except (ValueError, TypeError) as exc:  # invalid settings for this checkpoint
                    raise ModelError(f"{self.info.name}: generation failed: {exc}") from None
                assert isinstance(output, torch.Tensor)  # the token ids: no return_dict_in_generate asked for
                for row, index in enumerate(batch):
                    text, count = self._finish(output[row, 1:].tolist(), chosen.stop)  # drop the decoder start
                    results[index] = GenerateResponse(text, count, truncated[index])
        return filled(results)
