"""Language modelling: the log-likelihood of every token of each text (perplexity's input).

Prediction contract (``language_modeling``): ``{'logprob': float, 'n_tokens': int}``, the
natural-log probability of the whole text summed over its tokens, conditioned on BOS/EOS,
and the number of tokens scored. Perplexity metrics turn these into token-, word- or
byte-level perplexities. The windowing changes the number, so it is a setting, resolved
against the model and written to the run record (see ``models.windows``):

- ``window``: ``disjoint`` (lm-evaluation-harness's rolling windows) or ``sliding`` (the
  strided method of the Hugging Face perplexity guide);
- ``max_length``: tokens per model input (default: the model's maximum);
- ``stride``: how far a sliding window moves (default: ``max_length // 2``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from evalharness.config import StrictModel
from evalharness.errors import EvalHarnessError, ModelError, SpecError
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import LoadedModel, RollingWindows, TextWindows, capability
from evalharness.prompting.base import Decoded, Formulation, FormulationOptions, text_field
from evalharness.prompting.chat import raw_only
from evalharness.spec.loader import Task
from evalharness.types import (
    Example,
    LogprobPrediction,
    Request,
    RequestKind,
    RollingLoglikelihoodResponse,
    RollingOptions,
)

__all__ = ["RollingLoglikelihood", "RollingSettings"]

_PREVIEW = 200  # characters of each text shown as the sample's input (the gold holds it all)


class RollingSettings(StrictModel):
    window: Literal["disjoint", "sliding"] = "disjoint"
    max_length: int | None = Field(default=None, ge=1, description="tokens per window; default: the model's")
    stride: int | None = Field(default=None, ge=1, description="sliding windows only; default max_length // 2")
    append_eos: bool = Field(
        default=False, description="also score the EOS token after each text (sentence-level corpora such as PTB)"
    )

    @model_validator(mode="after")
    def _stride_fits(self) -> RollingSettings:
        if self.stride is not None and self.window != "sliding":
            raise ValueError("'stride' applies to window: sliding only")
        if self.stride is not None and self.max_length is not None and self.stride > self.max_length:
            raise ValueError(f"stride {self.stride} is larger than max_length {self.max_length}")
        return self


@dataclass(frozen=True)
class RollingState:
    windows: RollingWindows  # resolved against the model
    append_eos: bool


class RollingLoglikelihood(Formulation[RollingSettings, RollingState, RollingLoglikelihoodResponse]):
    """Whole-text log-likelihoods with explicit windows (``loglikelihood_rolling`` requests)."""

    name = "rolling_loglikelihood"
    request_kind = RequestKind.LOGLIKELIHOOD_ROLLING
    Settings = RollingSettings
    method = "log-likelihood of whole texts, no prompt, nothing generated"

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> RollingState:
        settings = self.settings_for(task)
        windows = capability(adapter, TextWindows, self.name)
        try:
            resolved = windows.rolling_settings(settings.window, settings.max_length, settings.stride)
        except EvalHarnessError as exc:
            raise SpecError(f"{task.path}: formulations.{self.name}: {exc}") from None
        return RollingState(resolved, settings.append_eos)

    def request_options(self, task: Task, state: RollingState) -> RollingOptions:
        windows = state.windows
        return RollingOptions(
            window=windows["window"], max_length=windows["max_length"], stride=windows["stride"], append_eos=state.append_eos
        )

    def settings(self, task: Task, state: RollingState) -> JSONObject:
        windows = state.windows
        return {
            "window": windows["window"],
            "max_length": windows["max_length"],
            "stride": windows["stride"],
            "prefix_token_id": windows["prefix_token_id"],
            "append_eos": state.append_eos,
            "scored": "every token of each text, conditioned on the prefix token",
            "prompt_format": raw_only("perplexity scores the text itself: no prompt, so no chat turns, whatever the model"),
        }

    def requests(self, task: Task, examples: Sequence[Example], state: RollingState) -> list[list[Request]]:
        return [[text_field(task, example, "text")] for example in examples]

    def decode(
        self, task: Task, example: Example, responses: Sequence[RollingLoglikelihoodResponse], state: RollingState
    ) -> Decoded:
        (response,) = responses
        if not math.isfinite(response.logprob):
            raise ModelError(f"{task.name}: example {example.id}: the model returned log-likelihood {response.logprob}")
        text = text_field(task, example, "text")
        shown = text if len(text) <= _PREVIEW else text[:_PREVIEW] + "…"
        return Decoded(LogprobPrediction(response.logprob, response.n_tokens), shown)
