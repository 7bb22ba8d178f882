"""Masked LMs answer ``language_modeling`` tasks with pseudo-log-likelihoods.

Salazar et al. 2020: every token is masked in turn and the log-probabilities of the true
tokens are summed. The prediction has the same shape as a causal LM's (``logprob``,
``n_tokens``), but a pseudo-perplexity is not comparable with a causal perplexity; the
formulation name in the run record says which one a number is.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalharness.jsonvalues import JSONObject
from evalharness.models.protocols import LoadedModel, MaskedPositions, capability
from evalharness.prompting.base import Decoded, Formulation, FormulationOptions, NoSettings, text_field
from evalharness.spec.loader import Task
from evalharness.types import (
    Example,
    LogprobPrediction,
    PseudoLoglikelihoodResponse,
    Request,
    RequestKind,
)

__all__ = ["PseudoLoglikelihood"]


class PseudoLoglikelihood(Formulation[NoSettings, dict[str, str], PseudoLoglikelihoodResponse]):
    """Summed pseudo-log-likelihood of each example's ``text`` (every token scored)."""

    name = "pseudo_loglikelihood"
    request_kind = RequestKind.PSEUDO_LOGLIKELIHOOD
    method = "masked-LM pseudo-log-likelihood of whole texts, no prompt, nothing generated"

    def prepare(self, task: Task, adapter: LoadedModel, options: FormulationOptions) -> dict[str, str]:
        windows = capability(adapter, MaskedPositions, self.name)
        return {
            "score": "pseudo-log-likelihood (Salazar et al. 2020), natural log, summed over tokens",
            "long_texts": f"disjoint windows of {windows.window_tokens} tokens",
        }

    def settings(self, task: Task, state: dict[str, str]) -> JSONObject:
        return dict(state)

    def requests(self, task: Task, examples: Sequence[Example], state: dict[str, str]) -> list[list[Request]]:
        return [[text_field(task, example, "text")] for example in examples]

    def decode(self, task: Task, example: Example, responses: Sequence[PseudoLoglikelihoodResponse], state: dict[str, str]) -> Decoded:
        (response,) = responses
        return Decoded(LogprobPrediction(response.logprob, response.n_tokens), example["text"])
