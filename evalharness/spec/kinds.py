"""Task kinds and the canonical fields each one's examples carry.

The data layer maps source columns onto these names and coerces values to these types, so
that everything downstream (prompting, adapters, metrics) can rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FieldType", "KindSchema", "TASK_KINDS"]

FieldType = Literal["text", "label", "float", "int", "text_list", "any"]


@dataclass(frozen=True)
class KindSchema:
    """Canonical fields of a task kind.

    ``gold`` names the field metrics compare against. What a prediction of the kind is lives
    in ``spec.predictions`` (its type and parser).
    """

    required: dict[str, FieldType]
    optional: dict[str, FieldType]
    gold: str | None
    needs_labels: bool = False

    @property
    def fields(self) -> dict[str, FieldType]:
        return {**self.required, **self.optional}


TASK_KINDS: dict[str, KindSchema] = {
    "classification": KindSchema(
        required={"text": "text", "label": "label"},
        optional={"text_pair": "text"},
        gold="label",
        needs_labels=True,
    ),
    "regression": KindSchema(
        required={"text": "text", "label": "float"},
        optional={"text_pair": "text"},
        gold="label",
    ),
    "extractive_qa": KindSchema(
        required={"question": "text", "context": "text", "answers": "text_list"},
        optional={"title": "text"},
        gold="answers",
    ),
    "generation": KindSchema(
        required={"source": "text", "references": "text_list"},
        optional={},
        gold="references",
    ),
    "language_modeling": KindSchema(
        required={"text": "text"},
        optional={},
        gold="text",
    ),
    # Bias probes (tasks/bias/). CrowS-Pairs: the gold value is the pair's bias type, which
    # metrics use as the group of the per-type breakdown.
    "stereotype_pairs": KindSchema(
        required={"sent_more": "text", "sent_less": "text", "bias_type": "text"},
        optional={"direction": "text"},
        gold="bias_type",
    ),
    # Multiple choice with metadata (BBQ, WinoBias): ``reference`` is a mapping holding at least
    # 'label' (the index of the correct choice) and whatever the metrics group or split by
    # (BBQ: 'category', 'context_condition', 'unknown', 'biased'; WinoBias: 'stereotype', 'type').
    "multiple_choice": KindSchema(
        required={"choices": "text_list", "reference": "any"},
        optional={"context": "text", "question": "text"},
        gold="reference",
    ),
}
