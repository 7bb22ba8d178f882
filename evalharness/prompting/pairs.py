"""Sentence pairs (CrowS-Pairs): which of two minimally different sentences a model prefers.

- Causal LMs (:class:`PairLoglikelihood`): each sentence's summed log-likelihood conditioned
  on BOS (EOS without one), exactly as lm-evaluation-harness's ``crows_pairs_english``
  scores it (an empty context and the sentence as the continuation). ``normalization``
  (``token``, ``char``, ``byte``) divides by the sentence's length, as ``choice`` does.
- Masked LMs (:class:`PairPseudoLoglikelihood`): Nangia et al. 2020's score, the
  pseudo-log-likelihood of the tokens the two sentences share (the unmodified tokens), each
  masked in turn; ``round_to: 3`` rounds the scores as the reference ``metric.py`` does, so
  near-equal scores count as a tie (no preference). ``tokens: all`` scores every token
  (Salazar et al.'s full PLL) instead.

Both predict ``{'more': score, 'less': score}``; the metrics compare them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from evalharness.config import StrictModel
from evalharness.errors import ModelError
from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import LoadedModel, MaskedPositions, capability
from evalharness.prompting.base import Decoded, Formulation, FormulationOptions, text_field
from evalharness.prompting.chat import raw_only
from evalharness.prompting.choice import NORMALISERS, Normalisation
from evalharness.spec.loader import Task
from evalharness.types import (
    Example,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    PairPrediction,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResponse,
    Request,
    RequestKind,
)

__all__ = ["PairLoglikelihood", "PairPseudoLoglikelihood"]


def _sentences(task: Task, example: Example) -> tuple[str, str]:
    return text_field(task, example, "sent_more"), text_field(task, example, "sent_less")


def _shown(example: Example) -> JSONObject:
    return {"sent_more": example["sent_more"], "sent_less": example["sent_less"]}


def _finite(task: Task, example: Example, values: Sequence[float]) -> None:
    if not all(math.isfinite(value) for value in values):
        raise ModelError(f"{task.name}: example {example.id}: non-finite scores {list(values)}")


class PairLoglikelihoodSettings(StrictModel):
    normalization: Normalisation = "none"


class PairLoglikelihood(Formulation[PairLoglikelihoodSettings, PairLoglikelihoodSettings, LoglikelihoodResponse]):
    """Summed (or length-normalised) log-likelihood of each sentence, given only BOS."""

    name = "pair_loglikelihood"
    request_kind = RequestKind.LOGLIKELIHOOD
    Settings = PairLoglikelihoodSettings
    method = "log-likelihood of each sentence given only BOS, no prompt, nothing generated"

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> PairLoglikelihoodSettings:
        return self.settings_for(task)

    def settings(self, task: Task, state: PairLoglikelihoodSettings) -> JSONObject:
        return {
            **state.model_dump(mode="json"),
            "score": "log P(sentence | BOS), natural log (lm-evaluation-harness crows_pairs)",
            "prompt_format": raw_only("each sentence is scored on its own: no prompt, so no chat turns, whatever the model"),
        }

    def requests(self, task: Task, examples: Sequence[Example], state: PairLoglikelihoodSettings) -> list[list[Request]]:
        return [[LoglikelihoodRequest("", text) for text in _sentences(task, e)] for e in examples]

    def decode(
        self, task: Task, example: Example, responses: Sequence[LoglikelihoodResponse], state: PairLoglikelihoodSettings
    ) -> Decoded:
        more, less = responses
        _finite(task, example, [more.logprob, less.logprob])
        normaliser = NORMALISERS[state.normalization]
        scores = [
            response.logprob / normaliser(response, text)
            for response, text in zip((more, less), _sentences(task, example), strict=True)
        ]
        extra: JSONObject = {"loglikelihoods": [more.logprob, less.logprob], "n_tokens": [more.n_tokens, less.n_tokens]}
        return Decoded(PairPrediction(scores[0], scores[1]), _shown(example), extra)


class PairPseudoLoglikelihoodSettings(StrictModel):
    tokens: Literal["shared", "all"] = "shared"
    round_to: int | None = 3


_PseudoState = tuple[MaskedPositions, PairPseudoLoglikelihoodSettings]


class PairPseudoLoglikelihood(Formulation[PairPseudoLoglikelihoodSettings, _PseudoState, PseudoLoglikelihoodResponse]):
    """Pseudo-log-likelihood of the shared (or all) tokens of each sentence."""

    name = "pair_pseudo_loglikelihood"
    request_kind = RequestKind.PSEUDO_LOGLIKELIHOOD
    Settings = PairPseudoLoglikelihoodSettings
    method = "masked-LM pseudo-log-likelihood of each sentence, no prompt, nothing generated"

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> _PseudoState:
        return capability(adapter, MaskedPositions, self.name), self.settings_for(task)

    def settings(self, task: Task, state: _PseudoState) -> JSONObject:
        _, settings = state
        what = "tokens shared by both sentences (difflib over token ids)" if settings.tokens == "shared" else "every token"
        return {
            **settings.model_dump(mode="json"),
            "score": f"pseudo-log-likelihood of the {what}, each masked in turn (Nangia et al. 2020)",
        }

    def requests(self, task: Task, examples: Sequence[Example], state: _PseudoState) -> list[list[Request]]:
        adapter, settings = state
        requests: list[list[Request]] = []
        for example in examples:
            more, less = _sentences(task, example)
            positions_more: tuple[int, ...] | None = None
            positions_less: tuple[int, ...] | None = None
            if settings.tokens == "shared":
                positions_more, positions_less = adapter.shared_positions(more, less)
            requests.append([PseudoLoglikelihoodRequest(more, positions_more), PseudoLoglikelihoodRequest(less, positions_less)])
        return requests

    def decode(
        self, task: Task, example: Example, responses: Sequence[PseudoLoglikelihoodResponse], state: _PseudoState
    ) -> Decoded:
        _, settings = state
        more, less = responses
        _finite(task, example, [more.logprob, less.logprob])
        scores = [more.logprob, less.logprob]
        if settings.round_to is not None:
            scores = [round(value, settings.round_to) for value in scores]
        extra: JSONObject = {"pseudo_loglikelihoods": [more.logprob, less.logprob], "n_tokens": [more.n_tokens, less.n_tokens]}
        return Decoded(PairPrediction(scores[0], scores[1]), _shown(example), extra)
