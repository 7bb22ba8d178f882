"""Stop sequences for batched generation, checked per sequence inside the batch.

Each generated sequence stops as soon as its own new text contains one of the stop strings;
the others in the batch go on (transformers pads the finished ones). The check decodes only
the newest tokens of each sequence, enough to hold the longest stop string, so it costs a
few microseconds per step. Afterwards :func:`cut_at_stop` cuts the text at the first stop
string, as lm-evaluation-harness's ``generate_until`` does with its ``until`` list.

Imports transformers at module level: only the causal adapter's ``generate`` imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessor, StoppingCriteria

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from evalharness.errors import ModelError

__all__ = ["RefuseNonFiniteLogits", "StopSequences", "cut_at_stop"]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    positions = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return text[: min(positions)] if positions else text


class StopSequences(StoppingCriteria):
    """Marks a sequence finished once its generated text contains a stop string.

    ``prompt_width`` is the (left-padded) prompt length: only tokens after it are checked,
    so a stop string inside the prompt never ends generation.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[str], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.prompt_width = prompt_width
        # A stop string of b bytes spans at most b tokens; two more cover a token that
        # decodes without its leading space at the start of the window.
        self.lookback = max(len(stop.encode("utf-8")) for stop in self.stops) + 2

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_width :]
        tails = new[:, -self.lookback :].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        done = [any(stop in text for stop in self.stops) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]  # transformers declares the legacy torch.BoolTensor


class RefuseNonFiniteLogits(LogitsProcessor):
    """Stops generation with a :class:`ModelError` when a step's logits hold NaN or +inf.

    Greedy and beam search would otherwise pick a token from NaN scores (argmax of NaN is
    index 0) and the garbage text would be scored as a valid prediction. ``-inf`` is allowed:
    transformers' own processors use it to mask tokens. ``inputs`` are the batch's input
    texts, in batch order, so the message can name the affected input.
    """

    def __init__(self, model_name: str, inputs: Sequence[str], num_beams: int = 1) -> None:
        self.model_name = model_name
        self.inputs = list(inputs)
        self.num_beams = max(1, num_beams)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        bad = torch.isnan(scores).any(dim=-1) | torch.isposinf(scores).any(dim=-1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0]) // self.num_beams
            shown = self.inputs[row] if row < len(self.inputs) else "?"
            raise ModelError(
                f"{self.model_name}: the model returned non-finite (NaN/inf) logits while generating "
                f"for the input {shown[:80]!r}; no prediction is scored for it"
            )
        return scores
