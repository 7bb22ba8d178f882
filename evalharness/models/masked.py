"""Masked language models (``AutoModelForMaskedLM``): pseudo-log-likelihood scoring.

Salazar et al. 2020, "Masked Language Model Scoring": mask each scored token in turn and sum
the log-probabilities the model gives the true token at the masked position. Every masked
copy is an independent forward pass, so copies of all texts are batched together by length.

Scoring can be restricted to chosen token positions, which is what CrowS-Pairs needs
(Nangia et al. 2020): only the tokens the two sentences of a pair share are masked and
scored. :meth:`MaskedLMAdapter.shared_positions` finds them as the reference ``metric.py``
does (``difflib.SequenceMatcher`` over token ids, "equal" blocks, special tokens excluded).
Positions index the text's tokens *without* special tokens.

Texts longer than the model are split into disjoint windows; each token is scored with its
own window as context (stated in the formulation's recorded settings).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evalharness.errors import ModelError, UsageError
from evalharness.jsonvalues import JSONObject
from evalharness.models.encoders import EncoderAdapter
from evalharness.types import (
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResponse,
    RequestKind,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["MaskedLMAdapter"]

PLLInput = str | tuple[str, Sequence[int] | None] | PseudoLoglikelihoodRequest


class MaskedLMAdapter(EncoderAdapter):
    kind = "masked_lm"
    answers = frozenset({RequestKind.PSEUDO_LOGLIKELIHOOD})
    auto_class_name = "AutoModelForMaskedLM"

    @classmethod
    def prepare_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> JSONObject:
        notes = super().prepare_tokenizer(tokenizer, model)
        if tokenizer.mask_token_id is None:
            raise ModelError(f"{model.name_or_path}: the tokenizer has no mask token; it cannot score a masked LM")
        return notes

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (what positions index)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _specials(self) -> tuple[list[int], list[int]]:
        """Special tokens the tokenizer puts before and after a single text ([CLS] ... [SEP])."""
        probe = self.tokenizer("a", return_special_tokens_mask=True)
        ids, mask = probe["input_ids"], probe["special_tokens_mask"]
        content = [i for i, special in enumerate(mask) if not special]
        if not content:
            return [], []
        return list(ids[: content[0]]), list(ids[content[-1] + 1 :])

    @property
    def window_tokens(self) -> int:
        """Content tokens per window (the model's limit minus special tokens)."""
        prefix, suffix = self._specials()
        return self.max_length - len(prefix) - len(suffix)

    def token_positions(self, text: str, char_spans: Sequence[tuple[int, int]]) -> tuple[int, ...]:
        """Positions of the tokens lying inside any of the ``[start, end)`` character spans."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise ModelError(f"{self.info.name}: character spans need a fast tokenizer (offsets)")
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return tuple(
            index
            for index, (start, end) in enumerate(offsets)
            if end > start and any(low <= start and end <= high for low, high in char_spans)
        )

    def shared_positions(self, text_a: str, text_b: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Positions of the tokens two texts share, per text (Nangia et al. 2020's ``get_span``)."""
        ids_a, ids_b = self.tokenize(text_a), self.tokenize(text_b)
        shared_a: list[int] = []
        shared_b: list[int] = []
        for operation, a_start, a_end, b_start, b_end in difflib.SequenceMatcher(None, ids_a, ids_b).get_opcodes():
            if operation == "equal":
                shared_a.extend(range(a_start, a_end))
                shared_b.extend(range(b_start, b_end))
        return tuple(shared_a), tuple(shared_b)

    def _copies(self, requests: list[PseudoLoglikelihoodRequest]) -> list[tuple[list[int], int, int, int]]:
        """Masked copies ``(input ids, masked index, true id, request index)``."""
        prefix, suffix = self._specials()
        width = self.window_tokens
        if width < 1:
            raise ModelError(f"{self.info.name}: the model's length limit leaves no room for tokens")
        mask_id = self.tokenizer.mask_token_id
        copies = []
        encoded = self.tokenizer([r.text for r in requests], add_special_tokens=False)["input_ids"]
        for owner, (request, ids) in enumerate(zip(requests, encoded)):
            positions = range(len(ids)) if request.positions is None else request.positions
            for position in positions:
                if not isinstance(position, int) or not 0 <= position < len(ids):
                    raise UsageError(
                        f"pseudo_loglikelihood: input {owner}: position {position!r} is outside its "
                        f"{len(ids)} tokens"
                    )
                start = position - position % width
                window = list(ids[start : start + width])
                local = position - start
                window[local] = mask_id
                copies.append((prefix + window + suffix, len(prefix) + local, ids[position], owner))
        return copies

    def pseudo_loglikelihood(self, inputs: Sequence[PLLInput], *, batch_size: int = 32) -> list[PseudoLoglikelihoodResponse]:
        """Summed log-probability (natural log) of each text's scored tokens, each masked in turn.

        ``inputs`` are texts (every token scored) or ``(text, positions)`` pairs.
        """
        import torch

        requests = [
            PseudoLoglikelihoodRequest(item)
            if isinstance(item, str)
            else PseudoLoglikelihoodRequest(item[0], None if item[1] is None else tuple(item[1]))
            for item in inputs
        ]
        copies = self._copies(requests)
        scores: list[float] = [0.0] * len(copies)
        with torch.inference_mode():
            for batch, output in self.batches.run([{"input_ids": copy[0]} for copy in copies], batch_size):
                logits = output["logits"]
                rows = torch.arange(len(batch), device=logits.device)
                masked = torch.tensor([copies[i][1] for i in batch], device=logits.device)
                targets = torch.tensor([copies[i][2] for i in batch], device=logits.device)
                log_probs = logits[rows, masked].float().log_softmax(dim=-1)
                for index, value in zip(batch, log_probs[rows, targets].cpu().tolist()):
                    scores[index] = value
        totals = [0.0] * len(requests)
        counts = [0] * len(requests)
        for (_, _, _, owner), value in zip(copies, scores):  # copies are in position order
            totals[owner] += value
            counts[owner] += 1
        for owner, total in enumerate(totals):
            if not math.isfinite(total):
                raise ModelError(f"{self.info.name}: non-finite pseudo-log-likelihood for input {owner}")
        return [PseudoLoglikelihoodResponse(total, count) for total, count in zip(totals, counts)]
