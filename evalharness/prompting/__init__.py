"""Formulations: how each checkpoint kind answers each task kind."""

from __future__ import annotations

from evalharness.errors import UnsupportedTaskError
from evalharness.models.protocols import LoadedModel
from evalharness.prompting.base import (
    Decoded,
    Formulation,
    FormulationOptions,
    RunOption,
    SomeFormulation,
    erased,
)
from evalharness.prompting.choice import ChoiceLoglikelihood
from evalharness.prompting.counterfactual import wrap_counterfactual
from evalharness.prompting.generate import PromptGenerate
from evalharness.prompting.heads import ClassifierHead, RegressionHead
from evalharness.prompting.masked import PseudoLoglikelihood
from evalharness.prompting.multiple_choice import FieldChoiceLoglikelihood, MaskedChoice
from evalharness.prompting.pairs import PairLoglikelihood, PairPseudoLoglikelihood
from evalharness.prompting.rolling import RollingLoglikelihood
from evalharness.prompting.seq2seq import Seq2SeqGenerate
from evalharness.prompting.span_head import SpanHead
from evalharness.spec.loader import Task

__all__ = [
    "FORMULATIONS",
    "formulation_by_name",
    "Decoded",
    "Formulation",
    "FormulationOptions",
    "RunOption",
    "SomeFormulation",
    "choose_formulation",
]

_PROMPT_GENERATE = erased(PromptGenerate())
_SEQ2SEQ = erased(Seq2SeqGenerate())  # one instance, listed under each task kind it answers

# Task kind -> formulations in order of preference. The first one the checkpoint supports wins:
# fine-tuned heads and seq2seq generation (which refuses other kinds) before prompting.
FORMULATIONS: dict[str, list[SomeFormulation]] = {
    "classification": [erased(ClassifierHead()), erased(ChoiceLoglikelihood())],
    "regression": [erased(RegressionHead())],
    "extractive_qa": [erased(SpanHead()), _SEQ2SEQ, _PROMPT_GENERATE],
    "generation": [_SEQ2SEQ, _PROMPT_GENERATE],
    "language_modeling": [erased(RollingLoglikelihood()), erased(PseudoLoglikelihood())],
    "stereotype_pairs": [erased(PairPseudoLoglikelihood()), erased(PairLoglikelihood())],
    "multiple_choice": [erased(FieldChoiceLoglikelihood()), erased(MaskedChoice())],
}


def choose_formulation(task: Task, adapter: LoadedModel) -> SomeFormulation:
    """The preferred formulation that ``adapter`` can serve, or an error listing why none can."""
    reasons = []
    for formulation in FORMULATIONS.get(task.spec.kind, []):
        reason = formulation.unsupported_reason(task, adapter)
        if reason is None:
            return wrap_counterfactual(task, formulation)
        reasons.append(f"{formulation.name}: {reason}")
    detail = "; ".join(reasons) or f"no formulation is defined for '{task.spec.kind}' tasks yet"
    raise UnsupportedTaskError(
        f"{task.name}: a {adapter.kind} checkpoint cannot run this {task.spec.kind} task ({detail})"
    )


def formulation_by_name() -> dict[str, SomeFormulation]:
    """Every formulation by its name (for validating ``formulations:`` in task files)."""
    return {f.name: f for candidates in FORMULATIONS.values() for f in candidates}
