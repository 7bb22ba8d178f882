"""Windows for scoring a whole text with a fixed-length causal LM (rolling log-likelihood).

A text of ``n`` tokens is scored conditioned on a prefix token (BOS, or EOS when the
tokenizer has none), so every one of its tokens is predicted exactly once. With the prefix
prepended the sequence is ``full = [prefix] + tokens``, and token ``i`` is predicted from
``full[: i + 1]``. A window scores the targets ``tokens[start:end]`` from the model input
``full[max(0, end - max_length):end]``; the input never exceeds ``max_length`` tokens.

- ``disjoint`` (lm-evaluation-harness's ``loglikelihood_rolling``: ``get_rolling_token_windows``
  with ``context_len=1`` and ``make_disjoint_window``): windows of ``max_length`` targets;
  a window's first target sees only the token before it, and the last, shorter window is
  given a full ``max_length`` input (its extra tokens are context, not scored again).
- ``sliding`` (the strided method of the Hugging Face guide "Perplexity of fixed-length
  models"): after the first window, each window moves ``stride`` tokens, scores only the
  ``stride`` new tokens and conditions them on up to ``max_length - stride`` earlier ones.
  ``stride == max_length`` gives exactly the disjoint windows.

The one deliberate difference from the guide: it leaves a text's first token unscored
(nothing to condition on); here the prefix token conditions it, as lm-evaluation-harness
does, so both policies score the same tokens and their perplexities are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["WINDOW_POLICIES", "Window", "plan_windows"]

WindowPolicy = Literal["disjoint", "sliding"]
WINDOW_POLICIES: tuple[str, ...] = ("disjoint", "sliding")


@dataclass(frozen=True, slots=True)
class Window:
    """Score ``tokens[start:end]`` given the model input ``full[input_start:end]``."""

    input_start: int
    start: int
    end: int


def plan_windows(n_tokens: int, *, max_length: int, stride: int) -> list[Window]:
    """The windows covering ``n_tokens`` tokens; each token is a target exactly once."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length ({max_length}), got {stride}")
    windows: list[Window] = []
    end = 0
    while end < n_tokens:
        start = end
        end = min(n_tokens, max_length if start == 0 else start + stride)
        windows.append(Window(max(0, end - max_length), start, end))
    return windows
